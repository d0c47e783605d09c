"""Fit the combined view's logistic combiner on labeled synthetic forgeries.

    .venv/bin/python bench/fit_combiner.py SYNTH_SET --model resources/models/ncl-starter.safetensors \
        --cache FEATURES.npz [--cue-cache DIR] [--out ncl_core/views/combined.json]

``SYNTH_SET``: a folder with ``tampered/`` and ``masks/`` (``ncl-forensics synth PHOTOS OUT
--format jpg`` makes one). Each image's cues are computed as the view computes them (the
model's map from the model file, ELA, noise features, DQ, texture, clone detection); a few thousand
cells per image are kept (in ``--cache``, so a refit needs no recomputation). ``--cue-cache``
keeps each image's cues other than the model's on the grid, so that a refit for another model
computes only that model's maps. Two weight sets are fitted: with the model's map and without
it. Never fit on a yardstick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ncl_core.data.datasets import scan_dataset
from ncl_core.evaluation.evaluate import read_pair
from ncl_core.evidence.image import Evidence
from ncl_core.views import combined

CELLS_PER_IMAGE = 3000


def _cues(ev: Evidence, sample, cue_cache: Path | None) -> dict:
    """The cues other than the model's, on the grid (from ``cue_cache`` when it has them)."""
    if cue_cache is None:
        return combined.cue_maps(ev, None)[0]
    where = hashlib.sha1(str(Path(sample.image).resolve()).encode()).hexdigest()[:16]
    cached = cue_cache / f"{Path(sample.image).stem}-{where}.npz"
    if cached.exists():
        data = np.load(cached)
        return {c: (data[c] if c in data.files else None) for c in combined.CUES if c != "model"}
    maps = combined.cue_maps(ev, None)[0]
    cue_cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cached, **{c: m for c, m in maps.items() if m is not None})
    return {c: m for c, m in maps.items() if c != "model"}


def extract(
    root: Path,
    model: str | None,
    limit: int | None = None,
    cells: int | None = CELLS_PER_IMAGE,
    cue_cache: Path | None = None,
):
    predictor = None
    if model:
        from ncl_core.inference.predictor import Predictor

        predictor = Predictor.load(model, device="cpu")
    xs, ys = [], []
    rng = np.random.default_rng(0)
    samples = scan_dataset(root).samples[:limit]  # authentic images too: all cells 0
    t0 = time.perf_counter()
    for i, sample in enumerate(samples):
        image, gt = read_pair(sample)
        ev = Evidence(image, sample.image.read_bytes(), sample.image.name, path=sample.image)
        maps = _cues(ev, sample, cue_cache)
        size = next(m.shape for m in maps.values() if m is not None)
        model_map = predictor.analyze(ev).probability if predictor else None
        maps["model"] = None if model_map is None else combined._to_grid(model_map, size)
        x = combined.features({c: maps.get(c) for c in combined.CUES})
        y = cv2.resize(gt.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        x, y = x.reshape(-1, x.shape[-1]), (y.reshape(-1) >= 0.5).astype(np.uint8)
        if cells is not None:
            pick = rng.choice(len(y), min(cells, len(y)), replace=False)
            x, y = x[pick], y[pick]
        xs.append(x)
        ys.append(y)
        if i % 20 == 0:
            print(f"{i}/{len(samples)} {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return xs, ys


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    pos, neg = int(label.sum()), int((1 - label).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranked = np.empty(len(score))
    ranked[order] = np.arange(1, len(score) + 1)
    # mean ranks for ties
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranked)
    ranked = (sums / counts)[inv]
    return float((ranked[label == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def select_features(args, root) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every cell's features and label of each image of a --select set (cached)."""
    cache = args.select_cache.with_suffix(f".{Path(root).name}.npz") if args.select_cache else None
    if cache and cache.exists():
        data = np.load(cache)
        return (
            [data[f"x{i}"] for i in range(int(data["n"]))],
            [data[f"y{i}"] for i in range(int(data["n"]))],
        )
    sx, sy = extract(Path(root), args.model, cells=None, cue_cache=args.cue_cache)
    if cache:
        np.savez_compressed(
            cache, n=len(sx), **{f"x{i}": x for i, x in enumerate(sx)},
            **{f"y{i}": y for i, y in enumerate(sy)},
        )  # fmt: skip
    return sx, sy


def image_threshold(args, weights: dict) -> dict:
    """The image score's threshold by the rule of a model's calibration (the best balanced
    accuracy among those that call at most ``--image-false-alarms`` of the authentic images of
    the --select sets manipulated), and what it achieves there."""
    from ncl_core.analysis import image_score
    from ncl_core.evaluation.calibrate import score_threshold

    scores, labels = [], []
    for root in args.select:
        for x, y in zip(*select_features(args, root)):
            scores.append(image_score(combined.combine(x, weights)))
            labels.append(bool(y.any()))
    if all(labels) or not any(labels):
        raise SystemExit("--image-false-alarms needs forged and authentic images in --select")
    threshold, accuracy = score_threshold(scores, labels, args.image_false_alarms)
    s, y = np.asarray(scores), np.asarray(labels)
    return {
        "threshold": round(threshold, 4),
        "max_false_alarm": args.image_false_alarms,
        "authentic_images": int((~y).sum()),
        "false_alarms": round(float((s[~y] >= threshold).mean()), 4),
        "forged_images": int(y.sum()),
        "forged_flagged": round(float((s[y] >= threshold).mean()), 4),
        "balanced_accuracy": round(accuracy, 4),
        "sets": [Path(root).name for root in args.select],
    }


def select(args, xs, ys, fitted) -> None:
    """Candidates: the fitted combiner, refits on fewer cues, the plain mean of the ranks."""
    cues = combined.CUES
    candidates = {"fitted, all cues": fitted["with_model"]}
    for drop in (("texture",), ("dq",), ("noise",), ("ela",), ("clone",)):
        keep = tuple(c for c in cues if c not in drop)
        candidates[f"refit without {'+'.join(drop)}"] = combined.fit(xs, ys, keep, args.l2)
    candidates["the stored combiner"] = combined.load_weights(str(combined.WEIGHTS_FILE))[
        "with_model"
    ]
    candidates["mean rank model+ela+noise"] = {
        "weights": {c: (1.0 if c in ("model", "ela", "noise") else 0.0) for c in cues},
        "bias": 0.0,
    }
    for c in cues:  # its rank, or its value where it has no rank feature
        feature = c if c in combined.RANKED else f"{c}:value"
        candidates[f"{c} alone"] = {"weights": {feature: 1.0}, "bias": 0.0}
    for root in args.select:
        sx, sy = select_features(args, root)
        print(
            f"\n{Path(root).name} ({len(sx)} images): per image, over cells: AUC, F1 at 0.5, "
            "flagged (mean, median)"
        )
        for name, w in candidates.items():
            aucs, f1s, flagged = [], [], []
            for x, y in zip(sx, sy):
                p = combined.combine(x, w)
                aucs.append(_auc(p, y))
                hit = p >= 0.5
                flagged.append(float(hit.mean()))
                if y.any():
                    f1s.append(
                        2 * float((hit & (y == 1)).sum()) / (float(hit.sum()) + float(y.sum()))
                    )
            f1 = np.mean(f1s) if f1s else float("nan")
            auc = np.nanmean(aucs) if not np.isnan(aucs).all() else float("nan")
            print(
                f"  {name:<34} {auc:.3f} {f1:.3f} {np.mean(flagged):.3f} {np.median(flagged):.3f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--drop", nargs="*", default=[], help="cues left out of the combiner")
    parser.add_argument(
        "--select",
        nargs="*",
        default=[],
        help="labeled sets (never the ones reported) on which each candidate combiner's mean "
        "per-image AUC over the cells is printed, to choose one",
    )
    parser.add_argument("--select-cache", type=Path, help="features of the --select sets")
    parser.add_argument(
        "--image-false-alarms",
        type=float,
        help="store an image-score threshold in the weights with a model's map, as a model's "
        "calibration sets it: the best balanced accuracy on the --select sets among the "
        "thresholds that call at most this share of their authentic images manipulated",
    )
    parser.add_argument(
        "--cue-cache",
        type=Path,
        help="folder keeping each image's cues other than the model's (a refit for another "
        "model then computes only its maps)",
    )
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        data = np.load(args.cache)
        n = int(data["n"])
        xs = [data[f"x{i}"] for i in range(n)]
        ys = [data[f"y{i}"] for i in range(n)]
    else:
        xs, ys = extract(args.root, args.model, args.limit, cue_cache=args.cue_cache)
        if args.cache:
            np.savez_compressed(
                args.cache,
                n=len(xs),
                **{f"x{i}": x for i, x in enumerate(xs)},
                **{f"y{i}": y for i, y in enumerate(ys)},
            )
    cues = tuple(c for c in combined.CUES if c not in args.drop)
    result = {
        "format": 1,
        "features": list(combined.FEATURES),
        "about": (
            "logistic regression of a cell's manipulated label on the per-image ranks of "
            f"{', '.join(combined.RANKED)} and the values of {', '.join(combined.VALUED)}, "
            f"fitted on {len(xs)} synthetic "
            f"images ({sum(1 for y in ys if not y.any())} of them authentic; splice, copy-move, "
            f"removal; JPEG, 512 px), {CELLS_PER_IMAGE} cells each, L2 {args.l2}; cues left "
            f"out: {', '.join(args.drop) or 'none'}; logit moved so that "
            f"the median authentic image has {100 * combined.AUTHENTIC_SHARE:.0f} % of its "
            "cells at or above 0.5"
        ),
        "with_model": combined.fit(xs, ys, cues, args.l2),
        "without_model": combined.fit(xs, ys, tuple(c for c in cues if c != "model"), args.l2),
    }
    if args.image_false_alarms is not None:
        calibration = image_threshold(args, result["with_model"])
        result["with_model"]["image_threshold"] = calibration["threshold"]
        result["image_calibration"] = calibration
        result["about"] += (
            "; image threshold (with the model's map) on the image score (the mean of the top "
            "0.5 % of the cells): the best balanced accuracy among those that call at most "
            f"{100 * args.image_false_alarms:.0f} % of the authentic images of "
            f"{', '.join(calibration['sets'])} manipulated"
        )
    print(json.dumps(result, indent=1))
    if args.select:
        select(args, xs, ys, result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
