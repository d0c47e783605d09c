"""Synthetic forgeries that teach forensic traces: splicing, copy-move and removal, with masks.

A forensic network learns from traces that live at the pixel scale: sensor noise, demosaicing,
the JPEG 8x8 grid, resampling. The generator keeps them:

- **host**: a random crop of a photo at its native scale. The only scaling is an optional mild
  rescale (x0.5-1.5) of the whole host, before anything is manipulated.
- **donor** (splice): another photo, or the same photo reprocessed (a self-splice). Its history
  always differs from the host's: each item draws donor-only processing (resampling, JPEG at its
  own quality and grid, noise, blur, gamma, colour shift), at least one step of it.
- **regions**: polygons, ellipses, smooth blobs, or segments that follow image content (a
  flood fill from a random seed), 1-50 % of the image.
- **splice** pastes with a feathered edge of 0-3 px, colour matching on about half of the items
  and an offset that is not a multiple of 8; **copy-move** rotates, scales and flips a region of
  the host, sometimes after a JPEG round trip; **removal** inpaints (Telea, Navier-Stokes) or
  covers the region with a patch from elsewhere in the host.
- **last**, on the whole image, authentic items included: a JPEG on most items (quality 60-100,
  so JPEG hosts carry misaligned double compression), and rarely a resize, blur or noise.

Pixels change only where the blend alpha is positive, and the mask is alpha >= 0.5, so the
mask covers every changed pixel up to the feather band. Every item records its full recipe;
everything is drawn from a seeded RNG: same seed, same bytes.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from torch.utils.data import Dataset

import ncl_core
from ncl_core.config import JsonConfig
from ncl_core.data.io import ImageReadError, is_image_file, read_image
from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress
from ncl_core.data.transforms import _PAD_RGB, mask_to_tensor, resize_image, to_tensor
from ncl_core.errors import SynthError

KINDS = ("splice", "copy_move", "removal")
SHAPES = ("polygon", "ellipse", "blob", "segment")
DONOR_STEPS = ("resample", "jpeg", "noise", "blur", "gamma", "colour")
_MAX_TRIES = 50
MIN_PHOTO_SIDE = 64  # smaller photos are listed as skipped


@dataclass
class SynthConfig(JsonConfig):
    """What to generate and how; every value drawn per image is recorded in its recipe."""

    size: int = 512  # output side: a crop of the host at native scale (smaller photos: smaller)
    types: tuple[str, ...] = KINDS
    authentic_fraction: float = 0.25  # share of untouched (but post-processed) crops
    seed: int = 0
    # Host
    host_rescale_p: float = 0.3  # rescale the whole host before any manipulation
    host_rescale_range: tuple[float, float] = (0.5, 1.5)
    # Region
    area_range: tuple[float, float] = (0.01, 0.5)  # manipulated fraction of the image
    removal_area_range: tuple[float, float] = (0.01, 0.15)  # inpainting large areas only smears
    shape_weights: tuple[float, ...] = (0.25, 0.15, 0.25, 0.35)  # SHAPES, in order
    feather_px: tuple[float, float] = (0.0, 3.0)  # width of the soft edge; below 0.5: a hard cut
    # Splice
    self_splice_p: float = 0.3  # donor = the same photo, reprocessed, from elsewhere
    donor_resample_range: tuple[float, float] = (0.6, 1.6)
    donor_jpeg_quality: tuple[int, int] = (50, 100)  # inclusive
    donor_noise_sigma: tuple[float, float] = (1.0, 6.0)
    donor_blur_sigma: tuple[float, float] = (0.4, 1.5)
    donor_gamma_range: tuple[float, float] = (0.7, 1.4)
    donor_colour_shift: float = 18.0  # max per-channel offset, grey levels
    donor_step_p: tuple[float, ...] = (0.5, 0.5, 0.3, 0.2, 0.3, 0.3)  # DONOR_STEPS, in order
    color_match_p: float = 0.5  # match the pasted colours to the target area
    # Copy-move
    transform_p: float = 0.7  # rotate and scale (else only shift)
    scale_range: tuple[float, float] = (0.75, 1.33)
    rotation_range: tuple[float, float] = (-45.0, 45.0)  # degrees
    flip_p: float = 0.25
    copy_jpeg_p: float = 0.3  # JPEG round trip of the copied content
    min_shift: float = 0.5  # source-target distance, in region diameters
    # Removal
    removal_patch_p: float = 0.3  # cover with a patch from elsewhere; else inpaint
    inpaint_radius: int = 5
    # Global post-processing, in this order; JPEG last
    resize_p: float = 0.05  # down-scale then back up (resampling traces)
    resize_range: tuple[float, float] = (0.5, 0.9)
    blur_p: float = 0.05
    blur_kernels: tuple[int, ...] = (3, 5)
    noise_p: float = 0.05
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    jpeg_p: float = 0.8
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
        for name in ("area_range", "removal_area_range"):
            a, b = getattr(self, name)
            if not 0.0 < a <= b < 1.0:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high < 1")
        if len(self.shape_weights) != len(SHAPES) or sum(self.shape_weights) <= 0:
            raise ValueError(f"shape_weights needs one weight per shape {SHAPES}")
        if len(self.donor_step_p) != len(DONOR_STEPS):
            raise ValueError(f"donor_step_p needs one probability per step {DONOR_STEPS}")
        if self.image_format not in ("png", "jpg"):
            raise ValueError("image_format must be 'png' or 'jpg'")

    @classmethod
    def plain(cls, **overrides: Any) -> SynthConfig:
        """No host rescale and no global post-processing: outside its region an item is the
        native crop of its photo, bit for bit (what the invariant tests pin)."""
        base = {
            "host_rescale_p": 0.0,
            "resize_p": 0.0,
            "blur_p": 0.0,
            "noise_p": 0.0,
            "jpeg_p": 0.0,
        }
        return cls(**{**base, **overrides})


# --- regions -------------------------------------------------------------------------------------


def random_shape(area_px: float, rng: np.random.Generator, shape: str = "blob") -> np.ndarray:
    """A filled random ``polygon``, ``ellipse`` or ``blob`` of about ``area_px`` pixels on its
    tight bool canvas."""
    if shape == "polygon":
        n = int(rng.integers(3, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.45, 1.0, n)
    else:
        n = 72
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radii = np.ones(n)
        if shape == "blob":  # a few low harmonics give a smooth, object-like outline
            for k in range(2, 6):
                radii += rng.uniform(0, 0.45 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
            radii = np.clip(radii, 0.25, None)
    stretch = rng.uniform(0.6, 1.6)
    turn = rng.uniform(0, np.pi)
    x, y = radii * np.cos(angles) * stretch, radii * np.sin(angles) / stretch
    x, y = x * math.cos(turn) - y * math.sin(turn), x * math.sin(turn) + y * math.cos(turn)
    points = np.stack([x, y], 1)
    unit_area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace
    points *= math.sqrt(area_px / max(unit_area, 1e-6))
    points -= points.min(axis=0)
    width, height = (np.ceil(points.max(axis=0)).astype(int) + 1).tolist()
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def content_segment(
    image: np.ndarray, area_px: float, rng: np.random.Generator, tries: int = 12
) -> np.ndarray | None:
    """A region that follows image content (a flood fill of similar colours from a random
    seed, smoothed), of 0.5-2x ``area_px`` pixels, as an image-sized bool map; None if none
    was found."""
    h, w = image.shape[:2]
    smooth = cv2.GaussianBlur(image, (5, 5), 0)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    tolerance = float(rng.uniform(6, 20))
    for _ in range(tries):
        seed = (int(rng.integers(w)), int(rng.integers(h)))
        fill = np.zeros((h + 2, w + 2), np.uint8)
        cv2.floodFill(smooth, fill, seed, (0, 0, 0), (tolerance,) * 3, (tolerance,) * 3, flags)
        region = cv2.morphologyEx(fill[1:-1, 1:-1], cv2.MORPH_CLOSE, kernel)
        region = cv2.morphologyEx(region, cv2.MORPH_OPEN, kernel)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
        if n < 2:
            tolerance *= 1.5
            continue
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[biggest, cv2.CC_STAT_AREA])
        if 0.5 * area_px <= area <= 2.0 * area_px:
            return labels == biggest
        tolerance *= 1.5 if area < 0.5 * area_px else 0.6
    return None


def draw_region(
    image: np.ndarray, area_range: tuple[float, float], rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """An image-sized bool region of ``image``: a geometric shape or a content segment."""
    h, w = image.shape[:2]
    weights = np.asarray(cfg.shape_weights, float)
    shape = str(rng.choice(SHAPES, p=weights / weights.sum()))
    area = float(rng.uniform(*area_range)) * h * w
    if shape == "segment":
        region = content_segment(image, area, rng)
        if region is not None:
            return region, {"shape": "segment"}
        shape = "blob"  # flat or busy content: fall back to a smooth blob
    canvas = random_shape(area, rng, shape)
    while canvas.shape[0] > h or canvas.shape[1] > w:  # too elongated: shrink it
        area *= 0.8
        canvas = random_shape(area, rng, shape)
    y = int(rng.integers(0, h - canvas.shape[0] + 1))
    x = int(rng.integers(0, w - canvas.shape[1] + 1))
    region = np.zeros((h, w), bool)
    region[y : y + canvas.shape[0], x : x + canvas.shape[1]] = canvas
    return region, {"shape": shape}


def _bbox(region: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(region)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _off_grid(low: int, high: int, rng: np.random.Generator) -> int:
    """An integer in [low, high] that is not a multiple of 8, when the range holds one."""
    values = [v for v in range(low, high + 1) if v % 8]
    if not values:
        return int(rng.integers(low, high + 1))
    return int(values[int(rng.integers(len(values)))])


def feather(
    alpha: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, float]:
    """Soften a 0/1 alpha over a drawn width of 0-3 px; returns (alpha, width in px)."""
    width = float(rng.uniform(*cfg.feather_px))
    if width < 0.5:
        return alpha, 0.0
    sigma = width / 2
    # Open away parts thinner than the feather first: blurred, they would blend in below
    # alpha 0.5 and so change pixels that the mask (alpha >= 0.5) does not cover.
    side = 2 * int(math.ceil(1.5 * sigma)) + 1
    alpha = cv2.morphologyEx(
        alpha, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    )
    radius = int(math.ceil(3 * sigma))  # alpha is exactly 0 beyond the kernel
    return cv2.GaussianBlur(alpha, (2 * radius + 1, 2 * radius + 1), sigma), round(width, 3)


def blend(host: np.ndarray, moved: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``moved`` over ``host`` by ``alpha``; where alpha is 0 the host stays bit for bit."""
    a = alpha[:, :, None]
    out = host.astype(np.float32) * (1.0 - a) + moved.astype(np.float32) * a
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    outside = alpha <= 0
    out[outside] = host[outside]
    return out


# --- host and donor ------------------------------------------------------------------------------


def native_crop(
    photo: np.ndarray, size: int, rng: np.random.Generator, rescale: float = 1.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """A random crop of at most ``size`` x ``size`` px at native scale, or of the photo
    rescaled by ``rescale`` (only the crop's footprint is resampled, which is the same)."""
    height, width = photo.shape[:2]
    src_h = min(height, math.ceil(size / rescale))
    src_w = min(width, math.ceil(size / rescale))
    y = int(rng.integers(0, height - src_h + 1))
    x = int(rng.integers(0, width - src_w + 1))
    crop = photo[y : y + src_h, x : x + src_w]
    record: dict[str, Any] = {"crop_xywh": [x, y, src_w, src_h]}
    if rescale != 1.0:
        out_w = min(size, max(8, round(src_w * rescale)))
        out_h = min(size, max(8, round(src_h * rescale)))
        crop = resize_image(crop, round(src_w * rescale), round(src_h * rescale))[:out_h, :out_w]
        record["rescale"] = round(rescale, 4)
    return np.ascontiguousarray(crop), record


def host_crop(
    photo: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    rescale = 1.0
    if rng.random() < cfg.host_rescale_p:
        rescale = float(rng.uniform(*cfg.host_rescale_range))
    return native_crop(photo, cfg.size, rng, rescale)


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


# --- manipulations -------------------------------------------------------------------------------


def _splice(
    host: np.ndarray, donor: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A donor region pasted at an offset off the 8x8 grid, feathered, colour-matched or not."""
    h, w = host.shape[:2]
    region, params = draw_region(donor, cfg.area_range, rng, cfg)
    x, y, bw, bh = _bbox(region)
    dx = _off_grid(-x, w - (x + bw), rng)
    dy = _off_grid(-y, h - (y + bh), rng)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(donor, shift, (w, h), flags=cv2.INTER_NEAREST)
    alpha = cv2.warpAffine(region.astype(np.float32), shift, (w, h), flags=cv2.INTER_NEAREST)
    params["offset_xy"] = [dx, dy]
    params["color_match"] = bool(rng.random() < cfg.color_match_p)
    if params["color_match"]:
        moved = _match_colour(moved, host, alpha > 0)
    alpha, params["feather_px"] = feather(alpha, rng, cfg)
    return blend(host, moved, alpha), alpha, params


def _copy_move(
    host: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A region of the host, rotated, scaled and flipped, pasted elsewhere in it."""
    h, w = host.shape[:2]
    region, params = draw_region(host, cfg.area_range, rng, cfg)
    x, y, bw, bh = _bbox(region)
    source = host
    if rng.random() < cfg.copy_jpeg_p:
        params["copy_jpeg_quality"] = int(
            rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)
        )
        source = jpeg_compress(host, params["copy_jpeg_quality"])
    scale, angle, flip = 1.0, 0.0, False
    if rng.random() < cfg.transform_p:
        scale = float(rng.uniform(*cfg.scale_range))
        angle = float(rng.uniform(*cfg.rotation_range))
        flip = bool(rng.random() < cfg.flip_p)
    rad = math.radians(angle)
    linear = scale * np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    if flip:
        linear = linear @ np.diag([-1.0, 1.0])
    centre = np.array([x + bw / 2, y + bh / 2])
    corners = np.array([[x, y], [x + bw, y], [x, y + bh], [x + bw, y + bh]], float) - centre
    reach = corners @ linear.T
    lo = -reach.min(axis=0)
    hi = np.array([w, h], float) - reach.max(axis=0)
    if np.any(hi < lo):
        raise _Redraw()
    plain = not (scale != 1.0 or angle or flip)
    min_shift = cfg.min_shift * 2 * math.sqrt(region.sum() / math.pi)
    for _ in range(_MAX_TRIES):
        if plain:  # a plain shift: whole pixels, off the 8x8 grid
            dx = _off_grid(int(math.ceil(lo[0] - centre[0])), int(hi[0] - centre[0]), rng)
            dy = _off_grid(int(math.ceil(lo[1] - centre[1])), int(hi[1] - centre[1]), rng)
            target = centre + [dx, dy]
        else:
            target = rng.uniform(lo, hi)
        if np.linalg.norm(target - centre) >= min_shift:
            break
    else:
        raise _Redraw()
    forward = np.hstack([linear, (target - linear @ centre)[:, None]]).astype(np.float32)
    interp = cv2.INTER_NEAREST if plain else cv2.INTER_LINEAR
    moved = cv2.warpAffine(source, forward, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT_101)
    alpha = cv2.warpAffine(region.astype(np.float32), forward, (w, h), flags=interp)
    alpha = (alpha >= 0.5).astype(np.float32)
    params.update(
        source_bbox_xywh=[x, y, bw, bh],
        target_centre_xy=[round(float(v), 2) for v in target],
        scale=round(scale, 4),
        rotation_deg=round(angle, 3),
        flip=flip,
    )
    alpha, params["feather_px"] = feather(alpha, rng, cfg)
    return blend(host, moved, alpha), alpha, params


def _removal(
    host: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Remove a region: inpaint it from its surroundings, or cover it with a patch."""
    h, w = host.shape[:2]
    region, params = draw_region(host, cfg.removal_area_range, rng, cfg)
    if rng.random() < cfg.removal_patch_p:
        x, y, bw, bh = _bbox(region)
        dx = _off_grid(-x, w - (x + bw), rng)
        dy = _off_grid(-y, h - (y + bh), rng)
        if abs(dx) < bw / 2 and abs(dy) < bh / 2:
            raise _Redraw()  # the patch would overlap what it hides
        # The patch comes from (x + dx, y + dy) and covers the region: shift by (-dx, -dy).
        shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
        moved = cv2.warpAffine(host, shift, (w, h), flags=cv2.INTER_NEAREST)
        alpha, feather_px = feather(region.astype(np.float32), rng, cfg)
        params.update(method="patch", patch_offset_xy=[dx, dy], feather_px=feather_px)
        return blend(host, moved, alpha), alpha, params
    hole = region.astype(np.uint8)
    method = "telea" if rng.random() < 0.5 else "ns"
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    forged = cv2.inpaint(host, hole, cfg.inpaint_radius, flag)
    # Inpainting fills only the hole; copy the rest back so that this holds by construction.
    forged[hole == 0] = host[hole == 0]
    params.update(method=method, inpaint_radius=cfg.inpaint_radius, feather_px=0.0)
    return forged, hole.astype(np.float32), params


class _Redraw(Exception):
    """The drawn region cannot be used (it does not fit); draw another."""


def make_forgery(
    host: np.ndarray,
    donor: np.ndarray | None,
    kind: str,
    rng: np.random.Generator,
    config: SynthConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Forge ``host`` (RGB uint8) without post-processing; returns (image, bool mask, recipe).

    ``donor`` is the host-sized, already processed canvas a splice takes its region from
    (``donor_canvas``); copy-move and removal ignore it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "splice" and (donor is None or donor.shape != host.shape):
        raise ValueError("a splice needs a donor canvas of the host's shape")
    low, high = config.removal_area_range if kind == "removal" else config.area_range
    for _ in range(_MAX_TRIES):
        try:
            if kind == "splice":
                forged, alpha, params = _splice(host, donor, rng, config)
            elif kind == "copy_move":
                forged, alpha, params = _copy_move(host, rng, config)
            else:
                forged, alpha, params = _removal(host, rng, config)
        except _Redraw:
            continue
        mask = alpha >= 0.5
        fraction = float(mask.mean())
        if 0.5 * low <= fraction <= high:
            break
    else:
        raise SynthError(f"could not draw a {kind} region of {low:.0%}-{high:.0%} of the image")
    return forged, mask, {"kind": kind, "area_fraction": round(fraction, 6), **params}


def post_process(
    image: np.ndarray, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Global post-processing (resize, blur, noise, then JPEG) with the parameters it drew."""
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


def make_item(
    host_photo: np.ndarray,
    donor_photo: np.ndarray | None,
    kind: str,
    rng: np.random.Generator,
    config: SynthConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One item from decoded photos: host crop, forgery (``kind`` or "authentic"), then the
    global post-processing. ``donor_photo`` None makes a splice a self-splice."""
    host, host_record = host_crop(host_photo, rng, config)
    recipe: dict[str, Any] = {"host": host_record}
    if kind == "authentic":
        image, mask = host, np.zeros(host.shape[:2], bool)
        recipe["kind"] = "authentic"
    else:
        donor = None
        if kind == "splice":
            self_splice = donor_photo is None
            donor, donor_record = donor_canvas(
                host_photo if self_splice else donor_photo, host.shape[:2], rng, config
            )
            recipe["donor"] = {"self_splice": self_splice, **donor_record}
        image, mask, params = make_forgery(host, donor, kind, rng, config)
        recipe.update(params)
    image, recipe["post"] = post_process(image, rng, config)
    return image, mask, recipe


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


# --- datasets ------------------------------------------------------------------------------------


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
        image = read_image(path)[0]
        self._items[path] = image
        self._bytes += image.nbytes
        while self._bytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return image


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
