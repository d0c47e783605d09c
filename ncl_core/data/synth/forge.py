"""The manipulations (splice, copy-move, removal), the global post-processing, and one item
made from decoded photos."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ncl_core.data.perturb import gaussian_blur, gaussian_noise, jpeg_compress
from ncl_core.data.synth.photos import donor_canvas, host_crop
from ncl_core.data.synth.regions import (
    _bbox,
    _off_grid,
    blend,
    draw_region,
    feather,
    membrane_blend,
    placement_range,
)
from ncl_core.data.synth.synth_config import KINDS, SynthConfig
from ncl_core.data.transforms import resize_image, resize_mask
from ncl_core.errors import SynthError

_MAX_TRIES = 50


def _splice(
    host: np.ndarray, donor: np.ndarray, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A donor region pasted at an offset off the 8x8 grid, feathered, colour-matched or not."""
    h, w = host.shape[:2]
    region, params = draw_region(donor, cfg.area_range, rng, cfg)
    x, y, bw, bh = _bbox(region)
    # Where the region lands is drawn like where a region lies (``placement_range``).
    inside = params["inside"]
    dx = _off_grid(*_range_of(placement_range(bw, w, inside), x), rng)
    dy = _off_grid(*_range_of(placement_range(bh, h, inside), y), rng)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(donor, shift, (w, h), flags=cv2.INTER_NEAREST)
    alpha = cv2.warpAffine(region.astype(np.float32), shift, (w, h), flags=cv2.INTER_NEAREST)
    params["offset_xy"] = [dx, dy]
    params["color_match"] = bool(rng.random() < cfg.color_match_p)
    if params["color_match"]:
        moved = _match_colour(moved, host, alpha > 0)
    return _paste(host, moved, alpha, rng, cfg, params)


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
    if params["inside"]:  # the whole copy inside the frame
        lo = -reach.min(axis=0)
        hi = np.array([w, h], float) - reach.max(axis=0)
    else:  # its centre anywhere in the frame; the edge cuts the rest
        lo, hi = np.zeros(2), np.array([w - 1, h - 1], float)
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
    return _paste(host, moved, alpha, rng, cfg, params)


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
        params.update(method="patch", patch_offset_xy=[dx, dy])
        return _paste(host, moved, region.astype(np.float32), rng, cfg, params)
    hole = region.astype(np.uint8)
    method = "telea" if rng.random() < 0.5 else "ns"
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    forged = cv2.inpaint(host, hole, cfg.inpaint_radius, flag)
    # Inpainting fills only the hole; copy the rest back so that this holds by construction.
    forged[hole == 0] = host[hole == 0]
    params.update(method=method, inpaint_radius=cfg.inpaint_radius, feather_px=0.0)
    return forged, hole.astype(np.float32), params


def _paste(
    host: np.ndarray,
    moved: np.ndarray,
    alpha: np.ndarray,
    rng: np.random.Generator,
    cfg: SynthConfig,
    params: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``moved`` over ``host`` where the 0/1 ``alpha`` is set: blended into its surroundings
    (on ``membrane_blend_p`` of the pastes; the edge is then a hard cut that shows no step), else
    with a feathered edge. Records how in ``params``."""
    # Drawn only when asked, so that items made without blending keep their random stream.
    if cfg.membrane_blend_p > 0 and rng.random() < cfg.membrane_blend_p:
        params.update(blend="membrane", feather_px=0.0)
        return membrane_blend(host, moved, alpha > 0), alpha, params
    alpha, params["feather_px"] = feather(alpha, rng, cfg)
    return blend(host, moved, alpha), alpha, params


def _range_of(start_range: tuple[int, int], start: int) -> tuple[int, int]:
    """The inclusive range of shifts that move ``start`` into ``[low, high)``."""
    low, high = start_range
    return low - start, high - 1 - start


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
        chroma = "444" if rng.random() < config.jpeg_444_p else "420"
        qualities = [int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))]
        if rng.random() < config.jpeg_twice_p:
            qualities.append(int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
        for quality in qualities:
            image = jpeg_compress(image, quality, chroma)
        params["jpeg_quality"] = qualities[0] if len(qualities) == 1 else qualities
        params["jpeg_chroma"] = chroma
    return image, params


def publication_size(rng: np.random.Generator, config: SynthConfig) -> tuple[int, int] | None:
    """The (height, width) of the crop an item is edited on before it is downscaled to
    ``config.size`` (each axis by its own factor), or None to edit it at ``config.size``."""
    if rng.random() >= config.publish_scale_p:
        return None
    scale = float(rng.uniform(*config.publish_scale_range))
    aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(config.publish_aspect)))
    sy = min(1.0, scale * math.sqrt(aspect))
    sx = min(1.0, scale / math.sqrt(aspect))
    return math.ceil(config.size / sy), math.ceil(config.size / sx)


def publish(
    image: np.ndarray, mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Downscale an item edited at a larger size to at most ``size`` px a side (area
    averaging; the mask keeps pixels at least half manipulated)."""
    h, w = image.shape[:2]
    out_h, out_w = min(h, size), min(w, size)
    record = {"publish_scale_xy": [round(out_w / w, 4), round(out_h / h, 4)]}
    return resize_image(image, out_w, out_h), resize_mask(mask, out_w, out_h), record


def make_item(
    host_photo: np.ndarray,
    donor_photo: np.ndarray | None,
    kind: str,
    rng: np.random.Generator,
    config: SynthConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One item from decoded photos: host crop, forgery (``kind`` or "authentic"), the
    publication downscale (on ``publish_scale_p`` of the items), then the global
    post-processing. ``donor_photo`` None makes a splice a self-splice."""
    work_hw = publication_size(rng, config)
    host, host_record = host_crop(host_photo, rng, config, work_hw)
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
    if work_hw is not None:
        image, mask, recipe["publish"] = publish(image, mask, config.size)
        if kind != "authentic":  # the share of the published image, as its mask file has it
            recipe["area_fraction"] = round(float(mask.mean()), 6)
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
