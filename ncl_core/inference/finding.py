"""The finding: the one sentence an analyst reads about an analyzed image.

Every place a score appears (the Analysis panel, ``ncl-forensics analyze``, the JSON of an
analysis, batch rows and reports) says it with ``image_finding``, in the same words:

* the **verdict**: the image score against the model's calibrated image-score threshold (the
  model file's ``inference.score_threshold``), or against 0.5 with "uncalibrated model" where
  the model has none;
* **where**: the map at the pixel threshold is called *localized* only when it is concentrated
  (at most ``LOCALIZED_MAX_AREA`` of the image in at most ``LOCALIZED_MAX_REGIONS`` connected
  regions); otherwise it is "spread over the image: no localisation". Area and region count are
  always given;
* a **hint** note where the model's own measured localisation (its calibration on real
  forgeries, else its validation) is near the all-manipulated floor: its map is then a hint,
  not a localisation, and the figure is quoted.

The model's figures reach this module through the analysis settings (``model_quality``,
written by ``Predictor.effective``), so a saved record can be worded again without the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ncl_core.analysis import Analysis
    from ncl_core.models.modelfile import ModelInfo

FINDING_POSITIVE = "manipulation indicated"
FINDING_NEGATIVE = "none indicated"
UNCALIBRATED_THRESHOLD = 0.5
# A map is localized only when concentrated: a small share of the image in few regions.
LOCALIZED_MAX_AREA = 0.15
LOCALIZED_MAX_REGIONS = 3
# Regions smaller than this share of the image are speckle, not counted.
MIN_REGION_FRACTION = 0.0005
# Regions are counted on the map scaled to at most this many px on its longer side.
REGION_GRID_PX = 512
# A model whose measured F1 is below this multiple of the floor (the F1 of marking every
# pixel) has not learned to localise: its map is a hint.
NEAR_FLOOR_RATIO = 1.5


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def model_quality(info: ModelInfo) -> dict[str, Any]:
    """What the model file says of its own localisation and calibration, for the finding:
    F1 at 0.5 and its floor (from the calibration on real forgeries, else the validation),
    and whether the model was fine-tuned from another."""
    cal = (info.inference or {}).get("calibration") or {}
    at = cal.get("at_0.5") if isinstance(cal.get("at_0.5"), dict) else {}
    record: dict[str, Any] = {"fine_tuned": bool(info.parent)}
    for source, figures in (("calibration", at), ("validation", info.metrics or {})):
        f1, floor = _number(figures.get("f1")), _number(figures.get("floor_f1"))
        if f1 is not None and floor is not None:
            record.update(f1=f1, floor_f1=floor, measured_on=source)
            break
    return record


def count_regions(mask: np.ndarray) -> int:
    """Connected regions of a boolean mask (8-connected, speckle below
    ``MIN_REGION_FRACTION`` of the image left out), counted on a grid of at most
    ``REGION_GRID_PX`` px a side, where a cell is set when any of its pixels is."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        return 0
    h, w = mask.shape
    step = max(1, math.ceil(max(h, w) / REGION_GRID_PX))
    cells = mask.astype(np.uint8)
    if step > 1:
        # A cell's value is the maximum of its step x step pixels: dilated with the kernel's
        # corner as anchor, then every step-th pixel; zeros beyond the edge, as padding would
        # give (0.5 ms a megapixel; reducing a reshaped view took 9).
        kernel = np.ones((step, step), np.uint8)
        grown = cv2.dilate(
            cells, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0
        )
        cells = np.ascontiguousarray(grown[::step, ::step])
    n, _, stats, _ = cv2.connectedComponentsWithStats(cells, connectivity=8)
    min_cells = max(1.0, MIN_REGION_FRACTION * cells.size)
    return int((stats[1:n, cv2.CC_STAT_AREA] >= min_cells).sum())


@dataclass(frozen=True)
class Finding:
    """An image's finding: the verdict, where the map points, and the one-line ``text``."""

    text: str
    indicated: bool
    score: float
    score_threshold: float
    calibrated: bool
    pixel_threshold: float
    area_fraction: float
    regions: int
    localized: bool
    hint: str | None = None

    def record(self) -> dict[str, Any]:
        """JSON-ready fields (``text`` first)."""
        return asdict(self)


def image_finding(
    score: float,
    probability: np.ndarray | None,
    pixel_threshold: float,
    settings: dict[str, Any] | None = None,
    *,
    area_fraction: float | None = None,
    regions: int | None = None,
) -> Finding:
    """The finding of an image score and its map at ``pixel_threshold``.

    ``settings``: the analysis settings (``Predictor.effective``): ``score_threshold`` (the
    model's calibrated one, or None) and ``model_quality``. Without ``probability``,
    ``area_fraction`` and ``regions`` must be given (a row read back from a journal).
    """
    settings = settings or {}
    calibrated_at = _number(settings.get("score_threshold"))
    calibrated = calibrated_at is not None
    cut = calibrated_at if calibrated else UNCALIBRATED_THRESHOLD
    indicated = score >= cut
    relation = "at or above" if indicated else "below"
    if calibrated:
        why = f"score {score:.2f} {relation} the model's calibrated {cut:.2f}"
    else:
        quality = settings.get("model_quality") or {}
        model = (
            "fine-tuned model, not calibrated"
            if quality.get("fine_tuned")
            else "uncalibrated model"
        )
        why = f"score {score:.2f} {relation} {cut:g}; {model}"
    text = f"{FINDING_POSITIVE if indicated else FINDING_NEGATIVE} ({why})"

    if probability is not None:
        mask = np.asarray(probability) >= pixel_threshold
        area_fraction = np.count_nonzero(mask) / mask.size if mask.size else 0.0
        regions = count_regions(mask)
    area = float(area_fraction or 0.0)
    regions = int(regions or 0)
    localized = 0 < area <= LOCALIZED_MAX_AREA and 0 < regions <= LOCALIZED_MAX_REGIONS
    plural = "region" if regions == 1 else "regions"
    extent = f"{100 * area:.1f} % of the image in {regions} {plural} at {pixel_threshold:.2f}"
    if area <= 0 or regions == 0:
        where = f"the map marks no region at {pixel_threshold:.2f}"
    elif not indicated:
        where = f"the map marks {extent}"
    elif localized:
        where = f"localized: {extent}"
    else:
        where = f"spread over the image: no localisation ({extent})"
    text += f"; {where}"

    hint = _hint(settings.get("model_quality") or {})
    if hint:
        text += f"; {hint}"
    return Finding(
        text=text,
        indicated=indicated,
        score=float(score),
        score_threshold=float(cut),
        calibrated=calibrated,
        pixel_threshold=float(pixel_threshold),
        area_fraction=area,
        regions=regions,
        localized=localized and indicated,
        hint=hint,
    )


def _hint(quality: dict[str, Any]) -> str | None:
    f1, floor = _number(quality.get("f1")), _number(quality.get("floor_f1"))
    if f1 is None or floor is None or f1 >= NEAR_FLOOR_RATIO * floor:
        return None
    where = "real forgeries" if quality.get("measured_on") == "calibration" else "its validation"
    return (
        f"the model's map is a hint, not a localisation (F1 {f1:.2f} on {where}, floor {floor:.2f})"
    )


def analysis_finding(analysis: Analysis, threshold: float | None = None) -> Finding:
    """The finding of an analysis, at its own pixel threshold or at ``threshold``."""
    return image_finding(
        float(analysis.score),
        analysis.probability,
        float(analysis.threshold if threshold is None else threshold),
        analysis.settings,
    )
