"""Error level analysis: how much each region changes when the image is saved as JPEG again.

A region that has been through JPEG at the quality it is re-saved at changes little; a region
pasted in without that compression (or edited after it) changes more, so it is brighter. The
quality matters: re-saved at another quality than the image's own, every region is
re-quantised and the contrast fades. So by default (``quality="auto"``) the image is re-saved

* for a JPEG file: at the file's own quality, read from its quantisation tables;
* for a lossless file (PNG, TIFF, ...) with a JPEG past: at the quality of that past, found as
  the sharp minimum of the re-compression error over qualities (a JPEG ghost of the whole
  image: re-saving at the quality it was saved at leaves it almost unchanged, one step either
  side does not), confirmed by the 8 px block grid it left;
* otherwise at ``DEFAULT_QUALITY``.

The quality used and how it was chosen are in the summary; a quality can be chosen instead.
Edges and fine texture are bright too, in any image: compare regions of alike content.
"""

from __future__ import annotations

import cv2
import numpy as np

from ncl_core.views.base import (
    Evidence,
    NotApplicable,
    ViewResult,
    as_evidence,
    normalise,
    require_pixels,
)

AUTO = "auto"
DEFAULT_QUALITY = 90
DEFAULT_WINDOW = 8  # px; one JPEG block
# Grey levels shown as full brightness at the least: an image saved at the quality it is
# re-saved at changes by a level or two, which must not be stretched into a bright map.
MIN_SCALE = 6.0
# The history search: qualities tried (each needs two more on either side), the crop it
# runs on (grid-aligned, from the image's centre), and how deep the minimum must be: the error
# at the found quality below this share of the smaller of its neighbours'.
HISTORY_QUALITIES = tuple(range(30, 99))
HISTORY_CROP = 512
HISTORY_DIP = 0.6
MIN_NEIGHBOUR_ERROR = 0.1  # grey levels
HOW_FILE = "the file's own quality, from its quantisation tables"
HOW_HISTORY = "its JPEG history, estimated (re-compression minimum)"
HOW_DEFAULT = "no JPEG history found: the default"
HOW_CHOSEN = "chosen"


def _resave(rgb: np.ndarray, quality: int) -> np.ndarray:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _resave_gray(gray: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def error_levels(image: np.ndarray, quality: int = DEFAULT_QUALITY, window: int = DEFAULT_WINDOW):
    """Local mean absolute difference (grey levels) between the image and its JPEG re-save."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if window < 1:
        raise ValueError(f"window must be >= 1 px, got {window}")
    diff = cv2.absdiff(image, _resave(image, quality))
    # The largest channel error: a colour-only edit shows as well as a luma one (per channel
    # plane: numpy's max over a last axis of 3 is many times slower on a large image).
    r, g, b = cv2.split(diff)
    err = cv2.max(cv2.max(r, g), b).astype(np.float32)
    return cv2.blur(err, (window, window), borderType=cv2.BORDER_REFLECT)


def blockiness(gray: np.ndarray) -> float:
    """Mean horizontal and vertical step across the 8 px grid's lines over the mean step
    elsewhere: about 1 for an image never JPEG-compressed on this grid, above it after."""
    g = np.asarray(gray, np.float32)
    ratios = []
    for steps in (np.abs(np.diff(g, axis=1)).mean(axis=0), np.abs(np.diff(g, axis=0)).mean(axis=1)):
        if steps.size < 16:
            continue
        on_grid = np.zeros(steps.size, bool)
        on_grid[7::8] = True
        ratios.append(float(steps[on_grid].mean() / max(float(steps[~on_grid].mean()), 1e-6)))
    return float(np.mean(ratios)) if ratios else 1.0


def jpeg_history(image: np.ndarray) -> tuple[int | None, dict[str, float]]:
    """The quality an image (its pixels) was once JPEG-compressed at, or None.

    The re-compression error of a grid-aligned central crop is measured at every quality of
    ``HISTORY_QUALITIES``; a past compression at q shows as a sharp minimum at q (its error a
    share ``HISTORY_DIP`` or less of the error two qualities either side). Returns the quality
    and the evidence (the depth of the minimum, the blockiness).
    """
    h, w = image.shape[:2]
    side = HISTORY_CROP
    y0 = max(0, (h - side) // 2) // 8 * 8
    x0 = max(0, (w - side) // 2) // 8 * 8
    # Luma only: it is stored at full resolution, while a colour image's chroma went through
    # subsampling, whose round trip is not idempotent.
    crop = image[y0 : y0 + side, x0 : x0 + side]
    luma = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)[:, :, 0])
    evidence = {"blockiness": round(blockiness(luma), 3)}
    if min(luma.shape) < 32:
        return None, evidence
    qualities = tuple(range(HISTORY_QUALITIES[0] - 2, HISTORY_QUALITIES[-1] + 3))
    # The median block: a pasted or edited part (a minority) does not hide the host's past.
    h8, w8 = luma.shape[0] // 8 * 8, luma.shape[1] // 8 * 8
    luma = np.ascontiguousarray(luma[:h8, :w8])
    ref = luma.astype(np.int16)

    def error(q: int) -> float:
        diff = np.abs(ref - _resave_gray(luma, q)).astype(np.float32)
        return float(np.median(cv2.resize(diff, (w8 // 8, h8 // 8), interpolation=cv2.INTER_AREA)))

    errors = np.array([error(q) for q in qualities])
    # Where both neighbours barely change the image either (flat, or near quality 100), no
    # minimum can be told from the estimator's noise.
    # Neighbours two steps away: adjacent qualities often share most of their table entries.
    neighbours = np.minimum(errors[:-4], errors[4:])
    depth = np.where(
        neighbours >= MIN_NEIGHBOUR_ERROR, errors[2:-2] / np.maximum(neighbours, 1e-6), 1.0
    )
    best = int(np.argmin(depth))
    evidence["dip"] = round(float(depth[best]), 3)
    if depth[best] > HISTORY_DIP:
        return None, evidence
    return int(HISTORY_QUALITIES[best]), evidence


def choose_quality(ev: Evidence, quality: int | str = AUTO) -> tuple[int, str, dict]:
    """The quality to re-save at, how it was chosen (``HOW_*``) and the evidence for it."""
    if quality != AUTO:
        try:
            q = int(quality)
        except (TypeError, ValueError):
            raise ValueError(f"JPEG quality must be 1..100 or auto, got {quality!r}") from None
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {q}")
        return q, HOW_CHOSEN, {}
    if ev.data is not None:
        from ncl_core.views.jpeg import estimate_quality, read_tables

        try:
            tables, _ = read_tables(ev.data)
        except NotApplicable:
            pass  # not a JPEG file: look for a JPEG past in its pixels
        else:
            q, exact, _ = estimate_quality(tables)
            return q, HOW_FILE, {"tables_exact_ijg": exact}
    found, evidence = jpeg_history(ev.image)
    if found is None:
        return DEFAULT_QUALITY, HOW_DEFAULT, evidence
    return found, HOW_HISTORY, evidence


def compute(
    source: Evidence | np.ndarray, quality: int | str = AUTO, window: int = DEFAULT_WINDOW
) -> ViewResult:
    ev = as_evidence(source)
    require_pixels(ev)
    used, how, evidence = choose_quality(ev, quality)
    levels = error_levels(ev.image, used, window)
    # The order statistics in one partition of the map, not four; the scale as
    # ``robust_scale(levels, floor=MIN_SCALE)`` takes it: the 99.5th percentile, at least
    # 3 x the median and MIN_SCALE.
    median, high, top = (float(v) for v in np.quantile(levels, [0.5, 0.99, 0.995]))
    scale = max(top, 3.0 * median, MIN_SCALE)
    # Share of the image with at least three times the typical error (and at least a level).
    limit = max(3.0 * median, 1.0)
    hot = float((levels >= limit).mean())
    # A re-save at the file's own quality leaves most blocks as they were: a typical error
    # under 0.05 is said as such, not as "0.0" (nor is 3 x 0 a level to compare with).
    typical = f"{median:.1f}" if median >= 0.05 else "under 0.1"
    above = (
        f"{limit:.1f} grey levels or more (3× the typical error)"
        if 3.0 * median >= 1.0
        else "1 grey level or more"
    )
    summary = (
        f"re-saved at quality {used} ({how}): typical error {typical} grey levels, 99th "
        f"percentile {high:.1f}; {100 * hot:.1f} % of the image errs by {above}; full "
        f"brightness at {scale:.1f} grey levels"
    )
    details = {
        "quality": int(used),
        "quality_source": how,
        "quality_requested": quality if quality == AUTO else int(used),
        "quality_evidence": evidence,
        "window_px": int(window),
        "median_error": round(median, 3),
        "p99_error": round(high, 3),
        "scale": round(scale, 3),
        "hot_fraction": round(hot, 5),
    }
    return ViewResult("ela", normalise(levels, scale), summary, True, details)
