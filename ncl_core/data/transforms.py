"""Training augmentation (NCL_METHOD.md section 8), resizing and tensor conversion.

Geometric steps move image and mask together; photometric steps (blur, JPEG, noise) touch the
image only, since they do not move the tampered region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ncl_core.config import JsonConfig
from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress

# As the authors' inference code normalises (the network is still trained from scratch).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Padding colour for zoomed-out crops: the mean, so that it normalises to zero.
_PAD_RGB = tuple(round(255 * m) for m in IMAGENET_MEAN)


@dataclass
class AugmentConfig(JsonConfig):
    """Probabilities and ranges of the training augmentations; 0 switches a step off."""

    hflip_p: float = 0.5  # [paper, DeepLabV3+]
    scale_p: float = 1.0  # [paper, DeepLabV3+] random scale, then crop/pad back to size
    scale_range: tuple[float, float] = (0.5, 2.0)  # DeepLabV3+'s range
    blur_p: float = 0.2  # [paper] Gaussian blur; probability [ours]
    blur_kernels: tuple[int, ...] = (3, 5, 7)
    jpeg_p: float = 0.3  # [ours] re-compression, for robustness
    jpeg_quality: tuple[int, int] = (50, 100)  # inclusive
    noise_p: float = 0.2  # [ours] Gaussian noise, for robustness
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # grey levels on the 0-255 scale

    def __post_init__(self) -> None:
        for name in ("hflip_p", "scale_p", "blur_p", "jpeg_p", "noise_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError("scale_range must be (low, high) with 0 < low <= high")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError("jpeg_quality must be (low, high) within 1..100")
        if any(k < 1 or k % 2 == 0 for k in self.blur_kernels):
            raise ValueError("blur_kernels must be positive odd numbers")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation: training input is then just the plain resize."""
        return cls(hflip_p=0.0, scale_p=0.0, blur_p=0.0, jpeg_p=0.0, noise_p=0.0)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ignoring aspect: area averaging when shrinking (no aliasing), bilinear otherwise."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width <= w and height <= h
    return cv2.resize(
        image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a bool mask: area fraction >= 0.5 when shrinking, nearest otherwise."""
    h, w = mask.shape[:2]
    if (w, h) == (width, height):
        return mask
    if width <= w and height <= h:
        frac = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
        return frac >= 0.5
    small = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return small.astype(bool)


def train_transform(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment an RGB uint8 image and its bool mask into ``size`` x ``size`` (aspect not kept)."""
    scaled = size
    if cfg.scale_p > 0 and rng.random() < cfg.scale_p:
        scaled = max(1, round(size * rng.uniform(*cfg.scale_range)))
    # One resize from the source straight to the scaled size: resampling twice blurs traces.
    image = resize_image(image, scaled, scaled)
    mask = resize_mask(mask, scaled, scaled)
    if cfg.hflip_p > 0 and rng.random() < cfg.hflip_p:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if scaled > size:
        y, x = (int(v) for v in rng.integers(0, scaled - size + 1, size=2))
        image, mask = image[y : y + size, x : x + size], mask[y : y + size, x : x + size]
    elif scaled < size:
        y, x = (int(v) for v in rng.integers(0, size - scaled + 1, size=2))
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = _PAD_RGB
        canvas[y : y + scaled, x : x + scaled] = image
        padded = np.zeros((size, size), bool)  # padding is not tampered
        padded[y : y + scaled, x : x + scaled] = mask
        image, mask = canvas, padded
    image = np.ascontiguousarray(image)
    if cfg.blur_p > 0 and rng.random() < cfg.blur_p:
        image = gaussian_blur(image, int(rng.choice(cfg.blur_kernels)))
    if cfg.jpeg_p > 0 and rng.random() < cfg.jpeg_p:
        image = jpeg_compress(
            image, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        )
    if cfg.noise_p > 0 and rng.random() < cfg.noise_p:
        image = gaussian_noise(image, float(rng.uniform(*cfg.noise_sigma)), rng)
    return image, np.ascontiguousarray(mask)


def eval_transform(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain resize of image and mask to ``size`` x ``size`` (the paper's evaluation)."""
    return resize_image(image, size, size), resize_mask(mask, size, size)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 H x W x 3 -> float32 3 x H x W, ImageNet-normalised."""
    # torch warns on read-only arrays (e.g. from Pillow); copying those is cheap and silent.
    array = np.ascontiguousarray(image)
    if not array.flags.writeable:
        array = array.copy()
    tensor = torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return tensor.sub_(mean).div_(std)


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """Bool H x W -> float32 1 x H x W in {0, 1}."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
