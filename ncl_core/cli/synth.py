"""``ncl-forensics synth``: make labeled forgeries (splices, copy-moves, removals) from a folder
of authentic photos, each with its mask and the parameters that made it."""

from __future__ import annotations

import argparse

from ncl_core.cli.common import EXIT_OK, progress
from ncl_core.settings import KINDS

# SynthConfig's defaults, spelled out: ncl_core.data.synth loads torch, and building the parser
# must stay fast (tests/test_cli.py checks they agree). --authentic-fraction is the exception:
# 0 here (every image a forgery unless asked), where SynthConfig's default is 0.25.


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="make labeled forgeries from a folder of authentic photos"
    )
    p.add_argument("source", help="folder of authentic photos (read only)")
    p.add_argument("out", help="new output folder")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--types", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--authentic-fraction", type=float, default=0.0)
    p.add_argument("--format", choices=("png", "jpg"), default="png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncl_core.data.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        size=args.size,
        types=tuple(args.types),
        authentic_fraction=args.authentic_fraction,
        seed=args.seed,
        image_format=args.format,
    )
    with progress(args.count, "synth") as bar:
        result = generate_dataset(
            args.source, args.out, args.count, config, progress=lambda i, n: bar.update(1)
        )
    print(
        f"wrote {result['count']} image(s) to {result['out_dir']} (parameters in {result['json']})"
    )
    return EXIT_OK
