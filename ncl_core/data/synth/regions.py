"""Regions to manipulate (random shapes and content segments), their feathered edge and the
blend that changes pixels only where the alpha is positive."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ncl_core.data.synth.synth_config import SHAPES, SynthConfig


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


def local_texture(image: np.ndarray, side: int = 9) -> np.ndarray:
    """Standard deviation of the grey levels in a ``side`` x ``side`` window, per pixel."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(grey, (side, side))
    return np.sqrt(np.maximum(cv2.blur(grey * grey, (side, side)) - mean * mean, 0.0))


def draw_region(
    image: np.ndarray, area_range: tuple[float, float], rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """An image-sized bool region of ``image``: a geometric shape or a content segment.

    A shape lies wholly inside on ``region_inside_p`` of the draws, else with its centre
    anywhere in the frame (``params["inside"]`` says which; it also tells a splice or a
    copy-move where the region may land). Regions smoother than the image on average are
    kept with probability (their texture / the image's) ** ``texture_power``, else drawn
    again: what people paste are objects, which are textured, and flat regions alone would
    teach a network that smooth means manipulated."""
    region, params = _draw_one(image, area_range, rng, cfg)
    if cfg.texture_power <= 0:
        return region, params
    texture = local_texture(image)
    overall = float(texture.mean()) + 1e-6
    for _ in range(_TEXTURE_TRIES):
        ratio = float(texture[region].mean()) / overall
        if rng.random() < min(1.0, ratio**cfg.texture_power):
            break
        region, params = _draw_one(image, area_range, rng, cfg)
    return region, params


_TEXTURE_TRIES = 8


def _draw_one(
    image: np.ndarray, area_range: tuple[float, float], rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    h, w = image.shape[:2]
    weights = np.asarray(cfg.shape_weights, float)
    shape = str(rng.choice(SHAPES, p=weights / weights.sum()))
    area = float(rng.uniform(*area_range)) * h * w
    # Also where a splice or copy-move puts it (a content segment lies where it was found).
    inside = bool(rng.random() < cfg.region_inside_p)
    if shape == "segment":
        region = content_segment(image, area, rng)
        if region is not None:
            return region, {"shape": "segment", "inside": inside}
        shape = "blob"  # flat or busy content: fall back to a smooth blob
    canvas = random_shape(area, rng, shape)
    while canvas.shape[0] > h or canvas.shape[1] > w:  # too elongated: shrink it
        area *= 0.8
        canvas = random_shape(area, rng, shape)
    ch, cw = canvas.shape
    region = np.zeros((h, w), bool)
    while not region.any():  # a concave shape cut by the edge can leave nothing in the frame
        y = int(rng.integers(*placement_range(ch, h, inside)))
        x = int(rng.integers(*placement_range(cw, w, inside)))
        y0, x0 = max(y, 0), max(x, 0)
        region[y0 : y + ch, x0 : x + cw] = canvas[y0 - y : h - y, x0 - x : w - x]
    return region, {"shape": shape, "inside": inside}


def placement_range(extent: int, length: int, inside: bool) -> tuple[int, int]:
    """[low, high) of the start of something ``extent`` long in a frame ``length`` long:
    wholly inside, or with its centre anywhere in the frame (then cut by the edge)."""
    if inside:
        return 0, max(1, length - extent + 1)
    return -(extent // 2), max(1 - extent // 2, length - extent // 2)


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


def membrane_blend(host: np.ndarray, moved: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``moved`` pasted into ``host`` over the bool ``region``, plus a smooth correction that
    meets the host along the region's edge: no step of colour or brightness at the edge, the
    pasted detail kept, as an editor's healing brush or gradient-domain paste leaves it.
    Outside ``region`` the host stays bit for bit."""
    grown = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ring = grown & ~region
    if not ring.any():  # nothing around the region to meet
        return blend(host, moved, region.astype(np.float32))
    x, y, w, h = _bbox(grown)
    box = (slice(y, y + h), slice(x, x + w))
    known = ring[box].astype(np.float32)
    pasted = moved[box].astype(np.float32)
    correction = _push_pull((host[box] - pasted) * known[:, :, None], known)
    out = host.copy()
    inside = region[box]
    out[box][inside] = np.clip(pasted[inside] + correction[inside] + 0.5, 0, 255).astype(np.uint8)
    return out


def _push_pull(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fill an ``H x W x C`` map known only where ``weights`` is positive (``values`` holds
    value x weight) smoothly, coarse to fine: each level takes its own normalised values where
    its weight is high enough and the coarser level's elsewhere. Known pixels (weight 1) keep
    their values exactly."""
    levels = [(values, weights)]
    while max(levels[-1][1].shape) > 2:
        v, wt = levels[-1]
        levels.append((cv2.pyrDown(v), cv2.pyrDown(wt)))
    v, wt = levels[-1]
    estimate = v / np.maximum(wt, 1e-12)[:, :, None]
    for v, wt in reversed(levels[:-1]):
        h, w = wt.shape
        up = cv2.pyrUp(estimate, dstsize=(w, h)).reshape(h, w, -1)
        own = v / np.maximum(wt, 1e-12)[:, :, None]
        trust = np.clip(4.0 * wt, 0.0, 1.0)[:, :, None]
        estimate = trust * own + (1.0 - trust) * up
    return estimate
