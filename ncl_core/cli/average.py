"""``ncl-forensics average``: one model from the weights of several fine-tuned from one model
(ncl_core/models/average.py), to calibrate next."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ncl_core.cli.common import EXIT_OK, shown
from ncl_core.errors import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "average",
        help="average the weights of models fine-tuned from one model (calibrate it next)",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="model ids, names or files")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument(
        "--weights",
        nargs="+",
        type=float,
        metavar="W",
        help="one weight per model (default: equal); they are scaled to sum to 1",
    )
    p.add_argument("--name", help="the new model's name (default: the file's stem)")
    p.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ncl_core.models.average import ingredient_weights, save_average
    from ncl_core.models.registry import resolve_model

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {shown(out)}: a model file ends in .safetensors")
    if out.is_dir():
        raise UsageError(f"--out {shown(out)} is a folder; give the model file to write")
    try:
        ingredient_weights(len(args.models), args.weights)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    paths = [resolve_model(model).path for model in args.models]  # before torch loads
    if out.resolve() in {path.resolve() for path in paths}:
        raise UsageError(f"--out {shown(out)} is one of the models; write the average elsewhere")
    # Another architecture is refused by save_average before torch loads.
    written = save_average(out, paths, args.weights, name=args.name, half=args.half)
    print(f"wrote {shown(written)}: the average of {len(paths)} models", file=sys.stderr)
    print(
        "it is not calibrated: run `ncl-forensics calibrate --model "
        f"{shown(written)} --data FORGERIES AUTHENTIC --out CALIBRATED.safetensors` before use",
        file=sys.stderr,
    )
    return EXIT_OK
