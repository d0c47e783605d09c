"""Image degradations: the robustness presets of the paper's Table 3, and the primitives that
training augmentation and the synthetic-forgery post-processing share.

All functions take and return RGB uint8 H x W x 3 and are deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np


def resize_by(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale both sides by ``factor`` (bilinear); the caller resizes predictions back."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def gaussian_blur(image: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian blur with a ``kernel`` x ``kernel`` window (sigma derived from it, as OpenCV does)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"blur kernel must be a positive odd number, got {kernel}")
    return cv2.GaussianBlur(image, (kernel, kernel), 0)


def gaussian_noise(
    image: np.ndarray, sigma: float, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``sigma`` grey levels (0-255 scale), rounded and clipped."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(image.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)


_CHROMA = {
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}


def jpeg_compress(image: np.ndarray, quality: int, chroma: str = "420") -> np.ndarray:
    """Encode as JPEG at ``quality`` with ``chroma`` subsampling (libjpeg) and decode again."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # OpenCV encodes BGR; a swap would skew chroma
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if chroma != "420":  # libjpeg's default; left implicit so that 4:2:0 files stay as before
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _CHROMA[chroma]]
    ok, data = cv2.imencode(".jpg", bgr, params)
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


_NOISE_SIGMA = {"noise_3": 3.0, "noise_5": 5.0}

# Paper Table 3 presets. Noise uses a fixed seed so that every run perturbs identically; use
# apply_perturbation(..., seed=...) for another draw.
PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "resize_0.78": partial(resize_by, factor=0.78),
    "resize_0.25": partial(resize_by, factor=0.25),
    "blur_3": partial(gaussian_blur, kernel=3),
    "blur_5": partial(gaussian_blur, kernel=5),
    **{name: partial(gaussian_noise, sigma=sigma, rng=0) for name, sigma in _NOISE_SIGMA.items()},
    "jpeg_100": partial(jpeg_compress, quality=100),
    "jpeg_50": partial(jpeg_compress, quality=50),
}


def apply_perturbation(name: str, image: np.ndarray, seed: int = 0) -> np.ndarray:
    """Apply the preset ``name``; ``seed`` only matters for the noise presets."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    if name in _NOISE_SIGMA:
        return gaussian_noise(image, _NOISE_SIGMA[name], rng=seed)
    return PERTURBATIONS[name](image)
