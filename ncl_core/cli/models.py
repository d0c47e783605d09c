"""``ncl-forensics models``: list, inspect, import, export and remove models; set the default."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from ncl_core.cli.common import EXIT_OK, fmt, shown
from ncl_core.errors import UsageError

ACTIONS = ("list", "info", "import", "export", "remove", "default")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list, inspect, import, export, remove models; set the default"
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("target", nargs="?", help="model id, name or file")
    p.add_argument("dest", nargs="?", help="export destination")
    p.add_argument("--name", help="name for an imported model")
    p.add_argument("--half", action="store_true", help="export with fp16 weights (half the size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncl_core.models.modelfile import ModelFileError, measured_figures
    from ncl_core.models.registry import ModelRegistry, resolve_model

    registry = ModelRegistry()
    action = args.action
    if action == "list":
        default = None
        with contextlib.suppress(ModelFileError):  # listing still works with no default
            default = registry.default().sha256
        for info in registry.list():
            mark = "*" if info.sha256 == default else " "
            f1 = measured_figures(info).get("f1")
            tag = " [bundled]" if info.bundled else ""
            print(
                f"{mark} {info.id}  {shown(info.name):<28} {info.backbone:<10} "
                f"F1 {_metric(f1)}  {shown(info.created)}{tag}"
            )
        return EXIT_OK
    if action == "info":
        info = resolve_model(args.target, registry)
        print(json.dumps(info.summary(), indent=2))
        return EXIT_OK
    if action == "import":
        info = registry.import_model(args.target, name=args.name)
        print(f"imported {shown(info.name)} ({info.id}) to {shown(info.path)}")
    elif action == "export":
        if not args.dest:
            raise UsageError("models export ID DEST: give a destination file or folder")
        if Path(args.target).is_file():
            from ncl_core.models.modelfile import export_half

            if not args.half:
                raise UsageError("models export FILE DEST copies nothing new: add --half")
            print(f"exported to {shown(export_half(args.target, args.dest))}")
        else:
            dest = registry.export_model(args.target, args.dest, half=args.half)
            print(f"exported to {shown(dest)}")
    elif action == "remove":
        registry.remove(args.target)
        print(f"removed {shown(args.target)}")
    elif action == "default":
        info = registry.set_default(args.target)
        print(f"default model: {shown(info.name)} ({info.id})")
    return EXIT_OK


def _metric(value: object) -> str:
    """A metric from a model file's metadata: a number, or ``n/a`` for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt(value)
    return "  n/a"
