"""Calibrate a model on labeled data: the image-score threshold that separates manipulated from
authentic images, the pixel threshold that localizes best while authentic photos stay quiet,
and the real-data figures that a model file shows about itself.

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
from ncl_core.evaluation.evaluate import labeled_predictions
from ncl_core.evaluation.metrics import MetricAccumulator, image_metrics
from ncl_core.inference.predictor import InferenceSettings, Predictor
from ncl_core.settings import QUIET_FLAGGED

PIXEL_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.991, 0.01))

DEFAULT_MAX_FALSE_ALARM = 0.1
# The pixel threshold may flag at most this share of the median authentic image: a map that
# marks a fifth of every untouched photo teaches an analyst to ignore it.
DEFAULT_MAX_FLAGGED = QUIET_FLAGGED


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


def _at_or_above(values: np.ndarray) -> np.ndarray:
    """How many of ``values`` lie at or above each of ``PIXEL_THRESHOLDS``, from one histogram:
    everything in the bins from threshold k on."""
    edges = np.array((0.0, *PIXEL_THRESHOLDS, 1.0 + 1e-6))
    counts = np.histogram(values, edges)[0]
    return np.cumsum(counts[::-1])[::-1][1:]


def _flagged_by_threshold(prob: np.ndarray) -> np.ndarray:
    """The share of an image's pixels at or above each of ``PIXEL_THRESHOLDS``."""
    return _at_or_above(prob) / max(prob.size, 1)


def pixel_threshold(
    mean_f1: np.ndarray, authentic_flagged: np.ndarray | None, max_flagged: float | None
) -> int:
    """Index into ``PIXEL_THRESHOLDS`` of the threshold with the best mean F1 among those at
    which the median authentic image (rows of ``authentic_flagged``) has at most
    ``max_flagged`` of its pixels flagged; without authentic images or a bound, the best F1.
    When no threshold is quiet enough, the highest."""
    allowed = np.ones(len(PIXEL_THRESHOLDS), bool)
    if max_flagged is not None and authentic_flagged is not None and len(authentic_flagged):
        allowed = np.median(authentic_flagged, axis=0) <= max_flagged
        if not allowed.any():
            return len(PIXEL_THRESHOLDS) - 1
    return int(np.argmax(np.where(allowed, mean_f1, -1.0)))


def _f1_by_threshold(prob: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image F1 at each of ``PIXEL_THRESHOLDS``, from one pass over the pixels."""
    tp, fp = _at_or_above(prob[gt]), _at_or_above(prob[~gt])
    fn = gt.sum() - tp
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def calibrate(
    predictor: Predictor,
    samples: Sequence[Sample],
    settings: InferenceSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_false_alarm: float | None = DEFAULT_MAX_FALSE_ALARM,
    max_flagged: float | None = DEFAULT_MAX_FLAGGED,
) -> dict[str, Any]:
    """Analyze ``samples`` (manipulated with masks, and authentic) and return the calibration:
    ``threshold`` (pixel: the best mean F1 among the thresholds that flag at most
    ``max_flagged`` of the median authentic image; None: the best F1 whatever it flags),
    ``score_threshold`` (image, calling at most ``max_false_alarm`` of the authentic images
    manipulated; None: the best balanced accuracy whatever it costs), what they achieve, and
    the figures at the default threshold 0.5 with the all-manipulated floor. Unreadable files
    are skipped."""
    settings = predictor.resolve(settings or InferenceSettings())
    accumulator = MetricAccumulator()
    f1_grid: list[np.ndarray] = []
    flagged_grid: list[np.ndarray] = []
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
        else:
            flagged_grid.append(_flagged_by_threshold(prob))
    if not f1_grid:
        raise ValueError("calibration needs manipulated images with masks")
    mean_f1 = np.mean(f1_grid, axis=0)
    authentic = np.asarray(flagged_grid) if flagged_grid else None
    best = pixel_threshold(mean_f1, authentic, max_flagged)
    result = accumulator.result()
    record: dict[str, Any] = {
        "threshold": PIXEL_THRESHOLDS[best],
        "f1_at_threshold": float(mean_f1[best]),
        "best_f1_threshold": PIXEL_THRESHOLDS[int(np.argmax(mean_f1))],
        "max_flagged": max_flagged,
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
    if authentic is not None:
        record["authentic_flagged_median"] = round(float(np.median(authentic[:, best])), 4)
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
