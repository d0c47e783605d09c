"""``ncl-forensics sets``: the labeled sets the app keeps (``ncl_core.training.labeled_sets``): add an image and
its mask, list, remove, export as a ``tampered/`` + ``masks/`` dataset. Train on one with
``ncl-forensics finetune --set NAME``."""

from __future__ import annotations

import argparse
import sys

from ncl_core.cli.common import EXIT_OK, shown


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sets",
        help="labeled sets kept in your data folder: add, list, remove, export",
        description="Labeled sets: copies of images with their masks, kept in the user's data "
        "folder (the original images are only read). Fine-tune on one with "
        "`ncl-forensics finetune --set NAME`.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="copy IMAGE into set NAME (made if new) with its MASK")
    add.add_argument("name", metavar="NAME")
    add.add_argument("image", metavar="IMAGE")
    add.add_argument(
        "mask",
        metavar="MASK",
        help="the image's mask (white = manipulated; all black: an authentic example); the "
        "same image again replaces its mask",
    )
    show = sub.add_parser("list", help="the sets and their image counts, or one set's images")
    show.add_argument("name", nargs="?", metavar="NAME")
    remove = sub.add_parser("remove", help="remove a set, or one image of it")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument(
        "item", nargs="?", metavar="ITEM", help="an image's id (from `sets list NAME`) or path"
    )
    export = sub.add_parser(
        "export", help="copy a set to DIR as tampered/ + masks/ (+ authentic/) and set.json"
    )
    export.add_argument("name", metavar="NAME")
    export.add_argument("dir", metavar="DIR", help="a new or empty folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncl_core.training.labeled_sets import LabeledSets

    sets = LabeledSets()
    if args.action == "add":
        item = sets.add(args.name, args.image, args.mask)
        labeled = sets.get(args.name)
        kind = f"{100 * item.marked:.1f} % marked" if item.mask else "authentic (nothing marked)"
        print(
            f"added {shown(args.image)} to {shown(args.name)} as {item.id} ({kind}); the set "
            f"holds {len(labeled.items)} image(s)"
        )
    elif args.action == "list":
        if args.name:
            labeled = sets.get(args.name)
            print(f"{shown(labeled.name)}: {len(labeled.items)} image(s) in {shown(labeled.path)}")
            for item in labeled.items:
                kind = f"{100 * item.marked:5.1f} %" if item.mask else "authentic"
                print(f"  {item.id}  {kind:>9}  {shown(item.source)}")
        else:
            listed = sets.list()
            if not listed:
                print(f"no labeled sets yet (in {shown(sets.root)})", file=sys.stderr)
            for labeled in listed:
                print(
                    f"{shown(labeled.name)}\t{len(labeled.items)} image(s) "
                    f"({labeled.n_tampered} manipulated, {labeled.n_authentic} authentic)"
                )
    elif args.action == "remove":
        sets.remove(args.name, args.item)
        what = f"{shown(args.item)} from set" if args.item else "set"
        print(f"removed {what} {shown(args.name)} (the original images are untouched)")
    elif args.action == "export":
        dest = sets.export(args.name, args.dir)
        print(f"exported {shown(args.name)} to {shown(dest)}")
    return EXIT_OK
