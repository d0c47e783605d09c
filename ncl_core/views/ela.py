"""Error level analysis: how much each region changes when the image is saved as JPEG again.

A region that has been through JPEG at about this quality changes little; a region pasted in
without that compression (or edited after it) changes more, so it is brighter. Edges and fine
texture are bright too, in any image: compare regions of alike content.
"""

from __future__ import annotations

import cv2
import numpy as np

from ncl_core.views.base import (
    Evidence,
    ViewResult,
    as_evidence,
    normalise,
    require_pixels,
    robust_scale,
)

DEFAULT_QUALITY = 90
DEFAULT_WINDOW = 8  # px; one JPEG block
# Grey levels shown as full brightness at the least: an image saved at the quality it is
# re-saved at changes by a level or two, which must not be stretched into a bright map.
MIN_SCALE = 6.0


def error_levels(image: np.ndarray, quality: int = DEFAULT_QUALITY, window: int = DEFAULT_WINDOW):
    """Local mean absolute difference (grey levels) between the image and its JPEG re-save."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if window < 1:
        raise ValueError(f"window must be >= 1 px, got {window}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    resaved = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    diff = cv2.absdiff(bgr, resaved)
    # The largest channel error: a colour-only edit shows as well as a luma one.
    err = diff.max(axis=2).astype(np.float32)
    return cv2.blur(err, (window, window), borderType=cv2.BORDER_REFLECT)


def compute(
    source: Evidence | np.ndarray, quality: int = DEFAULT_QUALITY, window: int = DEFAULT_WINDOW
) -> ViewResult:
    ev = as_evidence(source)
    require_pixels(ev)
    levels = error_levels(ev.image, quality, window)
    scale = robust_scale(levels, floor=MIN_SCALE)
    median = float(np.median(levels))
    high = float(np.quantile(levels, 0.99))
    # Share of the image with at least three times the typical error.
    hot = float((levels >= max(3.0 * median, 1.0)).mean())
    summary = (
        f"re-saved at quality {quality}: typical error {median:.1f}, 99th percentile "
        f"{high:.1f} grey levels; {100 * hot:.1f} % of the image errs at 3× the typical level"
    )
    details = {
        "quality": int(quality),
        "window_px": int(window),
        "median_error": round(median, 3),
        "p99_error": round(high, 3),
        "scale": round(scale, 3),
        "hot_fraction": round(hot, 5),
    }
    return ViewResult("ela", normalise(levels, scale), summary, True, details)
