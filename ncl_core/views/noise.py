"""Noise: a map of the windows whose noise features do not fit the image's own model
(``noise_features``, after Splicebuster; ``method="level"``: the noise level itself), and the
local noise level from a wavelet residual, with the blocks whose level does not fit.

The finest diagonal wavelet band (Haar HH) holds mostly sensor noise; its median absolute
value per block (Donoho's estimator, sigma = MAD / 0.6745) ignores the few edges a block
holds. One camera gives one noise level across a photo: a block whose level departs from the
image's own distribution (robust z-score) came from elsewhere, or was blurred, denoised or
re-noised. In the level map brighter means more noise; in the features map, less alike.
"""

from __future__ import annotations

import numpy as np

from ncl_core.views import noise_features as nf
from ncl_core.views.base import (
    Evidence,
    NotApplicable,
    ViewResult,
    as_evidence,
    normalise,
    require_pixels,
    robust_scale,
    upsample_blocks,
)

DEFAULT_BLOCK = 32  # px (16 x 16 wavelet coefficients per block)
DEFAULT_Z = 3.0  # robust z-score beyond which a block departs from the image's noise
_MAD_TO_SIGMA = 1.0 / 0.6745
_MIN_BLOCKS = 4
MIN_JUDGED_SIGMA = 0.25  # grey levels: a median noise level below this cannot be compared to
# The map: the inconsistency of local noise features (default), or the noise level itself.
SPLICEBUSTER, LEVEL = "features", "level"
METHODS = (SPLICEBUSTER, LEVEL)


def haar_hh(gray: np.ndarray) -> np.ndarray:
    """The diagonal detail band of one Haar step (half size; odd last row/column dropped)."""
    h, w = (gray.shape[0] // 2) * 2, (gray.shape[1] // 2) * 2
    g = gray[:h, :w].astype(np.float32)
    return (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) * 0.5


def block_sigma(gray: np.ndarray, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Noise standard deviation (grey levels) per ``block`` x ``block`` px block."""
    if block < 4 or block % 2:
        raise ValueError(f"block must be an even number of px >= 4, got {block}")
    hh = np.abs(haar_hh(gray))
    c = block // 2
    rows, cols = hh.shape[0] // c, hh.shape[1] // c
    if rows == 0 or cols == 0:
        return np.zeros((0, 0), np.float32)
    tiles = hh[: rows * c, : cols * c].reshape(rows, c, cols, c).transpose(0, 2, 1, 3)
    return (np.median(tiles.reshape(rows, cols, c * c), axis=2) * _MAD_TO_SIGMA).astype(np.float32)


def inconsistency_map(gray: np.ndarray, height: int, width: int) -> tuple[np.ndarray, dict]:
    """The Splicebuster-style map (``noise_features``): each window's distance from the model
    of the image's own noise features, per pixel, with its figures."""
    cells = nf.outlier_distance(nf.window_features(gray))
    typical = float(np.median(cells))
    spread = float(np.quantile(cells, 0.99))
    pixels = upsample_blocks(cells, nf.CELL, height, width)
    scale = max(spread, typical * 2.0, 1e-6)
    details = {
        "method": SPLICEBUSTER,
        "cell_px": nf.CELL,
        "window_px": nf.CELL * nf.WINDOW_CELLS,
        "median_distance": round(typical, 3),
        "p99_distance": round(spread, 3),
    }
    return np.clip(pixels / scale, 0.0, 1.0).astype(np.float32), details


def compute(
    source: Evidence | np.ndarray,
    block: int = DEFAULT_BLOCK,
    z_threshold: float = DEFAULT_Z,
    method: str = SPLICEBUSTER,
) -> ViewResult:
    if method not in METHODS:
        raise ValueError(f"noise method must be one of {', '.join(METHODS)}, got {method!r}")
    ev = as_evidence(source)
    require_pixels(ev, min_side=2 * block)
    sigma = block_sigma(ev.gray, block)
    if sigma.size < _MIN_BLOCKS:
        raise NotApplicable(f"image too small for {block} px noise blocks")
    median = float(np.median(sigma))
    # A clean synthetic or heavily compressed image has no measurable noise at all.
    if float(sigma.max()) < 0.05:
        raise NotApplicable("no measurable noise (a synthetic or flat image)")
    # z-scores of log sigma: noise levels spread multiplicatively.
    logs = np.log(sigma + 0.1)
    centre = float(np.median(logs))
    mad = float(np.median(np.abs(logs - centre))) * 1.4826
    # The floor is the estimator's own spread: a per-block sigma from 256 samples is only good
    # to about 10 %, so small images (few blocks) do not flag noise in their own estimate.
    z = (logs - centre) / max(mad, 0.15)
    outliers = np.abs(z) > z_threshold
    # Where most blocks hold no measurable noise (flat, or smoothed away by compression),
    # every textured block would "depart": nothing can be judged against such a level.
    unjudged = median < MIN_JUDGED_SIGMA
    if unjudged:
        outliers[:] = False
        z[:] = 0.0
    h, w = ev.image.shape[:2]
    level_map = upsample_blocks(sigma, block, h, w)
    scale = robust_scale(sigma, quantile=0.99, median_factor=2.0)
    noisy, smooth = int((z > z_threshold).sum()), int((z < -z_threshold).sum())
    summary = f"noise σ ≈ {median:.2f} grey levels (median of {sigma.size} blocks of {block} px)"
    if unjudged:
        summary += (
            "; most of the image holds no measurable noise (flat, or smoothed by compression), "
            "so departures are not judged; the map shows the noise level itself (brighter: "
            "more noise), not departures"
        )
    elif noisy or smooth:
        summary += (
            f"; {noisy} block(s) noisier and {smooth} smoother than the image's own level "
            f"(|z| > {z_threshold:g}), {100 * outliers.mean():.1f} % of the image"
        )
    else:
        summary += "; no block departs from the image's own level"
    details = {
        "block_px": int(block),
        "median_sigma": round(median, 3),
        "p99_sigma": round(float(np.quantile(sigma, 0.99)), 3),
        "n_blocks": int(sigma.size),
        "n_noisier": noisy,
        "n_smoother": smooth,
        "outlier_fraction": round(float(outliers.mean()), 5),
        "judged": not unjudged,
        "outliers": upsample_blocks(outliers, block, h, w) > 0.5,
    }
    if outliers.any():
        ys, xs = np.nonzero(outliers)
        details["outlier_box"] = [
            int(xs.min() * block),
            int(ys.min() * block),
            int(min(w, (xs.max() + 1) * block)),
            int(min(h, (ys.max() + 1) * block)),
        ]
    shown = normalise(level_map, scale)
    min_side = nf.CELL * (nf.WINDOW_CELLS + 1)
    if method == SPLICEBUSTER and min(h, w) >= min_side and not unjudged:
        shown, found = inconsistency_map(ev.gray, h, w)
        details["features"] = found
        summary += (
            f"; map: how far each {found['window_px']} px window's noise features lie from "
            "the image's own"
        )
    details["map"] = method if "features" in details else LEVEL
    return ViewResult("noise", shown, summary, True, details)
