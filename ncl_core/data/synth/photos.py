"""Source photos: finding the usable ones, decoding them within a memory budget, the host's
native-scale crop and the donor canvas with a processing history of its own."""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ncl_core.data.io import ImageReadError, is_image_file, read_image
from ncl_core.data.perturb import gaussian_noise, jpeg_compress
from ncl_core.data.synth.synth_config import DONOR_STEPS, MIN_PHOTO_SIDE, SynthConfig
from ncl_core.data.transforms import resize_image
from ncl_core.errors import SynthError


def scan_photos(
    source_dir: str | os.PathLike[str], min_side: int = MIN_PHOTO_SIDE
) -> tuple[list[Path], list[str]]:
    """Usable photos under ``source_dir`` and one line per file that is not used (not an
    image, unreadable, too small). Reads headers only; the rest of the folder is used."""
    root = Path(os.fspath(source_dir))
    photos: list[Path] = []
    problems: list[str] = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if not is_image_file(path):
            if path.name not in ("manifest.json", "LICENSE-CC0.txt"):
                problems.append(f"{path}: not an image (by its name); skipped")
            continue
        try:
            with Image.open(path) as im:
                width, height = im.size
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one line, not a stop
            problems.append(f"{path}: cannot be read as an image ({exc}); skipped")
            continue
        if min(width, height) < min_side:
            problems.append(
                f"{path}: too small ({width}x{height}; at least {min_side} px a side); skipped"
            )
            continue
        photos.append(path)
    return photos, problems


class PhotoCache:
    """Decoded photos, least recently used out first, within a byte budget (a 6000 x 4000
    JPEG takes a third of a second to decode and 72 MB to hold)."""

    def __init__(self, budget_bytes: int = 1_500_000_000) -> None:
        self.budget = budget_bytes
        self._items: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path) -> np.ndarray:
        if path in self._items:
            self._items.move_to_end(path)
            return self._items[path]
        image = read_image(path, check_damage=False)[0]
        self._items[path] = image
        self._bytes += image.nbytes
        while self._bytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return image


def native_crop(
    photo: np.ndarray, size: int | tuple[int, int], rng: np.random.Generator, rescale: float = 1.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """A random crop of at most ``size`` px a side (or (height, width)) at native scale, or of
    the photo rescaled by ``rescale`` (only the crop's footprint is resampled, which is the
    same)."""
    size_h, size_w = (size, size) if isinstance(size, int) else size
    height, width = photo.shape[:2]
    src_h = min(height, math.ceil(size_h / rescale))
    src_w = min(width, math.ceil(size_w / rescale))
    y = int(rng.integers(0, height - src_h + 1))
    x = int(rng.integers(0, width - src_w + 1))
    crop = photo[y : y + src_h, x : x + src_w]
    record: dict[str, Any] = {"crop_xywh": [x, y, src_w, src_h]}
    if rescale != 1.0:
        out_w = min(size_w, max(8, round(src_w * rescale)))
        out_h = min(size_h, max(8, round(src_h * rescale)))
        crop = resize_image(crop, round(src_w * rescale), round(src_h * rescale))[:out_h, :out_w]
        record["rescale"] = round(rescale, 4)
    return np.ascontiguousarray(crop), record


def host_crop(
    photo: np.ndarray,
    rng: np.random.Generator,
    cfg: SynthConfig,
    size_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The host: a crop of ``size_hw`` (default ``cfg.size`` square) at native scale, or of
    the photo mildly rescaled first."""
    rescale = 1.0
    if rng.random() < cfg.host_rescale_p:
        rescale = float(rng.uniform(*cfg.host_rescale_range))
    return native_crop(photo, size_hw or (cfg.size, cfg.size), rng, rescale)


def donor_canvas(
    photo: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """A host-sized piece of ``photo`` with a history of its own: at least one donor-only
    processing step (resample, JPEG, noise, blur, gamma, colour shift), recorded in order."""
    h, w = shape
    probs = np.asarray(cfg.donor_step_p, float)
    chosen = [name for name, p in zip(DONOR_STEPS, probs) if rng.random() < p]
    if not chosen:
        chosen = [str(rng.choice(DONOR_STEPS, p=probs / probs.sum()))]
    steps: list[dict[str, Any]] = []
    factor = 1.0
    if "resample" in chosen:
        factor = float(rng.uniform(*cfg.donor_resample_range))
    src_h = min(photo.shape[0], math.ceil(h / factor) + 2)
    src_w = min(photo.shape[1], math.ceil(w / factor) + 2)
    y = int(rng.integers(0, photo.shape[0] - src_h + 1))
    x = int(rng.integers(0, photo.shape[1] - src_w + 1))
    canvas = photo[y : y + src_h, x : x + src_w]
    if factor != 1.0:
        canvas = resize_image(canvas, max(1, round(src_w * factor)), max(1, round(src_h * factor)))
        steps.append({"step": "resample", "factor": round(factor, 4)})
    # Reflect-pad a small photo up to the host's size; the region is drawn where content is.
    pad_h, pad_w = max(0, h - canvas.shape[0]), max(0, w - canvas.shape[1])
    if pad_h or pad_w:
        canvas = cv2.copyMakeBorder(canvas, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
    canvas = np.ascontiguousarray(canvas[:h, :w])
    for name in chosen:
        if name == "jpeg":
            q = int(rng.integers(cfg.donor_jpeg_quality[0], cfg.donor_jpeg_quality[1] + 1))
            canvas = jpeg_compress(canvas, q)
            steps.append({"step": "jpeg", "quality": q})
        elif name == "noise":
            sigma = float(rng.uniform(*cfg.donor_noise_sigma))
            canvas = gaussian_noise(canvas, sigma, rng)
            steps.append({"step": "noise", "sigma": round(sigma, 3)})
        elif name == "blur":
            sigma = float(rng.uniform(*cfg.donor_blur_sigma))
            canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
            steps.append({"step": "blur", "sigma": round(sigma, 3)})
        elif name == "gamma":
            gamma = float(rng.uniform(*cfg.donor_gamma_range))
            lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255)
            canvas = cv2.LUT(canvas, lut.astype(np.uint8))
            steps.append({"step": "gamma", "gamma": round(gamma, 3)})
        elif name == "colour":
            shift = rng.uniform(-cfg.donor_colour_shift, cfg.donor_colour_shift, 3)
            canvas = np.clip(canvas.astype(np.float32) + shift + 0.5, 0, 255).astype(np.uint8)
            steps.append({"step": "colour", "shift_rgb": [round(float(v), 2) for v in shift]})
    return canvas, {"crop_xywh": [x, y, src_w, src_h], "processing": steps}


class _SourceLoader:
    """Draws source photos with the item's RNG; unreadable ones are skipped and recorded."""

    def __init__(self, sources: list[Path]) -> None:
        self.sources = sources
        self.bad: set[Path] = set()
        self.skipped: list[dict[str, str]] = []
        self.cache = PhotoCache(budget_bytes=600_000_000)

    def draw(self, rng: np.random.Generator, avoid: Path | None = None) -> tuple[Path, np.ndarray]:
        while True:
            good = [p for p in self.sources if p not in self.bad]
            if avoid is not None and len(good) > 1:
                good = [p for p in good if p != avoid]
            if not good:
                raise SynthError("no source photo could be read; see the skipped list for reasons")
            path = good[int(rng.integers(len(good)))]
            try:
                return path, self.cache.get(path)
            except ImageReadError as exc:
                self.bad.add(path)
                self.skipped.append({"source": str(path), "error": str(exc)})
