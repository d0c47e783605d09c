"""Synthetic forgeries from authentic photos: splicing, copy-move and removal, with masks.

Analysts rarely have labeled forgeries but do have authentic photos. Every forgery changes
pixels only where its mask says (feathered edges: the mask is the blend alpha >= 0.5), then the
whole image gets the same kind of global post-processing an authentic image would get, so that
post-processing itself is no clue. Everything is drawn from a seeded RNG: same seed, same bytes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

import ncl_core
from ncl_core.config import JsonConfig
from ncl_core.data.io import ImageReadError, is_image_file, read_image
from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress
from ncl_core.data.transforms import (
    AugmentConfig,
    mask_to_tensor,
    resize_image,
    to_tensor,
    train_transform,
)

KINDS = ("splice", "copy_move", "removal")
_MAX_TRIES = 50


class SynthError(Exception):
    """The generator cannot run (no usable source photo, unsafe output folder, …)."""


@dataclass
class SynthConfig(JsonConfig):
    """What to generate and how; every value drawn per image is recorded in synth.json."""

    size: int = 512  # output side; sources are square-cropped and resized to it
    types: tuple[str, ...] = KINDS
    authentic_fraction: float = 0.0  # share of outputs that are untouched (post-processed) photos
    seed: int = 0
    # Tampered region
    area_range: tuple[float, float] = (0.03, 0.30)  # drawn target area, fraction of the image
    area_limits: tuple[float, float] = (0.02, 0.35)  # accepted final area; else redrawn
    removal_area_range: tuple[float, float] = (0.03, 0.12)  # inpainting large areas only smears
    polygon_p: float = 0.4  # else a smooth random blob
    feather_p: float = 0.5  # feathered (soft) edge instead of a hard cut
    feather_sigma: tuple[float, float] = (1.0, 4.0)  # px
    # Splicing and copy-move geometry
    transform_p: float = 0.6  # scale and rotate the pasted region (else only shift)
    scale_range: tuple[float, float] = (0.75, 1.33)
    rotation_range: tuple[float, float] = (-30.0, 30.0)  # degrees
    color_match_p: float = 0.5  # splice only: match the donor's colour statistics to the target
    min_shift: float = 0.5  # copy-move: source-target distance, in region diameters
    inpaint_radius: int = 5
    # Global post-processing, in this order
    resize_p: float = 0.2  # down-scale then back up to size (resampling traces)
    resize_range: tuple[float, float] = (0.5, 0.9)
    blur_p: float = 0.15
    blur_kernels: tuple[int, ...] = (3, 5)
    noise_p: float = 0.15
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 100)  # inclusive
    # Output files
    image_format: str = "png"  # "png" (lossless, default) or "jpg"
    save_quality: int = 95  # JPEG quality of the written file when image_format is "jpg"

    def __post_init__(self) -> None:
        self.types = tuple(self.types)  # a list from a CLI or JSON works the same
        unknown = set(self.types) - set(KINDS)
        if not self.types or unknown:
            raise ValueError(f"types must be a non-empty subset of {KINDS}, got {self.types!r}")
        if self.size < 32:
            raise ValueError("size must be at least 32 px")
        if not 0.0 <= self.authentic_fraction <= 1.0:
            raise ValueError("authentic_fraction must lie in [0, 1]")
        low, high = self.area_limits
        for name in ("area_range", "removal_area_range"):
            a, b = getattr(self, name)
            if not low <= a <= b <= high:
                raise ValueError(f"{name} must lie within area_limits {self.area_limits}")
        if self.image_format not in ("png", "jpg"):
            raise ValueError("image_format must be 'png' or 'jpg'")


def random_shape(area_px: float, rng: np.random.Generator, polygon: bool) -> np.ndarray:
    """A filled random shape of about ``area_px`` pixels on its tight bool canvas."""
    if polygon:
        n = int(rng.integers(3, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.45, 1.0, n)
    else:
        n = 72
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radii = np.ones(n)
        for k in range(2, 6):  # a few low harmonics give a smooth, object-like outline
            radii += rng.uniform(0, 0.45 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
        radii = np.clip(radii, 0.25, None)
    stretch = rng.uniform(0.6, 1.6)
    points = np.stack([radii * np.cos(angles) * stretch, radii * np.sin(angles) / stretch], 1)
    x, y = points[:, 0], points[:, 1]
    unit_area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace
    points *= math.sqrt(area_px / max(unit_area, 1e-6))
    points -= points.min(axis=0)
    width, height = (np.ceil(points.max(axis=0)).astype(int) + 1).tolist()
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def prepare_photo(
    image: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """A random square crop of the full short side, resized to ``size`` x ``size``."""
    height, width = image.shape[:2]
    side = min(height, width)
    y = int(rng.integers(0, height - side + 1))
    x = int(rng.integers(0, width - side + 1))
    square = resize_image(image[y : y + side, x : x + side], size, size)
    return np.ascontiguousarray(square), {"crop_xywh": [x, y, side, side]}


def make_forgery(
    photo: np.ndarray,
    donor: np.ndarray | None,
    kind: str,
    rng: np.random.Generator,
    config: SynthConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Forge ``photo`` (RGB uint8), then post-process; returns (image, bool mask, parameters).

    ``donor`` is the photo a splice takes its region from (resized to ``photo``'s size if it
    differs; ``None`` uses ``photo`` itself). Copy-move and removal ignore it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    height, width = photo.shape[:2]
    low, high = config.area_limits
    for _ in range(_MAX_TRIES):
        if kind == "removal":
            forged, alpha, params = _removal(photo, rng, config)
        else:
            source = photo if kind == "copy_move" or donor is None else donor
            if source.shape[:2] != (height, width):
                source = resize_image(source, width, height)
            forged, alpha, params = _paste(photo, source, kind, rng, config)
        mask = alpha >= 0.5
        fraction = float(mask.mean())
        if low <= fraction <= high:
            break
    else:
        raise SynthError(f"could not draw a {kind} region within {config.area_limits} of the image")
    params = {"kind": kind, "area_fraction": round(fraction, 6), **params}
    image, params["post"] = post_process(forged, rng, config)
    return image, mask, params


def post_process(
    image: np.ndarray, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Global post-processing (resize, blur, noise, JPEG) with the parameters it drew."""
    height, width = image.shape[:2]
    params: dict[str, Any] = {}
    if rng.random() < config.resize_p:
        factor = float(rng.uniform(*config.resize_range))
        small = resize_image(image, max(1, round(width * factor)), max(1, round(height * factor)))
        image = resize_image(small, width, height)
        params["resize"] = round(factor, 4)
    if rng.random() < config.blur_p:
        params["blur_kernel"] = int(rng.choice(config.blur_kernels))
        image = gaussian_blur(image, params["blur_kernel"])
    if rng.random() < config.noise_p:
        params["noise_sigma"] = round(float(rng.uniform(*config.noise_sigma)), 4)
        image = gaussian_noise(image, params["noise_sigma"], rng)
    if rng.random() < config.jpeg_p:
        params["jpeg_quality"] = int(
            rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)
        )
        image = jpeg_compress(image, params["jpeg_quality"])
    return image, params


def _draw_region(
    height: int,
    width: int,
    area_range: tuple[float, float],
    rng: np.random.Generator,
    config: SynthConfig,
) -> tuple[np.ndarray, int, int, dict[str, Any]]:
    """A shape that fits in the image, and its top-left corner."""
    polygon = bool(rng.random() < config.polygon_p)
    area = float(rng.uniform(*area_range)) * height * width
    shape = random_shape(area, rng, polygon)
    while shape.shape[0] > height or shape.shape[1] > width:  # too elongated: shrink it
        area *= 0.8
        shape = random_shape(area, rng, polygon)
    y = int(rng.integers(0, height - shape.shape[0] + 1))
    x = int(rng.integers(0, width - shape.shape[1] + 1))
    params = {
        "shape": "polygon" if polygon else "blob",
        "bbox_xywh": [x, y, shape.shape[1], shape.shape[0]],
    }
    return shape, y, x, params


def _paste(
    photo: np.ndarray, source: np.ndarray, kind: str, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Splice (from ``source``) or copy-move (``source`` is ``photo``) one region."""
    height, width = photo.shape[:2]
    shape, y, x, params = _draw_region(height, width, config.area_range, rng, config)
    target = np.array([x + shape.shape[1] / 2, y + shape.shape[0] / 2])
    scale, angle = 1.0, 0.0
    if rng.random() < config.transform_p:
        scale = float(rng.uniform(*config.scale_range))
        angle = float(rng.uniform(*config.rotation_range))
    # Where the region comes from: its footprint in the source must lie inside the image.
    reach = 0.5 * math.hypot(*shape.shape) / scale
    lo = np.minimum([reach, reach], [width / 2, height / 2])
    hi = np.maximum([width - reach, height - reach], lo)
    min_shift = (
        config.min_shift * 2 * math.sqrt(shape.sum() / math.pi) if kind == "copy_move" else 0
    )
    for _ in range(_MAX_TRIES):
        centre = rng.uniform(lo, hi)
        if np.linalg.norm(centre - target) >= min_shift:
            break
    # Inverse map (output pixel -> source pixel): rotate by -angle, shrink by 1/scale.
    rad = math.radians(angle)
    rot = np.array([[math.cos(rad), math.sin(rad)], [-math.sin(rad), math.cos(rad)]]) / scale
    inverse = np.hstack([rot, (centre - rot @ target)[:, None]])
    moved = cv2.warpAffine(
        source,
        inverse,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    alpha = np.zeros((height, width), np.float32)
    alpha[y : y + shape.shape[0], x : x + shape.shape[1]] = shape
    params.update(
        source_centre_xy=[round(float(v), 2) for v in centre],
        scale=round(scale, 4),
        rotation_deg=round(angle, 3),
    )
    if kind == "splice":
        params["color_match"] = bool(rng.random() < config.color_match_p)
        if params["color_match"]:
            moved = _match_colour(moved, photo, alpha > 0)
    params["feather_sigma"] = 0.0
    if rng.random() < config.feather_p:
        sigma = float(rng.uniform(*config.feather_sigma))
        # Open away parts thinner than the feather first: blurred, they would blend in below
        # alpha 0.5 and so change pixels that the mask (alpha >= 0.5) does not cover.
        side = 2 * int(math.ceil(1.5 * sigma)) + 1
        alpha = cv2.morphologyEx(
            alpha, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        )
        radius = int(math.ceil(3 * sigma))  # alpha is exactly 0 beyond the kernel
        alpha = cv2.GaussianBlur(alpha, (2 * radius + 1, 2 * radius + 1), sigma)
        params["feather_sigma"] = round(sigma, 4)
    a = alpha[:, :, None]
    forged = photo.astype(np.float32) * (1.0 - a) + moved.astype(np.float32) * a
    forged = np.clip(forged + 0.5, 0, 255).astype(np.uint8)
    # Where alpha is 0 the blend returns the photo exactly; make that explicit all the same.
    outside = alpha <= 0
    forged[outside] = photo[outside]
    return forged, alpha, params


def _match_colour(moved: np.ndarray, photo: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: the pasted pixels take the target area's mean and spread."""
    src = cv2.cvtColor(moved.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    dst = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    s_mean, s_std = src[region].mean(0), src[region].std(0) + 1e-3
    d_mean, d_std = dst[region].mean(0), dst[region].std(0) + 1e-3
    ratio = np.clip(d_std / s_std, 0.5, 2.0)  # keep texture recognisable on flat targets
    matched = (src - s_mean) * ratio + d_mean
    rgb = cv2.cvtColor(matched.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _removal(
    photo: np.ndarray, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Remove an object-shaped region by inpainting it from its surroundings."""
    height, width = photo.shape[:2]
    shape, y, x, params = _draw_region(height, width, config.removal_area_range, rng, config)
    hole = np.zeros((height, width), np.uint8)
    hole[y : y + shape.shape[0], x : x + shape.shape[1]] = shape
    method = "telea" if rng.random() < 0.5 else "ns"
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    forged = cv2.inpaint(photo, hole, config.inpaint_radius, flag)
    # Inpainting fills only the hole; copy the rest back so that this holds by construction.
    forged[hole == 0] = photo[hole == 0]
    params.update(inpaint=method, inpaint_radius=config.inpaint_radius)
    return forged, hole.astype(np.float32), params


# --- datasets ------------------------------------------------------------------------------------


def list_source_images(source_dir: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``source_dir``, recursively, in a platform-independent order."""
    root = Path(os.fspath(source_dir))
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def generate_dataset(
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    count: int,
    config: SynthConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``count`` images (forgeries, and authentic ones by ``authentic_fraction``).

    Layout: ``tampered/``, ``masks/`` (PNG 0/255, same stem), ``authentic/`` when any, and
    ``synth.json`` with the config and every drawn parameter. ``out_dir`` must be new or empty
    and outside ``source_dir`` (sources are evidence and are never written to).
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
    sources = list_source_images(source)
    if not sources:
        raise SynthError(f"{source}: no image found (JPEG, PNG, TIFF, BMP, WebP, GIF).")

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
        # Authentic outputs spread evenly through the run; kinds take turns, so counts balance.
        authentic = math.floor((index + 1) * n_authentic / count) > math.floor(
            index * n_authentic / count
        )
        photo_path, photo = loader.draw(rng)
        photo, crop = prepare_photo(photo, config.size, rng)
        item: dict[str, Any] = {"source": photo_path.relative_to(source).as_posix(), **crop}
        if authentic:
            image, item["post"] = post_process(photo, rng, config)
            stem = f"{index:06d}_authentic"
            item.update(
                kind="authentic", image=_write_image(out / "authentic", stem, image, config)
            )
        else:
            kind = config.types[n_tampered % len(config.types)]
            n_tampered += 1
            donor = None
            if kind == "splice":
                donor_path, donor = loader.draw(rng, avoid=photo_path)
                donor, donor_crop = prepare_photo(donor, config.size, rng)
                item.update(
                    donor=donor_path.relative_to(source).as_posix(),
                    donor_crop_xywh=donor_crop["crop_xywh"],
                )
            image, mask, params = make_forgery(photo, donor, kind, rng, config)
            stem = f"{index:06d}_{kind}"
            item.update(params)
            item["image"] = _write_image(out / "tampered", stem, image, config)
            item["mask"] = _write_png(out / "masks" / f"{stem}.png", mask.astype(np.uint8) * 255)
            by_kind[kind] += 1
        items.append(item)
        if progress is not None:
            progress(index + 1, count)

    record = {
        "generator": "ncl_core.data.synth",
        "ncl_core_version": ncl_core.__version__,
        "source_dir": str(source),
        "n_sources": len(sources),
        "count": count,
        "config": config.to_dict(),
        "skipped_sources": loader.skipped,
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
        "skipped_sources": list(loader.skipped),
    }


class SynthDataset(Dataset):
    """Forgeries made on the fly from authentic photos, as SegmentationDataset-style items.

    Item ``index`` uses photo ``index % len(photos)``; everything else is drawn from an RNG
    seeded by (config.seed, epoch, index), so runs are reproducible; call ``set_epoch``.
    """

    def __init__(
        self,
        photos: Sequence[str | os.PathLike[str]],
        config: SynthConfig | None = None,
        length: int | None = None,
        augment: AugmentConfig | None = None,
    ) -> None:
        if not photos:
            raise SynthError("SynthDataset needs at least one photo")
        self.photos = [Path(os.fspath(p)) for p in photos]
        self.config = config if config is not None else SynthConfig()
        self.length = int(length) if length is not None else len(self.photos)
        self.augment = augment  # extra training augmentation on top of the post-processing
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        path = self.photos[index % len(self.photos)]
        photo, _ = prepare_photo(read_image(path)[0], cfg.size, rng)
        if rng.random() < cfg.authentic_fraction:
            image, _ = post_process(photo, rng, cfg)
            mask = np.zeros(image.shape[:2], bool)
        else:
            kind = str(rng.choice(cfg.types))
            donor = None
            if kind == "splice" and len(self.photos) > 1:
                other = (index % len(self.photos) + int(rng.integers(1, len(self.photos)))) % len(
                    self.photos
                )
                donor, _ = prepare_photo(read_image(self.photos[other])[0], cfg.size, rng)
            image, mask, _ = make_forgery(photo, donor, kind, rng, cfg)
        if self.augment is not None:
            image, mask = train_transform(image, mask, cfg.size, self.augment, rng)
        return {"image": to_tensor(image), "mask": mask_to_tensor(mask), "path": str(path)}


class _SourceLoader:
    """Draws source photos with the item's RNG; unreadable ones are skipped and recorded."""

    def __init__(self, sources: list[Path]) -> None:
        self.sources = sources
        self.bad: set[Path] = set()
        self.skipped: list[dict[str, str]] = []

    def draw(self, rng: np.random.Generator, avoid: Path | None = None) -> tuple[Path, np.ndarray]:
        while True:
            good = [p for p in self.sources if p not in self.bad]
            if avoid is not None and len(good) > 1:
                good = [p for p in good if p != avoid]
            if not good:
                raise SynthError("no source photo could be read; see the skipped list for reasons")
            path = good[int(rng.integers(len(good)))]
            try:
                return path, read_image(path)[0]
            except ImageReadError as exc:
                self.bad.add(path)
                self.skipped.append({"source": str(path), "error": str(exc)})


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
