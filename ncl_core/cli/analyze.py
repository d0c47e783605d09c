"""``ncl-forensics analyze``: analyze images, print their scores and optionally write each one's
mask, heatmap, overlay, forensic views and JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ncl_core.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_analysis_args,
    check_inputs,
    check_out_folder,
    inference_settings,
    load_predictor,
    progress,
    refuse_inside,
    resolve_model_arg,
    shown,
    view_names,
)
from ncl_core.errors import UsageError, UserError

# What analyze takes, said with every mistake in its inputs.
_TAKES = "analyze takes image files; for a folder, use `ncl-forensics batch FOLDER --report OUT`"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="analyze images; print scores, optionally write mask/heatmap/overlay/JSON"
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", help="folder for <name>.mask.png, .heatmap.png, .overlay.png and .json")
    p.add_argument(
        "--views",
        metavar="LIST",
        help="forensic views beside the model, comma-separated: ela,noise,jpeg,dq,clone,combined,metadata,c2pa "
        "or all; with --out each map is written as <name>.<view>.png (8-bit grey, brighter = "
        "more suspicious) and each view's summary goes into the JSON",
    )
    p.add_argument(
        "--ela-quality",
        default="auto",
        metavar="Q",
        help="ELA view: the JPEG quality to re-save at, 1-100, or auto (default: a JPEG's own "
        "quality from its quantisation tables; for a lossless file with a JPEG past, that "
        "past's quality; else 90)",
    )
    p.add_argument(
        "--show-gps",
        action="store_true",
        help="metadata view: show GPS positions (hidden otherwise)",
    )
    add_analysis_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every mistake of the command line is said before the model loads (a second or more).
    inputs = [Path(p) for p in args.images]
    _check_images(inputs)
    settings = inference_settings(args)
    views = view_names(args)
    ela_quality = _ela_quality(args.ela_quality)
    out = Path(args.out) if args.out else None
    if out is not None:
        check_out_folder(out, "--out")
        refuse_inside(out, inputs)
    resolve_model_arg(args)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    from ncl_core.inference.finding import analysis_finding
    from ncl_core.inference.outputs import existing_stems, unique_stem, write_outputs

    predictor = load_predictor(args)
    # Outputs already in the folder are kept: a new file gets the next free name (photo-2).
    failures, used = 0, existing_stems(out) if out is not None else set()
    with progress(len(inputs), "analyze") as bar:
        # Each file is read once: the views and the output files use the evidence analyzed.
        for evidence, result in predictor.analyze_stream(inputs, settings=settings):
            bar.update(1)
            if not result.ok:
                failures += 1
                bar.write(f"error: {shown(result.message)}", file=sys.stderr)
                continue
            result = result.at(args.threshold)
            line = f"{shown(result.source)}: score {result.score:.3f}, tampered area {100 * result.area_fraction:.2f} %"
            line += f"\n  finding: {analysis_finding(result).text}"
            found = (
                _views_of(evidence, views, args.show_gps, ela_quality, result.probability)
                if views
                else {}
            )
            if out is not None:
                stem = unique_stem(result.source, used)
                write_outputs(out, stem, result, evidence.image, views=found)
                if stem != Path(result.source).stem:
                    line += f"\n  outputs written as {shown(stem)}.* (the name was taken)"
            for warning in result.warnings:
                line += f"\n  warning: {shown(warning)}"
            for name, view in found.items():
                line += f"\n  {name}: {shown(view.summary)}"
            bar.write(line)
    if failures:
        print(f"{failures} of {len(inputs)} image(s) could not be analyzed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _check_images(inputs: list[Path]) -> None:
    """Refuse inputs of which none is a file: all missing (a typo), or folders. Where some are
    files, each missing or unreadable one is reported in its turn and the others analyzed."""
    if any(path.is_file() for path in inputs):
        return
    folder = next((path for path in inputs if path.is_dir()), None)
    if folder is not None:
        raise UsageError(f"{shown(folder)} is a folder; {_TAKES}")
    check_inputs([str(path) for path in inputs], "images", _TAKES)


def _ela_quality(text: str) -> int | str:
    """``--ela-quality``: ``auto`` or 1..100; anything else is the user's error, said once."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        quality = int(text)
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise UserError(f"--ela-quality must be a JPEG quality from 1 to 100 or auto, got {text!r}")
    return quality


def _views_of(
    evidence,
    views: tuple[str, ...],
    show_gps: bool,
    ela_quality: int | str = "auto",
    model_map: Any = None,
) -> dict[str, Any]:
    """The forensic views of the evidence the model analyzed (no second read of the file);
    ``model_map``: the model's probability map, one cue of the combined view."""
    from ncl_core.report.forensic_views import bounded_evidence
    from ncl_core.views import compute_views

    bounded, note = bounded_evidence(evidence)
    params = {
        "metadata": {"show_gps": show_gps},
        "ela": {"quality": ela_quality},
        "combined": {"model_map": model_map},
    }
    found = compute_views(views, bounded, params)
    if note:  # said once per image, in each view's record and summary line
        for result in found.values():
            result.details = {**(result.details or {}), "bounded": note}
        first = next(iter(found.values()), None)
        if first is not None:
            first.summary = f"{first.summary} [{note}]"
    return found
