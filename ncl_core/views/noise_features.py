"""Local noise features and a per-image outlier model, after Splicebuster.

Cozzolino, Poggi and Verdoliva, "Splicebuster: a new blind image splicing detector" (WIFS
2015): the high-pass residual of an image holds the traces its camera and processing left;
their local statistics (co-occurrences of the quantised residual) are alike over one photo and
differ in a region that came from another. No training: the model is fitted to each image's
own features, and the map is how far each window lies from it.

Here: the third-order residual along rows and along columns, quantised to {-1, 0, 1} (step
``STEP`` grey levels), co-occurrences of four neighbours along the residual's direction (81
codes each way), histograms per ``CELL`` px cell summed over windows of ``WINDOW_CELLS`` cells
(square roots: the Hellinger embedding), reduced to ``COMPONENTS`` principal components; a
Gaussian fitted robustly (re-fitted on the windows within its own chi-square bound, as an
outlier model does) gives each window its Mahalanobis distance, the map.
"""

from __future__ import annotations

import numpy as np

CELL = 16  # px
WINDOW_CELLS = 5  # windows of 80 px, one per cell, centred on it
STEP = 1.0  # grey levels: the smallest quantisation step of the residual
STEP_SHARE = 2.0  # the step as a multiple of the residual's median magnitude
COMPONENTS = 12
REFITS = 4
_CODES = 81  # 3 ** 4


def _shifted(a: np.ndarray, axis: int) -> list[np.ndarray]:
    """Four views of ``a``, shifted by 0..3 along ``axis`` (no copies)."""
    n = a.shape[axis] - 3
    if axis == 0:
        return [a[k : k + n] for k in range(4)]
    return [a[:, k : k + n] for k in range(4)]


def _codes(q: np.ndarray, axis: int) -> np.ndarray:
    """Co-occurrence code (0..80) of four consecutive values along ``axis``, per position."""
    p = _shifted(q, axis)
    return ((p[0] * 3 + p[1]) * 3 + p[2]) * 3 + p[3]


def _quantised(gray: np.ndarray, axis: int) -> np.ndarray:
    t = _shifted(np.asarray(gray, np.float32), axis)
    residual = 3 * (t[1] - t[2]) + t[3] - t[0]
    # The step follows the image's own residual (its median magnitude, at least ``STEP``): the
    # three levels then split its values about evenly, and a noisier or smoother region
    # shifts the balance instead of saturating.
    step = max(STEP, STEP_SHARE * float(np.median(np.abs(residual[::4, ::4]))))
    return (np.clip(np.rint(residual / step), -1, 1) + 1).astype(np.uint8)


def _cell_histograms(codes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Histogram of the codes in each ``CELL`` px cell: (rows, cols, 81)."""
    c = codes[: rows * CELL, : cols * CELL].astype(np.int32)
    cell = (np.arange(rows * CELL, dtype=np.int32) // CELL)[:, None] * cols + (
        np.arange(cols * CELL, dtype=np.int32) // CELL
    )
    c += cell * _CODES
    flat = np.bincount(c.ravel(), minlength=rows * cols * _CODES)
    return flat.reshape(rows, cols, _CODES).astype(np.float32)


def window_features(gray: np.ndarray) -> np.ndarray:
    """Features per cell (rows, cols, 162): the co-occurrence histograms of the window of
    ``WINDOW_CELLS`` x ``WINDOW_CELLS`` cells centred on it, normalised, square-rooted."""
    h, w = gray.shape
    rows, cols = (h - 6) // CELL, (w - 6) // CELL
    horizontal = _codes(_quantised(gray, 1), 1)  # (h, w - 6)
    vertical = _codes(_quantised(gray, 0), 0)  # (h - 6, w)
    cells = np.concatenate(
        [_cell_histograms(horizontal, rows, cols), _cell_histograms(vertical, rows, cols)], axis=2
    )
    r = WINDOW_CELLS // 2
    padded = np.pad(
        cells, ((r, r), (r, r), (0, 0)), mode="reflect" if min(rows, cols) > r else "edge"
    )
    summed = padded.cumsum(axis=0).cumsum(axis=1)
    summed = np.pad(summed, ((1, 0), (1, 0), (0, 0)))
    k = WINDOW_CELLS
    windows = summed[k:, k:] - summed[:-k, k:] - summed[k:, :-k] + summed[:-k, :-k]
    windows /= np.maximum(windows[..., :_CODES].sum(axis=2, keepdims=True), 1.0)
    return np.sqrt(windows)


def outlier_distance(features: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of each feature vector (..., d) from a Gaussian fitted robustly
    to the image's own vectors (principal components first)."""
    shape = features.shape[:-1]
    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x[:: max(1, len(x) // 20000)], full_matrices=False)
    d = min(COMPONENTS, vt.shape[0])
    z = x @ vt[:d].T
    inliers = np.ones(len(z), bool)
    # The chi-square(d) bound at about 99 %: d + 2.33 * sqrt(2 d).
    bound = d + 2.33 * np.sqrt(2 * d)
    for _ in range(REFITS):
        mean = z[inliers].mean(axis=0)
        cov = np.cov(z[inliers], rowvar=False) + 1e-6 * np.eye(d)
        diff = z - mean
        dist = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        keep = dist <= bound
        if keep.sum() < max(2 * d, len(z) // 2):
            keep = dist <= np.quantile(dist, 0.5)
        inliers = keep
    return np.sqrt(dist).reshape(shape).astype(np.float32)
