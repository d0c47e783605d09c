"""What every forensic view shares: the evidence it reads, the result it returns, small helpers.

A view is a function ``compute(evidence, **params) -> ViewResult``; the evidence is the
``ncl_core.evidence.image.Evidence`` the model analyzed, read once. ``ViewResult.map`` is a
float32 H x W map in [0, 1] of the image's size, brighter meaning more suspicious, or None
when the view does not apply (or, like metadata, draws no map). Views are pure numpy + OpenCV
(and Pillow for reading file structures); no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ncl_core.evidence.image import Evidence

# Below this side length or this spread of grey levels a map would be noise, not evidence.
MIN_SIDE = 16
FLAT_STD = 0.5


class NotApplicable(Exception):
    """Raised inside a view when the input cannot carry what it looks for; the text says why."""


@dataclass
class ViewResult:
    """The outcome of one view on one image."""

    name: str
    map: np.ndarray | None
    summary: str
    applicable: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def record(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays; details only where they are plain values)."""
        return {
            "applicable": self.applicable,
            "summary": self.summary,
            "details": _json_safe(self.details),
            "duration_s": round(self.duration_s, 3),
        }

    def map_u8(self) -> np.ndarray | None:
        """The map as 8-bit grey (0 = least, 255 = most suspicious), or None."""
        if self.map is None:
            return None
        m = np.nan_to_num(self.map.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return cv2.convertScaleAbs(np.clip(m, 0.0, 1.0), alpha=255.0)


def as_evidence(source: Evidence | np.ndarray) -> Evidence:
    if isinstance(source, Evidence):
        return source
    image = np.asarray(source)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"views take RGB uint8 H x W x 3 images, got {image.dtype} {image.shape}")
    return Evidence(image=np.ascontiguousarray(image))


def require_pixels(ev: Evidence, min_side: int = MIN_SIDE) -> None:
    """Refuse tiny and flat images with a reason an analyst can read."""
    h, w = ev.image.shape[:2]
    if min(h, w) < min_side:
        raise NotApplicable(f"image too small ({w} × {h} px; needs at least {min_side} px a side)")
    if float(ev.gray.std()) < FLAT_STD:
        raise NotApplicable("flat image (one grey level): nothing to measure")


def robust_scale(
    values: np.ndarray, quantile: float = 0.995, median_factor: float = 3.0, floor: float = 1e-6
) -> float:
    """The value that maps to 1.0: a high quantile, but never under ``median_factor`` x median
    nor under ``floor``.

    So the brightest few per mille saturate, while an image whose values are all alike (or all
    near zero) stays dim instead of being stretched into a bright picture of its own noise.
    """
    flat = values.reshape(-1)
    if flat.size == 0:
        return 1.0
    hi = float(np.quantile(flat, quantile))
    med = float(np.median(flat))
    return max(hi, median_factor * med, floor, 1e-6)


def normalise(values: np.ndarray, scale: float) -> np.ndarray:
    out = values.astype(np.float32) / np.float32(scale)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def upsample_blocks(blocks: np.ndarray, block: int, height: int, width: int) -> np.ndarray:
    """A per-block grid back to pixels (each block one flat tile), cropped/padded to H x W."""
    tiles = np.repeat(np.repeat(blocks.astype(np.float32), block, axis=0), block, axis=1)
    out = np.zeros((height, width), dtype=np.float32)
    h, w = min(height, tiles.shape[0]), min(width, tiles.shape[1])
    out[:h, :w] = tiles[:h, :w]
    if h < height:  # the last partial row of blocks repeats the one above
        out[h:, :w] = tiles[h - 1 : h, :w]
    if w < width:
        out[:, w:] = out[:, w - 1 : w]
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value if not isinstance(v, np.ndarray)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
