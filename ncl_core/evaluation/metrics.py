"""Pixel- and image-level metrics, on the CPU or on the GPU the tensors live on.

Conventions (those of the published IML tables): a prediction is ``prob >= threshold``; F1,
IoU, precision and recall are 0 when there is no true positive (so an authentic image always
scores F1 = 0); AUC is the exact Mann-Whitney statistic with average ranks for ties and is NaN
when the ground truth has only one class. Dataset scores are means of per-image metrics over
the tampered images, unless authentic images are asked for explicitly.

With authentic images in the set, the accumulator also gives the **quiet F1**: the mean F1 of
the tampered images at the lowest threshold (on a grid of 1/256) at which the median authentic
image has at most 5 % of its pixels flagged. A map that lights textured content everywhere
scores well at 0.5 and poorly here.

Every localisation figure comes with the **all-manipulated floor**: the F1 of marking every
pixel as manipulated, 2r / (1 + r) for a manipulated fraction r. A model whose F1 is below the
floor has not learned to localise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ncl_core.settings import DEFAULT_THRESHOLD, QUIET_FLAGGED

ArrayLike = np.ndarray | torch.Tensor
# [ours] "quiet" F1: the localisation F1 at the threshold where the median authentic image has
# at most this share of its pixels flagged -- what a model localises once it stops marking
# untouched photos (an analyst's false alarms; QUIET_FLAGGED, in ``ncl_core.settings``).
# Thresholds are searched on a grid of QUIET_BINS.
QUIET_BINS = 256


@dataclass
class PixelMetrics:
    """Metrics of one image; ``best_f1`` is the best F1 over all thresholds, at ``best_threshold``;
    ``floor_f1`` is the F1 of marking every pixel as manipulated."""

    f1: float
    iou: float
    precision: float
    recall: float
    auc: float
    best_f1: float
    best_threshold: float
    floor_f1: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def pixel_metrics(
    prob: ArrayLike, gt: ArrayLike, threshold: float = DEFAULT_THRESHOLD
) -> PixelMetrics:
    """Metrics of a probability map against a ground-truth mask (H x W, numpy or torch).

    ``gt`` is bool, or numbers where a nonzero integer / a float >= 0.5 means tampered.
    Computed on ``prob``'s device.
    """
    return _pixel_metrics(*_flat_pair(prob, gt), threshold)


def _pixel_metrics(p: torch.Tensor, g: torch.Tensor, threshold: float) -> PixelMetrics:
    pred = p >= threshold
    counts = torch.stack([(pred & g).sum(), (pred & ~g).sum(), (~pred & g).sum()])
    auc, best_f1, best_threshold = _ranked(p, g)
    tp, fp, fn = counts.tolist()  # one device sync for the three counts
    positives = tp + fn
    return PixelMetrics(
        f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        iou=tp / (tp + fp + fn) if tp else 0.0,
        precision=tp / (tp + fp) if tp else 0.0,
        recall=tp / (tp + fn) if tp else 0.0,
        auc=auc,
        best_f1=best_f1,
        best_threshold=best_threshold,
        floor_f1=all_manipulated_f1(positives / p.numel()) if p.numel() else 0.0,
    )


def all_manipulated_f1(fraction: float) -> float:
    """F1 of marking every pixel as manipulated when ``fraction`` of them are: 2r / (1 + r)."""
    return 2 * fraction / (1 + fraction) if fraction > 0 else 0.0


def image_metrics(
    scores: Any, labels: Any, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Image-level AUC, accuracy and F1 (tampered = positive) from per-image scores."""
    s, y = _flat_pair(scores, labels)
    if s.numel() == 0:
        raise ValueError("image_metrics needs at least one score")
    pred = s >= threshold
    tp, fp, fn, correct = torch.stack(
        [(pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum(), (pred == y).sum()]
    ).tolist()
    auc, _, _ = _ranked(s, y)
    return {
        "auc": auc,
        "accuracy": correct / s.numel(),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
    }


class MetricAccumulator:
    """Collects per-image metrics over a dataset; ``result`` gives the means."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self.per_image: list[PixelMetrics] = []
        self.tampered: list[bool] = []
        self.scores: list[float] = []
        self.score_labels: list[bool] = []
        self.flagged: list[float] = []  # share of pixels at or above the threshold, per image
        # Per image, how many pixels fall in each of QUIET_BINS probability bins, manipulated
        # (row 0) and authentic (row 1) pixels apart: every threshold of the grid, afterwards.
        self.histograms: list[np.ndarray] = []

    def add(
        self,
        prob: ArrayLike,
        gt: ArrayLike,
        score: float | None = None,
        tampered: bool | None = None,
    ) -> PixelMetrics:
        """Add one image; ``tampered`` defaults to "the mask has a tampered pixel"."""
        p, g = _flat_pair(prob, gt)
        metrics = _pixel_metrics(p, g, self.threshold)
        if tampered is None:
            tampered = bool(g.any())
        self.per_image.append(metrics)
        self.tampered.append(bool(tampered))
        self.flagged.append(float((p >= self.threshold).float().mean()))
        self.histograms.append(bin_counts(p, g))
        if score is not None:
            self.scores.append(float(score))
            self.score_labels.append(bool(tampered))
        return metrics

    def __len__(self) -> int:
        return len(self.per_image)

    def result(self, include_authentic: bool = False) -> dict[str, Any]:
        """Means of the per-image pixel metrics (over tampered images unless asked otherwise),
        counts, and image-level metrics when scores were given."""
        rows = [m for m, t in zip(self.per_image, self.tampered) if t or include_authentic]
        out: dict[str, Any] = {
            "include_authentic": include_authentic,
            "threshold": self.threshold,
            "n_images": len(rows),
            "n_all": len(self.per_image),
            "n_tampered": sum(self.tampered),
            "n_authentic": len(self.tampered) - sum(self.tampered),
        }
        for name in ("f1", "iou", "precision", "recall", "best_f1", "floor_f1"):
            values = [getattr(m, name) for m in rows]
            out[name] = sum(values) / len(values) if values else math.nan
        aucs = [m.auc for m in rows if not math.isnan(m.auc)]
        out["auc"] = sum(aucs) / len(aucs) if aucs else math.nan
        out["n_auc"] = len(aucs)  # authentic images have no pixel AUC
        authentic = [f for f, t in zip(self.flagged, self.tampered) if not t]
        if authentic:  # how much of an authentic image is marked: a false alarm's size
            out["authentic_flagged_median"] = float(np.median(authentic))
            out.update(self._quiet())
        if self.scores:
            image = image_metrics(self.scores, self.score_labels, self.threshold)
            out.update({f"image_{k}": v for k, v in image.items()}, n_scored=len(self.scores))
        return out

    def _quiet(self) -> dict[str, float]:
        """``quiet_f1`` and ``quiet_threshold`` (see the module's docstring)."""
        hists = np.stack(self.histograms)  # images x 2 x bins
        tampered = np.asarray(self.tampered)
        k = quiet_bin(hists[~tampered])
        result = {"quiet_threshold": k / QUIET_BINS}
        if tampered.any():
            result["quiet_f1"] = float(np.mean([f1_at_bin(h, k) for h in hists[tampered]]))
        return result


def quiet_bin(authentic: np.ndarray, share: float = QUIET_FLAGGED) -> int:
    """The lowest grid threshold (a bin index) at which the median of the authentic images'
    ``N x 2 x QUIET_BINS`` histograms has at most ``share`` of its pixels at or above it."""
    hists = np.asarray(authentic, dtype=np.float64).sum(1)  # N x bins, all pixels
    above = np.flip(np.cumsum(np.flip(hists, 1), 1), 1)
    shares = above / np.maximum(hists.sum(1, keepdims=True), 1)
    quiet = np.flatnonzero(np.median(shares, axis=0) <= share)
    return int(quiet[0]) if quiet.size else QUIET_BINS - 1


def f1_at_bin(hist: np.ndarray, k: int) -> float:
    """F1 of one image's ``2 x QUIET_BINS`` histogram at the grid threshold ``k / QUIET_BINS``."""
    h = np.asarray(hist, dtype=np.float64)
    tp, fp = h[0, k:].sum(), h[1, k:].sum()
    fn = h[0].sum() - tp
    return float(2 * tp / (2 * tp + fp + fn)) if tp > 0 else 0.0


def bin_counts(p: torch.Tensor, g: torch.Tensor) -> np.ndarray:
    """2 x QUIET_BINS counts of the manipulated and the authentic pixels per probability bin
    (bin k holds [k, k + 1) / QUIET_BINS; 1.0 falls in the last)."""
    bins = (p.clamp(0, 1) * QUIET_BINS).long().clamp_(max=QUIET_BINS - 1)
    counts = torch.stack(
        [
            torch.bincount(bins[g], minlength=QUIET_BINS),
            torch.bincount(bins[~g], minlength=QUIET_BINS),
        ]
    )
    return counts.cpu().numpy().astype(np.int64)


def _flat_pair(values: Any, truth: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened float values and bool truth on the values' device; shapes must match."""
    v = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    t = truth if isinstance(truth, torch.Tensor) else torch.as_tensor(np.asarray(truth))
    if v.shape != t.shape:
        raise ValueError(f"prediction shape {tuple(v.shape)} differs from truth {tuple(t.shape)}")
    v = v.detach().reshape(-1)
    if v.dtype != torch.float64:
        v = v.float()
    if torch.isnan(v).any():
        raise ValueError("the prediction contains NaN")
    t = t.detach().reshape(-1).to(v.device)
    if t.dtype != torch.bool:
        t = t >= 0.5 if t.is_floating_point() else t != 0
    return v, t


def _ranked(values: torch.Tensor, truth: torch.Tensor) -> tuple[float, float, float]:
    """(AUC, best F1, its threshold) from one sort of the distinct values.

    Exact: ranks are averaged over ties and kept as doubled integers, so nothing rounds
    before the final division.
    """
    n = values.numel()
    n_pos = int(truth.sum())
    n_neg = n - n_pos
    if n_pos == 0:
        return math.nan, 0.0, math.nan
    distinct, inverse, counts = torch.unique(
        values, sorted=True, return_inverse=True, return_counts=True
    )
    pos = torch.bincount(inverse[truth], minlength=distinct.numel())
    auc = math.nan
    if n_neg:
        before = torch.cumsum(counts, 0) - counts
        doubled_rank_sum = int((pos * (2 * before + counts + 1)).sum())
        auc = (doubled_rank_sum - n_pos * (n_pos + 1)) / (2 * n_pos * n_neg)
    # Threshold at each distinct value, highest first: prediction = values >= it.
    tp = torch.flip(torch.cumsum(torch.flip(pos, [0]), 0), [0]).double()
    predicted = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0]).double()
    f1 = 2 * tp / (predicted + n_pos)
    best = int(torch.argmax(torch.flip(f1, [0])))  # ties: the highest threshold
    index = distinct.numel() - 1 - best
    return auc, float(f1[index]), float(distinct[index])
