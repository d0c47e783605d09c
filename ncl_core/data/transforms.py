"""Training augmentation (docs/METHOD.md, training), resizing and tensor conversion.

Training takes random crops at native scale: forensic traces (sensor noise, demosaicing, the
JPEG grid, resampling) live at the pixel scale and a resize of the whole image would destroy
them. A mild random rescale is the only scaling. Geometric steps move image and mask together;
photometric steps (blur, JPEG, noise) touch the image only.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ncl_core.data.augment_config import AugmentConfig
from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress

# As the authors' inference code normalises (the network is still trained from scratch).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Padding colour for zoomed-out crops: the mean, so that it normalises to zero.
_PAD_RGB = tuple(round(255 * m) for m in IMAGENET_MEAN)


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


def _crop_origin(length: int, size: int, centre: int | None, rng: np.random.Generator) -> int:
    """Start of a ``size`` window inside ``[0, length)``, holding ``centre`` when given.

    ``centre`` lands anywhere in the window, not in its middle: crops centred on manipulated
    pixels teach a network that the middle of an image is where edits are."""
    if length <= size:
        return 0
    if centre is None:
        return int(rng.integers(0, length - size + 1))
    start = centre - int(rng.integers(0, size))
    return int(min(max(start, 0), length - size))


def train_transform(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` x ``size`` crop at native scale (padded when smaller), optionally of
    a mildly rescaled image, then flip, blur, JPEG and noise by ``cfg``."""
    factor = 1.0
    if cfg.scale_p > 0 and rng.random() < cfg.scale_p:
        factor = float(rng.uniform(*cfg.scale_range))
    h, w = image.shape[:2]
    # The crop's footprint in the source: only it is resampled, which equals rescaling first.
    src = max(1, round(size / factor))
    cy = cx = None
    if cfg.tampered_crop_p > 0 and mask.any() and rng.random() < cfg.tampered_crop_p:
        ys, xs = np.nonzero(mask)
        pick = int(rng.integers(len(ys)))
        cy, cx = int(ys[pick]), int(xs[pick])
    y, x = _crop_origin(h, src, cy, rng), _crop_origin(w, src, cx, rng)
    image, mask = image[y : y + src, x : x + src], mask[y : y + src, x : x + src]
    if factor != 1.0:
        ch, cw = image.shape[:2]
        out_w, out_h = min(size, round(cw * factor)), min(size, round(ch * factor))
        image = resize_image(image, max(1, out_w), max(1, out_h))
        mask = resize_mask(mask, max(1, out_w), max(1, out_h))
    if cfg.hflip_p > 0 and rng.random() < cfg.hflip_p:
        image, mask = image[:, ::-1], mask[:, ::-1]
    ch, cw = image.shape[:2]
    if (ch, cw) != (size, size):
        y, x = int(rng.integers(0, size - ch + 1)), int(rng.integers(0, size - cw + 1))
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = _PAD_RGB
        canvas[y : y + ch, x : x + cw] = image
        padded = np.zeros((size, size), bool)  # padding is not tampered
        padded[y : y + ch, x : x + cw] = mask
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
