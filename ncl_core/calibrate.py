"""Calibrate a model on labeled data: the image-score threshold that separates manipulated from
authentic images, the pixel threshold that localises best, and the real-data figures that a
model file shows about itself.

A raw image score of 0.5 means nothing by itself: a model trained from scratch may give every
image 0.5-0.56. The calibration finds, on validation images that hold both manipulated and
authentic examples, the score above which an image is worth an examiner's look (the threshold
with the best balanced accuracy), and records what it achieves, so that a verdict says what
was measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ncl_core.data.datasets import Sample
from ncl_core.evaluate import labeled_predictions
from ncl_core.infer import InferenceSettings, Predictor
from ncl_core.metrics import MetricAccumulator, image_metrics

PIXEL_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))


DEFAULT_MAX_FALSE_ALARM = 0.1


def score_threshold(
    scores: Sequence[float], labels: Sequence[bool], max_false_alarm: float | None = None
) -> tuple[float, float]:
    """The image-score threshold with the best balanced accuracy ((TPR + TNR) / 2), and that
    accuracy. Candidates are midpoints between neighbouring distinct scores. With
    ``max_false_alarm``, only thresholds that call at most that share of the authentic images
    manipulated are candidates: a finding an analyst can trust when it fires."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        raise ValueError("calibrating the image score needs manipulated and authentic images")
    distinct = np.unique(s)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[:-1] + distinct[1:]) / 2])
    best_t, best_acc = 0.5, -1.0
    candidates = np.append(candidates, distinct[-1] + 1e-6)  # "never": always allowed
    for t in candidates:
        pred = s >= t
        if max_false_alarm is not None and pred[~y].mean() > max_false_alarm:
            continue
        acc = 0.5 * (pred[y].mean() + (~pred[~y]).mean())
        if acc > best_acc:
            best_t, best_acc = float(t), float(acc)
    return best_t, best_acc


def _f1_by_threshold(prob: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image F1 at each of ``PIXEL_THRESHOLDS``, from one pass over the pixels."""
    edges = np.array((0.0, *PIXEL_THRESHOLDS, 1.0 + 1e-6))
    pos = np.histogram(prob[gt], edges)[0]
    neg = np.histogram(prob[~gt], edges)[0]
    # Pixels at or above threshold k: everything in the bins from k on.
    tp = np.cumsum(pos[::-1])[::-1][1:]
    fp = np.cumsum(neg[::-1])[::-1][1:]
    fn = gt.sum() - tp
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def calibrate(
    predictor: Predictor,
    samples: Sequence[Sample],
    settings: InferenceSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_false_alarm: float | None = DEFAULT_MAX_FALSE_ALARM,
) -> dict[str, Any]:
    """Analyse ``samples`` (manipulated with masks, and authentic) and return the calibration:
    ``threshold`` (pixel), ``score_threshold`` (image, calling at most ``max_false_alarm`` of
    the authentic images manipulated; None: the best balanced accuracy whatever it costs),
    what they achieve, and the figures at the default threshold 0.5 with the all-manipulated
    floor. Unreadable files are skipped."""
    settings = predictor.resolve(settings or InferenceSettings())
    accumulator = MetricAccumulator()
    f1_grid: list[np.ndarray] = []
    scores: list[float] = []
    labels: list[bool] = []
    skipped: list[dict[str, str]] = []
    for _, prob, gt, score in labeled_predictions(
        predictor, samples, settings, skipped=skipped, progress=progress
    ):
        tampered = bool(gt.any())
        accumulator.add(prob, gt, score=score, tampered=tampered)
        scores.append(score)
        labels.append(tampered)
        if tampered:
            f1_grid.append(_f1_by_threshold(prob, gt))
    if not f1_grid:
        raise ValueError("calibration needs manipulated images with masks")
    mean_f1 = np.mean(f1_grid, axis=0)
    best = int(np.argmax(mean_f1))
    result = accumulator.result()
    record: dict[str, Any] = {
        "threshold": PIXEL_THRESHOLDS[best],
        "f1_at_threshold": float(mean_f1[best]),
        "n_tampered": int(sum(labels)),
        "n_authentic": int(len(labels) - sum(labels)),
        "n_skipped": len(skipped),
        "mode": settings.mode,
        "at_0.5": {
            k: result[k]
            for k in ("f1", "best_f1", "floor_f1", "auc", "iou")
            if not (isinstance(result[k], float) and math.isnan(result[k]))
        },
    }
    if 0 < sum(labels) < len(labels):
        t, acc = score_threshold(scores, labels, max_false_alarm)
        s, y = np.asarray(scores), np.asarray(labels, bool)
        record.update(
            score_threshold=round(t, 4),
            balanced_accuracy=round(acc, 4),
            max_false_alarm=max_false_alarm,
            false_alarm_rate=round(float((s[~y] >= t).mean()), 4),
            detection_rate=round(float((s[y] >= t).mean()), 4),
            image_auc=image_metrics(scores, labels)["auc"],
        )
    return record
