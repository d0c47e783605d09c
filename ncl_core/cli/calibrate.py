"""``ncl-forensics calibrate``: measure a model's best pixel threshold and image-score threshold
on labeled data, and write a copy of the model that carries them and its default inference mode."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ncl_core.cli.common import (
    EXIT_OK,
    add_model_args,
    check_datasets,
    fmt,
    inference_settings,
    load_predictor,
    probability,
    progress,
    refuse_inside,
    resolve_model_arg,
)
from ncl_core.errors import UsageError
from ncl_core.settings import DEFAULT_MODE, MAX_MARGIN, MODES, QUIET_FLAGGED


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate a model's score and threshold on labeled data; write a copy that "
        "carries them and its default inference mode",
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="labeled manipulated images and a folder of authentic ones (Au/ or authentic/)",
    )
    p.add_argument("--out", required=True, help="model file to write (a copy; the input is kept)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_MODE,
        help="the inference mode to calibrate and store as the model's default",
    )
    p.add_argument("--input-size", type=int, help="resize mode: network input side to store")
    p.add_argument(
        "--fuse-sizes",
        type=int,
        nargs="+",
        metavar="SIDE",
        help="resize mode: also analyze at these sides and average their maps with the input "
        "size's (the image score stays the input size's); calibrated and stored so",
    )
    p.add_argument(
        "--margin",
        type=float,
        metavar="SHARE",
        help="resize mode: frame the resized image by its own mirror image, this share of the "
        f"side on each edge (0 to {MAX_MARGIN:g}), so that its border is seen with content "
        "around it, not the network's zero padding; calibrated and stored so",
    )
    p.add_argument("--tile", type=int, help="tiled mode: tile side to store")
    p.add_argument(
        "--max-false-alarm",
        type=probability,
        default=0.1,
        help="the image-score threshold calls at most this share of the authentic images "
        "manipulated (default 0.1; 1 keeps the best balanced accuracy whatever it costs)",
    )
    p.add_argument(
        "--max-flagged",
        type=probability,
        default=QUIET_FLAGGED,
        help="the pixel threshold is the one that localizes best among those that flag at most "
        f"this share of the median authentic image (default {QUIET_FLAGGED:g}; 1 keeps "
        "the best F1 whatever it flags)",
    )
    p.add_argument(
        "--threshold-at-half",
        action="store_true",
        help="move the map so that the calibrated pixel threshold sits at 0.5 (a shift of the "
        "logits stored with the model; rankings and pixel AUC are unchanged), then calibrate "
        "the image score on the moved map",
    )
    p.add_argument("--half", action="store_true", help="write fp16 weights")
    add_model_args(p)
    p.set_defaults(func=run)


def _max_flagged(args: argparse.Namespace) -> float | None:
    return None if args.max_flagged >= 1 else args.max_flagged


def run(args: argparse.Namespace) -> int:
    # Every mistake of the command line is said before torch and the model load.
    check_datasets(args.data)
    # In fp32: a model file's calibration must not depend on the processor that made it. The
    # sizes fused and the margin are exactly those asked (none without the flags), not the
    # input model's.
    asked = replace(
        inference_settings(args),
        fuse_sizes=tuple(args.fuse_sizes or ()),
        margin=args.margin or 0.0,
        precision="fp32",
    )
    if args.fuse_sizes and args.mode == "tiled":
        raise UsageError("--fuse-sizes is for resize mode; tiled mode analyzes at one size")
    if args.margin and args.mode == "tiled":
        raise UsageError("--margin is for resize mode; tiled mode frames its tiles itself")
    out = Path(args.out)
    refuse_inside(out.parent, [Path(d) for d in args.data])
    resolve_model_arg(args)
    from ncl_core.data.datasets import scan_dataset
    from ncl_core.evaluation.calibrate import calibrate
    from ncl_core.models.modelfile import export_model

    samples = []
    for root in args.data:
        samples += scan_dataset(root).samples
    predictor = load_predictor(args)
    settings = predictor.resolve(asked)
    with progress(len(samples), "calibrate") as bar:
        record = calibrate(
            predictor, samples, settings, lambda i, n: bar.update(1), args.max_false_alarm
        )
    if args.threshold_at_half:
        import math

        t = record["threshold"]
        predictor.logit_shift += math.log(t / (1 - t))
        with progress(len(samples), "calibrate, moved") as bar:
            record = calibrate(
                predictor,
                samples,
                settings,
                lambda i, n: bar.update(1),
                args.max_false_alarm,
                _max_flagged(args),
            )
        record["logit_shift"] = round(predictor.logit_shift, 4)
    record["data"] = [str(d) for d in args.data]
    effective = predictor.effective(settings)
    inference = {
        "mode": settings.mode,
        "input_size": effective["input_size"],
        **({"fuse_sizes": effective["fuse_sizes"]} if effective["fuse_sizes"] else {}),
        **({"margin": effective["margin"]} if effective["margin"] else {}),
        "tile": effective["tile"],
        "threshold": record["threshold"],
        "calibration": record,
    }
    if "score_threshold" in record:
        inference["score_threshold"] = record["score_threshold"]
    if predictor.logit_shift:
        inference["logit_shift"] = round(predictor.logit_shift, 4)
    export_model(predictor.info.path, out, half=args.half, inference=inference)
    at = record["at_0.5"]
    print(
        f"calibrated on {record['n_tampered']} manipulated and {record['n_authentic']} authentic "
        f"image(s), {settings.mode} mode: F1@0.5 {fmt(at.get('f1'))} (floor "
        f"{fmt(at.get('floor_f1'))}), AUC {fmt(at.get('auc'))}; pixel threshold "
        f"{record['threshold']:g} (F1 {record['f1_at_threshold']:.3f}"
        + (
            f", median authentic image {record['authentic_flagged_median']:.1%} flagged"
            if "authentic_flagged_median" in record
            else ""
        )
        + f"; the best F1 alone would take {record['best_f1_threshold']:g})"
    )
    if "score_threshold" in record:
        print(
            f"image score threshold {record['score_threshold']:.4f}: flags "
            f"{record['false_alarm_rate']:.0%} of the authentic and "
            f"{record['detection_rate']:.0%} of the manipulated images (at most "
            f"{record['max_false_alarm']:.0%} false alarms asked), balanced accuracy "
            f"{record['balanced_accuracy']:.3f}, image AUC {fmt(record['image_auc'])}"
        )
    else:
        print("no authentic images: the image score is left uncalibrated", file=sys.stderr)
    print(f"written to {out}")
    return EXIT_OK
