"""What the subcommands share: exit codes, progress bars, the model and analysis flags, loading
the predictor, the inference settings and the forensic views they ask for.

Everything a command line can get wrong is checked before torch and the model load (a second
or more): the flags' choices and ranges by the parser, the model named and the inference sizes
here, the input paths and output folders by each command before it calls :func:`load_predictor`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ncl_core.errors import UsageError
from ncl_core.settings import (
    DEFAULT_MODE,
    DEFAULT_THRESHOLD,
    INPUT_SIZE_RANGE,
    MAX_MARGIN,
    MODES,
    PRECISIONS,
    TILE_RANGE,
    InferenceSettings,
)

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


def resolve_model_arg(args: argparse.Namespace):
    """The ``ModelInfo`` of ``--model`` (a file, a registry name or an id; none: the registry's
    default), read from the file's header alone: a wrong name answers before torch loads. The
    answer is kept on ``args`` for :func:`load_predictor`."""
    info = getattr(args, "model_info", None)
    if info is None:
        from ncl_core.models.registry import resolve_model

        info = args.model_info = resolve_model(args.model)
    return info


def load_predictor(args: argparse.Namespace):
    """The model of ``--model`` on ``--device``, for the commands that analyze images: torch's
    idle threads sleep rather than spin, and the loaded objects are set aside from the garbage
    collector (``ncl_core.cpu``)."""
    info = resolve_model_arg(args)  # before torch: a model that is not there answers at once
    from ncl_core.cpu import prefer_sleeping_threads, set_aside_long_lived_objects

    prefer_sleeping_threads()
    from ncl_core.inference.predictor import Predictor

    predictor = Predictor.load(info.path, args.device)
    set_aside_long_lived_objects()
    print(
        f"model {shown(predictor.model_id)} ({predictor.model_sha256[:12]}) on "
        f"{shown(predictor.device)}",
        file=sys.stderr,
    )
    return predictor


def check_out_folder(out_dir: Path, flag: str) -> None:
    """An output folder must be a folder (or not exist yet): said before anything loads."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{flag} {shown(out_dir)} is a file; give a folder for the outputs")


def refuse_inside(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Nothing is ever written into a folder of evidence (the rule every writer applies)."""
    from ncl_core.inference.outputs import refuse_inside_evidence

    refuse_inside_evidence(out_dir, inputs)  # EvidenceFolderError: a user error, exit 2


def inference_settings(args: argparse.Namespace) -> InferenceSettings:
    """The ``InferenceSettings`` of the analysis flags (:func:`add_analysis_args`); no torch,
    so a command checks them before it loads the model."""
    # The bounds a model file's own defaults must keep (a 1 px tile never finishes).
    for flag, value, (low, high) in (
        ("--tile", args.tile, TILE_RANGE),
        ("--input-size", getattr(args, "input_size", None), INPUT_SIZE_RANGE),
        *(
            ("--fuse-sizes", side, INPUT_SIZE_RANGE)
            for side in getattr(args, "fuse_sizes", None) or ()
        ),
    ):
        if value is not None and not low <= value <= high:
            raise UsageError(f"{flag} must be from {low} to {high} px, got {value}")
    margin = getattr(args, "margin", None)
    if margin is not None and not 0.0 <= margin <= MAX_MARGIN:
        raise UsageError(f"--margin must be from 0 to {MAX_MARGIN:g}, got {margin:g}")
    return InferenceSettings(
        mode=args.mode,
        input_size=getattr(args, "input_size", None),
        margin=margin,
        tile=args.tile,
        precision=getattr(args, "precision", "auto"),
    )


def check_inputs(paths: Sequence[str | Path], what: str, hint: str) -> None:
    """Refuse a command line none of whose inputs exists (a typo, a wrong folder): one line
    naming them and ``hint`` (what the command takes). Inputs that exist beside missing ones
    are analyzed, each missing one reported in its turn as before."""
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if not missing or len(missing) < len(paths):
        return
    if len(missing) == 1:
        raise UsageError(f"{shown(missing[0])}: no such file or folder; check the path ({hint})")
    names = ", ".join(shown(p) for p in missing[:3]) + (", …" if len(missing) > 3 else "")
    raise UsageError(
        f"none of the {len(missing)} {what} exists ({names}); check the paths ({hint})"
    )


def check_datasets(paths: Sequence[str | Path]) -> None:
    """Every ``--data`` path must exist (each is scanned whole, so none may be missing)."""
    for path in paths:
        if not Path(path).exists():
            raise UsageError(
                f"--data {shown(path)}: no such dataset folder or list; check the path"
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
# Choices and defaults come from ncl_core.settings (InferenceSettings' own), which loads no torch.


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1 (a threshold, a share)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


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
        default=DEFAULT_MODE,
        help="auto (default): the model's own default mode and sizes; resize: the paper's "
        "protocol, the whole image resized to the model's input size; tiled: full resolution "
        "in overlapping tiles",
    )
    p.add_argument(
        "--threshold",
        type=probability,
        default=DEFAULT_THRESHOLD,
        help=f"probability threshold of the mask, 0 to 1 (default {DEFAULT_THRESHOLD})",
    )
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
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the network's arithmetic: auto (default) bf16 where the processor computes it "
        "natively (maps within about 0.01 of fp32), else fp32; fp32 gives the same maps on "
        "every machine",
    )
    add_model_args(p)
