"""Evaluate a model on a labeled dataset, optionally under the paper's perturbations (Table 3)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ncl_core.data.datasets import Sample
from ncl_core.data.io import ImageReadError, read_image, read_mask
from ncl_core.data.perturb import PERTURBATIONS, apply_perturbation
from ncl_core.evaluation.metrics import MetricAccumulator
from ncl_core.inference.predictor import Predictor
from ncl_core.settings import DEFAULT_THRESHOLD, InferenceSettings


def manipulation_kinds(root: str | Path) -> dict[str, str]:
    """Image file name -> manipulation kind, from a ``synth.json`` beside the dataset (if any)."""
    record = Path(root) / "synth.json"
    if not record.is_file():
        return {}
    items = json.loads(record.read_text(encoding="utf-8")).get("items", [])
    return {Path(i["image"]).name: i["kind"] for i in items if "image" in i and "kind" in i}


def evaluate(
    predictor: Predictor,
    samples: Sequence[Sample],
    settings: InferenceSettings | None = None,
    perturbation: str | None = None,
    kinds: dict[str, str] | None = None,
    include_authentic: bool = False,
    progress: Callable[[int, int], None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Metrics over ``samples``: ``{"overall": {...}, "by_kind": {kind: {...}}, "n": int,
    "skipped": [{"image": path, "error": message}, ...]}``.

    Pixel metrics are per-image means over tampered images (the published convention) unless
    ``include_authentic``; image-level AUC / accuracy come from the image scores. Under a
    perturbation the prediction is made on the perturbed image and compared with the original
    mask (resized back when the perturbation resized the image). An image or mask that cannot
    be read is skipped and listed in ``skipped`` (``n`` counts the images measured), so one bad
    file does not cost the whole evaluation. F1, IoU and the flagged share are at
    ``threshold``.
    """
    if perturbation is not None and perturbation not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {perturbation!r}; choose from {', '.join(PERTURBATIONS)}"
        )
    kinds = kinds or {}
    overall = MetricAccumulator(threshold)
    by_kind: dict[str, MetricAccumulator] = {}
    settings = predictor.resolve(settings or InferenceSettings())
    skipped: list[dict[str, str]] = []
    for sample, prob, gt, score in labeled_predictions(
        predictor, samples, settings, perturbation, skipped, progress
    ):
        tampered = bool(gt.any())
        overall.add(prob, gt, score=score, tampered=tampered)
        kind = kinds.get(sample.image.name, "tampered" if tampered else "authentic")
        by_kind.setdefault(kind, MetricAccumulator(threshold)).add(
            prob, gt, score=score, tampered=tampered
        )
    # A false alarm is what an analyst would be told: the calibrated finding on an authentic
    # image (the image-score threshold stored with the model; 0.5 for an uncalibrated one).
    cal = predictor.effective(settings).get("score_threshold")
    alarm_at = float(cal) if cal is not None else 0.5
    authentic_scores = [s for s, t in zip(overall.scores, overall.score_labels) if not t]
    result = _clean(overall.result(include_authentic=include_authentic))
    if authentic_scores:
        alarms = sum(s >= alarm_at for s in authentic_scores)
        result.update(
            authentic_false_alarm=alarms / len(authentic_scores), alarm_threshold=alarm_at
        )
    return {
        "n": len(samples) - len(skipped),
        "skipped": skipped,
        "perturbation": perturbation,
        "mode": settings.mode,
        "overall": result,
        "by_kind": {
            kind: _clean(acc.result(include_authentic=include_authentic))
            for kind, acc in sorted(by_kind.items())
        },
    }


def labeled_predictions(
    predictor: Predictor,
    samples: Sequence[Sample],
    settings: InferenceSettings,
    perturbation: str | None = None,
    skipped: list[dict[str, str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, float]]:
    """``(sample, probability map, ground truth, image score)`` for each readable sample, the
    map at the mask's size. Under a perturbation the prediction is made on the perturbed image.
    Unreadable samples are appended to ``skipped`` (image, error) and left out."""
    for index, sample in enumerate(samples):
        try:
            image, gt = read_pair(sample)
        except ImageReadError as exc:
            if skipped is not None:
                skipped.append({"image": str(sample.image), "error": str(exc)})
        else:
            h, w = gt.shape
            if perturbation is not None:
                image = apply_perturbation(perturbation, image, seed=index)
            analysis = predictor.analyze(image, settings=settings)
            prob = analysis.probability
            if prob.shape != (h, w):
                prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
            yield sample, prob, gt, analysis.score
        if progress is not None:
            progress(index + 1, len(samples))


def read_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The image and its boolean ground truth (all False for an authentic image)."""
    image, _ = read_image(sample.image, check_damage=False)
    if sample.mask is None:
        return image, np.zeros(image.shape[:2], bool)
    gt, _ = read_mask(sample.mask, image.shape[:2], image_path=sample.image)
    return image, gt


def _clean(result: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe: NaN becomes None."""
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in result.items()
        if isinstance(v, (int, float, str, type(None)))
    }
