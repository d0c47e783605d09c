"""Datasets of forgeries: written to a folder (``generate_dataset``, with ``synth.json``) or
made on the fly for training (``SynthDataset``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

import ncl_core
from ncl_core.data.io import ImageReadError
from ncl_core.data.synth.forge import make_item
from ncl_core.data.synth.photos import PhotoCache, _SourceLoader, scan_photos
from ncl_core.data.synth.synth_config import MIN_PHOTO_SIDE, SynthConfig
from ncl_core.data.transforms import _PAD_RGB, mask_to_tensor, to_tensor
from ncl_core.errors import SynthError


def _pick_kind(
    index: int, count: int, n_authentic: int, types: tuple[str, ...], n_done: int
) -> str:
    """Authentic items spread evenly through a run; forgery kinds take turns, so counts balance."""
    authentic = math.floor((index + 1) * n_authentic / count) > math.floor(
        index * n_authentic / count
    )
    return "authentic" if authentic else types[n_done % len(types)]


def generate_dataset(
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    count: int,
    config: SynthConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``count`` images (forgeries, and authentic ones by ``authentic_fraction``).

    Layout: ``tampered/``, ``masks/`` (PNG 0/255, same stem), ``authentic/`` when any, and
    ``synth.json`` with the config and every item's recipe. ``out_dir`` must be new or empty
    and outside ``source_dir`` (sources are evidence and are never written to). Files that are
    not usable photos are listed in ``skipped_sources``; the rest is used.
    """
    config = config if config is not None else SynthConfig()
    source = Path(os.fspath(source_dir)).resolve()
    out = Path(os.fspath(out_dir)).resolve()
    if not source.is_dir():
        raise SynthError(f"{source}: not a folder; give a folder of authentic photos.")
    if out == source or source in out.parents:
        raise SynthError(
            f"{out}: is inside the source folder {source}; choose an output folder elsewhere."
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"{out}: exists and is not an empty folder; choose a new output folder.")
    if count < 1:
        raise SynthError("count must be at least 1")
    sources, problems = scan_photos(source)
    if not sources:
        raise SynthError(
            f"{source}: no usable photo (JPEG, PNG, TIFF, BMP, WebP, GIF of at least "
            f"{MIN_PHOTO_SIDE} px a side)."
        )

    n_authentic = round(count * config.authentic_fraction)
    folders = ["tampered", "masks"] + (["authentic"] if n_authentic else [])
    for name in folders:
        (out / name).mkdir(parents=True, exist_ok=True)
    loader = _SourceLoader(sources)
    items: list[dict[str, Any]] = []
    by_kind = dict.fromkeys(config.types, 0)
    n_tampered = 0
    for index in range(count):
        rng = np.random.default_rng([config.seed, index])
        kind = _pick_kind(index, count, n_authentic, config.types, n_tampered)
        photo_path, photo = loader.draw(rng)
        donor_path, donor = None, None
        if kind == "splice" and rng.random() >= config.self_splice_p and len(sources) > 1:
            donor_path, donor = loader.draw(rng, avoid=photo_path)
        image, mask, recipe = make_item(photo, donor, kind, rng, config)
        recipe["host"]["source"] = photo_path.relative_to(source).as_posix()
        if "donor" in recipe:
            used = donor_path if donor_path is not None else photo_path
            recipe["donor"]["source"] = used.relative_to(source).as_posix()
        stem = f"{index:06d}_{kind}"
        item: dict[str, Any] = {**recipe}
        if kind == "authentic":
            item["image"] = _write_image(out / "authentic", stem, image, config)
        else:
            n_tampered += 1
            item["image"] = _write_image(out / "tampered", stem, image, config)
            item["mask"] = _write_png(out / "masks" / f"{stem}.png", mask.astype(np.uint8) * 255)
            by_kind[kind] += 1
        items.append(item)
        if progress is not None:
            progress(index + 1, count)

    skipped = problems + [f"{s['source']}: {s['error']}" for s in loader.skipped]
    record = {
        "generator": "ncl_core.data.synth",
        "ncl_core_version": ncl_core.__version__,
        "source_dir": str(source),
        "n_sources": len(sources),
        "count": count,
        "config": config.to_dict(),
        "skipped_sources": skipped,
        "items": items,
    }
    json_path = out / "synth.json"
    json_path.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return {
        "out_dir": str(out),
        "json": str(json_path),
        "count": count,
        "n_tampered": n_tampered,
        "n_authentic": count - n_tampered,
        "by_type": by_kind,
        "n_sources": len(sources),
        "skipped_sources": skipped,
    }


def pad_to(
    image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Place a smaller image at a random spot of a ``size`` x ``size`` canvas of the mean
    colour (padding is not tampered)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, mask
    y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = _PAD_RGB
    canvas[y : y + h, x : x + w] = image
    padded = np.zeros((size, size), bool)
    padded[y : y + h, x : x + w] = mask
    return canvas, padded


class SynthDataset(Dataset):
    """Forgeries made on the fly from authentic photos, as SegmentationDataset-style items of
    ``size`` x ``size`` (smaller crops padded), horizontally flipped half of the time.

    Item ``index`` uses host photo ``index % len(photos)``; everything else is drawn from an RNG
    seeded by (config.seed, epoch, index), so runs are reproducible; call ``set_epoch``. A
    photo that fails to decode is replaced by the next one.
    """

    def __init__(
        self,
        photos: Sequence[str | os.PathLike[str]],
        config: SynthConfig | None = None,
        length: int | None = None,
        hflip_p: float = 0.5,
    ) -> None:
        if not photos:
            raise SynthError("SynthDataset needs at least one photo")
        self.photos = [Path(os.fspath(p)) for p in photos]
        self.config = config if config is not None else SynthConfig()
        self.length = int(length) if length is not None else len(self.photos)
        self.hflip_p = hflip_p
        self.epoch = 0
        self._cache: PhotoCache | None = None  # made in the worker process that uses it

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}

    def _photo(self, position: int) -> tuple[Path, np.ndarray]:
        if self._cache is None:
            self._cache = PhotoCache()
        for step in range(len(self.photos)):
            path = self.photos[(position + step) % len(self.photos)]
            try:
                return path, self._cache.get(path)
            except ImageReadError:
                continue
        raise SynthError("no source photo could be decoded")

    def __getitem__(self, index: int) -> dict[str, Any]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        n = len(self.photos)
        path, photo = self._photo(index % n)
        authentic = rng.random() < cfg.authentic_fraction
        kind = "authentic" if authentic else str(rng.choice(cfg.types))
        donor = None
        if kind == "splice" and n > 1 and rng.random() >= cfg.self_splice_p:
            _, donor = self._photo((index % n + int(rng.integers(1, n))) % n)
        image, mask, _ = make_item(photo, donor, kind, rng, cfg)
        image, mask = pad_to(image, mask, cfg.size, rng)
        if rng.random() < self.hflip_p:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return {"image": to_tensor(image), "mask": mask_to_tensor(mask), "path": str(path)}


def _write_image(folder: Path, stem: str, image: np.ndarray, config: SynthConfig) -> str:
    if config.image_format == "jpg":
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, config.save_quality])
        path = folder / f"{stem}.jpg"
        if not ok:
            raise SynthError(f"{path}: OpenCV failed to encode the image")
        path.write_bytes(data.tobytes())
        return f"{folder.name}/{path.name}"
    return _write_png(folder / f"{stem}.png", image)


def _write_png(path: Path, array: np.ndarray) -> str:
    """Encode in memory and write bytes: cv2.imwrite cannot open non-ASCII paths on Windows."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise SynthError(f"{path}: OpenCV failed to encode the image")
    path.write_bytes(data.tobytes())
    return f"{path.parent.name}/{path.name}"
