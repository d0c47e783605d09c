"""Processing chains and the views the self-supervised stage learns from (``pretrain``).

A *chain* is what a photo may go through between the camera and the analyst: a little blur or
sensor-like noise, downscaling, one or two JPEG compressions with or without chroma
subsampling. ``ChainViews`` cuts one region out of an authentic photo and gives three crops of
it: two from the region after one chain, at different places (a positive pair: the same photo
and the same processing, different content), and one after another chain where the first crop
is (a hard negative: the same content, other processing). An encoder that tells them apart has learned traces of
processing, not what the picture shows, which is what a spliced region betrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress, resize_by
from ncl_core.data.synth.photos import PhotoCache, native_crop
from ncl_core.data.transforms import to_tensor

SCALE_P = 0.6  # share of chains that downscale, by a factor in SCALE_RANGE
SCALE_RANGE = (0.5, 1.0)
JPEG_P = 0.8  # share of chains with a JPEG step; a second one follows in JPEG_TWICE_P of them
JPEG_TWICE_P = 0.3
JPEG_QUALITY = (60, 98)
CHROMA_444_P = 0.3  # the rest subsample chroma 4:2:0, as cameras and most encoders do
BLUR_P = 0.1
NOISE_P = 0.15
NOISE_SIGMA = (1.0, 4.0)
VIEWS = 3  # per item: two crops after one chain, one after another


@dataclass(frozen=True)
class Chain:
    """One processing chain; ``apply`` runs it: blur, noise, downscale, then the JPEGs."""

    scale: float = 1.0
    qualities: tuple[int, ...] = ()
    chroma: str = "420"
    blur: int = 0  # kernel side; 0: none
    noise: float = 0.0  # sigma in grey levels; 0: none

    def apply(self, image: np.ndarray, seed: int) -> np.ndarray:
        if self.blur:
            image = gaussian_blur(image, self.blur)
        if self.noise:
            image = gaussian_noise(image, self.noise, seed)
        if self.scale != 1.0:
            image = resize_by(image, self.scale)
        for quality in self.qualities:
            image = jpeg_compress(image, quality, self.chroma)
        return image

    def differs_from(self, other: Chain) -> bool:
        """Whether the two leave traces far enough apart to be told apart at all: another
        scale (by 0.1 or more), another number of JPEGs, a last quality 5 or more apart,
        another chroma subsampling, or blur or noise on one only."""
        if abs(self.scale - other.scale) >= 0.1 or len(self.qualities) != len(other.qualities):
            return True
        if self.qualities and (
            abs(self.qualities[-1] - other.qualities[-1]) >= 5 or self.chroma != other.chroma
        ):
            return True
        return bool(self.blur) != bool(other.blur) or bool(self.noise) != bool(other.noise)


def random_chain(rng: np.random.Generator) -> Chain:
    scale = float(rng.uniform(*SCALE_RANGE)) if rng.random() < SCALE_P else 1.0
    qualities: tuple[int, ...] = ()
    if rng.random() < JPEG_P:
        count = 2 if rng.random() < JPEG_TWICE_P else 1
        qualities = tuple(int(q) for q in rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, count))
    return Chain(
        scale=round(scale, 3),
        qualities=qualities,
        chroma="444" if rng.random() < CHROMA_444_P else "420",
        blur=3 if rng.random() < BLUR_P else 0,
        noise=round(float(rng.uniform(*NOISE_SIGMA)), 2) if rng.random() < NOISE_P else 0.0,
    )


def chain_pair(rng: np.random.Generator) -> tuple[Chain, Chain]:
    """Two chains that ``differs_from`` each other."""
    first = random_chain(rng)
    while True:
        second = random_chain(rng)
        if second.differs_from(first):
            return first, second


class ChainViews(Dataset):
    """``length`` items, each ``VIEWS`` crops of ``crop`` px from one region of one photo, as
    a float tensor ``[VIEWS, 3, crop, crop]`` normalised like the network's input: crops 0 and
    1 after one chain (from the left and the right half of the region), crop 2 after another
    chain, centred where crop 0 is (the same content, other processing).

    Item ``i`` is the same for the same ``seed`` (a resumed run sees what it would have seen).
    Photos are drawn with replacement; one smaller than the region is scaled up to it.
    """

    def __init__(
        self, photos: list[Path], crop: int, length: int, seed: int = 0, offset: int = 0
    ) -> None:
        if not photos:
            raise ValueError("no photos to learn from")
        self.photos = list(photos)
        self.crop = crop
        self.length = length
        self.seed = seed
        self.offset = offset  # item i of this dataset is item offset + i of the whole run
        self._cache: PhotoCache | None = None  # per worker process, made on first use

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(f"item {index} of {self.length}")
        if self._cache is None:
            self._cache = PhotoCache(budget_bytes=400_000_000)
        rng = np.random.default_rng([self.seed, self.offset + index])
        photo = self._cache.get(self.photos[int(rng.integers(len(self.photos)))])
        first, second = chain_pair(rng)
        # The region: two crops side by side after the smaller of the two scales.
        scale = min(first.scale, second.scale)
        want_h, want_w = math.ceil(self.crop / scale) + 1, math.ceil(2 * self.crop / scale) + 1
        height, width = photo.shape[:2]
        fit = min(1.0, height / want_h, width / want_w)
        region, _ = native_crop(photo, (min(height, want_h), min(width, want_w)), rng)
        if fit < 1.0:  # a small photo: the whole of it, brought up to the region's size
            region = resize_by(region, 1.0 / fit)
        seeds = rng.integers(0, 2**31, 2)
        same = _at_least(first.apply(region, int(seeds[0])), self.crop, 2 * self.crop)
        other = _at_least(second.apply(region, int(seeds[1])), self.crop, self.crop)
        half = same.shape[1] // 2
        left, right = same[:, :half], same[:, half:]
        ya, xa = _place(left, self.crop, rng)
        yb, xb = _place(right, self.crop, rng)
        # The other chain's crop shows what crop 0 shows: its centre at the same place of the
        # region, so that only the processing differs.
        centre_y = (ya + self.crop / 2) / same.shape[0]
        centre_x = (xa + self.crop / 2) / same.shape[1]
        yo = _clamp(round(centre_y * other.shape[0] - self.crop / 2), other.shape[0] - self.crop)
        xo = _clamp(round(centre_x * other.shape[1] - self.crop / 2), other.shape[1] - self.crop)
        views = [_cut(left, ya, xa, self.crop), _cut(right, yb, xb, self.crop)]
        views.append(_cut(other, yo, xo, self.crop))
        return torch.stack([to_tensor(v) for v in views])


def _at_least(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` scaled up just enough to be ``height`` x ``width`` (rounding can leave a
    processed region a pixel short)."""
    grow = max(height / image.shape[0], width / image.shape[1])
    return image if grow <= 1.0 else resize_by(image, grow * 1.01)


def _place(image: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    return (
        int(rng.integers(0, image.shape[0] - crop + 1)),
        int(rng.integers(0, image.shape[1] - crop + 1)),
    )


def _clamp(value: int, high: int) -> int:
    return min(max(value, 0), high)


def _cut(image: np.ndarray, y: int, x: int, crop: int) -> np.ndarray:
    return np.ascontiguousarray(image[y : y + crop, x : x + crop])
