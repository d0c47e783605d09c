"""``ncl-forensics eval``: evaluate a model on labeled data (``ncl_core.evaluation.evaluate``), optionally
under the paper's perturbations too, and print one table; ``--json`` keeps every figure."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ncl_core.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_analysis_args,
    check_datasets,
    fmt,
    inference_settings,
    load_predictor,
    progress,
    resolve_model_arg,
    shown,
)

EVAL_COLUMNS = (
    ("f1", "F1@.5"),
    ("best_f1", "bestF1"),
    ("floor_f1", "floor"),
    ("auc", "AUC"),
    ("iou", "IoU"),
    ("image_auc", "imgAUC"),
    ("image_accuracy", "imgAcc"),
    ("authentic_flagged_median", "authFlag"),
    ("authentic_false_alarm", "falseAl"),
    ("quiet_f1", "quietF1"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model on a labeled dataset")
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="labeled dataset folder(s) or JSON list(s); add a folder of authentic images "
        "(Au/ or authentic/) to measure the image-level AUC",
    )
    p.add_argument("--robustness", action="store_true", help="also under the paper's perturbations")
    p.add_argument(
        "--include-authentic",
        action="store_true",
        help="average pixel metrics over authentic images too",
    )
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--json", help="write all results as JSON")
    add_analysis_args(p)
    p.set_defaults(func=run)


def format_eval_table(results: list[dict[str, Any]]) -> str:
    """The evaluation table: one row per condition and subset (all, then each manipulation
    type and the authentic images), with the all-manipulated floor beside F1 and AUC.

    ``n`` counts every image of the subset; pixel figures are means over its manipulated
    images (``tampered``), image-level figures use all of them.
    """
    head = f"{'condition':<14} {'subset':<10} {'n':>5} {'tampered':>8} " + " ".join(
        f"{label:>7}" for _, label in EVAL_COLUMNS
    )
    lines = [head]
    for result in results:
        kinds = list(result["by_kind"].items())
        if len(kinds) == 1:  # one subset only (e.g. no types known): it is the "all" row
            kinds = []
        for subset, metrics in [("all", result["overall"]), *kinds]:
            lines.append(
                f"{result['perturbation'] or 'clean':<14} {subset:<10} "
                f"{metrics.get('n_all', ''):>5} {metrics.get('n_tampered', ''):>8} "
                + " ".join(f"{fmt(metrics.get(key)):>7}" for key, _ in EVAL_COLUMNS)
            )
    lines.append(
        "floor = mean per-image F1 of marking every pixel as manipulated, 2r/(1+r); "
        "a model at or below it has not learned to localise"
    )
    lines.append(
        "authFlag = median share of an authentic image marked at 0.5; falseAl = share of "
        "authentic images whose score reaches the model's calibrated threshold (0.5 uncalibrated)"
    )
    lines.append(
        "quietF1 = F1 at the threshold where the median authentic image has at most 5 % flagged "
        "(needs authentic images in the subset)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    # Every mistake of the command line is said before torch and the model load.
    check_datasets(args.data)
    settings = inference_settings(args)
    resolve_model_arg(args)
    from ncl_core.data.datasets import scan_dataset
    from ncl_core.data.perturb import PERTURBATIONS
    from ncl_core.evaluation.evaluate import evaluate, manipulation_kinds

    samples, kinds = [], {}
    for root in args.data:  # e.g. real forgeries plus a folder of authentic photos
        index = scan_dataset(root)
        samples += index.samples
        kinds.update(manipulation_kinds(index.root))
    samples = samples[: args.limit] if args.limit else samples
    predictor = load_predictor(args)
    conditions = [None] + (list(PERTURBATIONS) if args.robustness else [])
    results = []
    for condition in conditions:
        # The bar is closed before any error is printed, so the message starts its own line.
        with progress(len(samples), condition or "clean") as bar:
            result = evaluate(
                predictor,
                samples,
                settings,
                condition,
                kinds,
                args.include_authentic,
                progress=lambda i, n, bar=bar: bar.update(1),
                threshold=args.threshold,
            )
        results.append(result)
    skipped = results[0]["skipped"]  # the same files fail under every perturbation
    for item in skipped:
        print(f"error: {shown(item['error'])}", file=sys.stderr)
    print(format_eval_table(results))
    if args.json:
        from ncl_core.fsutil import atomic_write_text

        record = {"model": predictor.info.summary(), "data": list(args.data), "results": results}
        atomic_write_text(args.json, json.dumps(record, indent=2))
    if skipped:
        print(
            f"{len(skipped)} of {len(samples)} image(s) could not be read; the metrics leave them out",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK
