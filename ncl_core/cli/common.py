"""What the subcommands share: exit codes, progress bars, the model and analysis flags, loading
the predictor, the inference settings and the forensic views they ask for."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ncl_core.errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# Characters that must never reach a terminal as they are: C0 and C1 controls (escape sequences
# can move the cursor, rewrite a printed score or clear the screen; a carriage return or line
# feed can forge a line), bidirectional overrides and isolates (they reorder what is shown),
# and lone surrogates (undecodable bytes of a file name).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: Any) -> str:
    """``value`` as text safe to print: every control, bidirectional override and raw byte is
    written as a visible escape (``\\x1b``, ``\\u202e``). File names, EXIF text, model names and
    error messages come from files, so everything the CLI prints of them goes through this."""
    return _UNSAFE.sub(_escape, str(value))


def progress(total: int | None, desc: str, unit: str = "img"):
    """A tqdm bar on stderr (stdout is the command's output)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def fmt(value: Any) -> str:
    """A metric with three decimals, or ``n/a`` where it could not be measured."""
    return "  n/a" if value is None else f"{value:.3f}"


def load_predictor(args: argparse.Namespace):
    from ncl_core.infer import Predictor
    from ncl_core.registry import resolve_model

    # --model: a file, a registry name or an id; none: the registry's default.
    predictor = Predictor.load(resolve_model(args.model).path, args.device)
    print(
        f"model {shown(predictor.model_id)} ({predictor.model_sha256[:12]}) on "
        f"{shown(predictor.device)}",
        file=sys.stderr,
    )
    return predictor


def refuse_inside(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Nothing is ever written into a folder of evidence (the rule every writer applies)."""
    from ncl_core.outputs import refuse_inside_evidence

    refuse_inside_evidence(out_dir, inputs)  # EvidenceFolderError: a user error, exit 2


def inference_settings(args: argparse.Namespace):
    """The ``InferenceSettings`` of the analysis flags (:func:`add_analysis_args`)."""
    from ncl_core.infer import InferenceSettings
    from ncl_core.modelfile import INPUT_SIZE_RANGE, TILE_RANGE

    # The bounds a model file's own defaults must keep (a 1 px tile never finishes).
    for flag, value, (low, high) in (
        ("--tile", args.tile, TILE_RANGE),
        ("--input-size", getattr(args, "input_size", None), INPUT_SIZE_RANGE),
    ):
        if value is not None and not low <= value <= high:
            raise UsageError(f"{flag} must be from {low} to {high} px, got {value}")
    return InferenceSettings(
        mode=args.mode,
        threshold=args.threshold,
        input_size=getattr(args, "input_size", None),
        tile=args.tile,
    )


def view_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The forensic views of ``--views LIST`` (none without it); a bad name is a usage error."""
    if not getattr(args, "views", None):
        return ()
    from ncl_core.views import parse_names

    try:
        return parse_names(args.views)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- flags ---------------------------------------------------------------------------------------
# The inference defaults below are InferenceSettings' (ncl_core/infer.py); they are spelled out
# rather than imported because that module loads torch, and building the parser must stay fast.
MODES = ("auto", "resize", "tiled")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        help="model file, or the name or id of a registered model (`models list`); "
        "default: the registry's default model",
    )
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")


def add_analysis_args(p: argparse.ArgumentParser, input_size: bool = True) -> None:
    p.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="auto (default): the model's own default mode and sizes; resize: the paper's "
        "protocol, the whole image resized to the model's input size; tiled: full resolution "
        "in overlapping tiles",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the mask")
    p.add_argument(
        "--tile",
        type=int,
        help="tiled mode: tile side (default: the model's own, else its training size)",
    )
    if input_size:
        p.add_argument(
            "--input-size",
            type=int,
            help="resize mode: network input side (default: the model's own, else its training size)",
        )
    add_model_args(p)
