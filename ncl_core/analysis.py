"""The result of analyzing one image: the contract between inference, reports, CLI and GUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# [ours] image-level score: mean of the top 0.5 % pixel probabilities, so one hot pixel does
# not flag an image and a small forged region still does.
SCORE_TOP_FRACTION = 0.005


def image_score(probability: np.ndarray) -> float:
    """Image-level tampering score in [0, 1] from a probability map."""
    flat = probability.reshape(-1)
    if flat.size == 0:
        return 0.0
    k = max(1, int(round(flat.size * SCORE_TOP_FRACTION)))
    return float(np.partition(flat, flat.size - k)[-k:].mean())


@dataclass
class Analysis:
    """One analyzed image (the result contract shared by the GUI, the CLI and reports).

    ``probability`` is float32 H x W of the original (EXIF-oriented) image; ``mask`` is
    ``probability >= threshold``. ``score`` is the image-level tampering score in [0, 1].
    The threshold is how the analysis is looked at: ``at(t)`` is the same analysis at another
    one (no new inference), and every record of it names that one threshold.
    """

    source: str | None  # file path, or None for an in-memory array
    sha256: str | None  # of the file's bytes; None for an array
    width: int
    height: int
    probability: np.ndarray
    threshold: float
    score: float
    model_id: str
    model_sha256: str
    settings: dict[str, Any]
    device: str
    duration_s: float
    started_utc: str
    warnings: list[str] = field(default_factory=list)
    image_format: str | None = None  # e.g. "JPEG", when read from a file
    ok: bool = field(default=True, init=False)

    @property
    def mask(self) -> np.ndarray:
        return self.probability >= self.threshold

    @property
    def area_fraction(self) -> float:
        """Fraction of pixels at or above the threshold."""
        # A count, not a mean: the mean of a boolean mask converts it to float64 first
        # (10 ms for 9 MP against 1 ms), and the quotient is the same number.
        size = self.probability.size
        return np.count_nonzero(self.mask) / size if size else 0.0

    def at(self, threshold: float) -> Analysis:
        """The same analysis seen at ``threshold``: its ``mask`` and ``area_fraction`` there.
        No new inference; the probability map is shared, not copied."""
        threshold = float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if threshold == self.threshold:
            return self
        copy = Analysis(**{k: v for k, v in self.__dict__.items() if k != "ok"})
        copy.threshold = threshold
        return copy

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays), with the one threshold the mask and area are at."""
        settings = {k: v for k, v in self.settings.items() if k != "threshold"}
        return {
            "source": self.source,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "format": self.image_format,
            "threshold": self.threshold,
            "score": self.score,
            "area_fraction": self.area_fraction,
            "model_id": self.model_id,
            "model_sha256": self.model_sha256,
            "settings": settings,
            "device": self.device,
            "duration_s": self.duration_s,
            "started_utc": self.started_utc,
            "warnings": list(self.warnings),
        }


@dataclass
class AnalysisError:
    """An input that could not be analyzed; batches carry on past it."""

    source: str | None
    message: str
    sha256: str | None = None
    ok: bool = field(default=False, init=False)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "error": self.message}
