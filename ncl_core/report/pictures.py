"""The report's pictures, drawn and encoded for speed: the pixels ``ncl_core.inference.render`` draws
(the scaled pictures within a few grey levels), in a fraction of its time.

A report draws six pictures per image while the model analyzes the next one, on the same
cores, so every millisecond here is one the model waits for on a small CPU. What makes them
faster:

- the colour of the mask overlay is laid down by copying one row (``mask_overlay``);
  broadcasting it over every pixel cost 5 ms per megapixel, more than the rest of the overlay;
  the tint and outline are drawn in the mask's bounding box only;
- a probability map becomes 8-bit levels in one OpenCV pass where it is finite and
  non-negative, as a model's map is (``levels``);
- every picture is scaled down by a whole factor first (OpenCV's fast box filter), then by
  the rest bilinearly, blurred a little first where the rest could alias (``preview_to``):
  area interpolation by a fraction costs about 6 ms per megapixel of the input, so the
  display copy of a 12 MP photo took 64 ms and now takes about 20;
- PNGs are written here (``grey_png``, ``palette_png``): the "up" filter and zlib's
  run-length strategy at level 1, smaller and faster than libpng's level 1 on smooth maps
  and masks; zlib releases the GIL while it compresses.
"""

from __future__ import annotations

import math
import struct
import zlib

import cv2
import numpy as np

from ncl_core.inference.render import DEFAULT_MASK_COLOR, auto_thickness, colormap_lut

__all__ = [
    "colour",
    "fitted_size",
    "grey_png",
    "levels",
    "mask_overlay",
    "palette_png",
    "preview_to",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_UP = 2  # the PNG row filter "up": each byte minus the one above it
_ANTIALIAS_FROM = 1.25  # below this scale factor bilinear alone skips too little to alias


def levels(prob: np.ndarray) -> np.ndarray:
    """A probability map as uint8 levels 0..255 (``round(255 * p)``), NaN as 0, values clipped
    to [0, 1]: ``render.heatmap_rgb``'s and ``render.encode_heatmap_png``'s levels."""
    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability map must be 2-D (H x W), got shape {prob.shape}")
    if prob.size == 0:
        return np.zeros(prob.shape, dtype=np.uint8)
    # checkRange is false for NaN, infinity and anything negative; above 1 saturates anyway.
    if not cv2.checkRange(prob, True, 0.0, 3.0e38)[0]:
        prob = np.nan_to_num(prob, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(prob, 0.0, 1.0, out=prob)
    return cv2.convertScaleAbs(prob, alpha=255.0)


def colour(level: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """uint8 levels coloured with ``cmap``: RGB H x W x 3 (``render.heatmap_rgb`` of the map)."""
    return cv2.applyColorMap(level, colormap_lut(cmap).reshape(256, 1, 3))


def fitted_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(width, height) of ``render.fit_within``'s result: scaled so the longer side is at most
    ``max_side``, never up."""
    if max(height, width) <= max_side:
        return width, height
    scale = max_side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview_to(image: np.ndarray, size: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """``image`` scaled down to ``size`` (width, height): averaged over whole blocks of pixels
    first (the largest factor that does not overshoot), then scaled by the rest, less than 2,
    bilinearly, after a small Gaussian blur where the rest is large enough to alias (a fine
    texture scaled by 1.5 without one turns into moiré; ``antialias`` False leaves it out, for
    a probability map, smooth enough not to need it). Within a few grey levels of area
    interpolation (``render.fit_within``) in a third to a fifth of its time: area
    interpolation by a fraction costs about 6 ms per megapixel of the input."""
    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        return image
    factor = min(width // size[0], height // size[1])
    if factor >= 2:
        image = cv2.resize(
            image, None, fx=1.0 / factor, fy=1.0 / factor, interpolation=cv2.INTER_AREA
        )
        if image.shape[1::-1] == tuple(size):
            return image
    rest = max(image.shape[1] / size[0], image.shape[0] / size[1])
    if antialias and rest >= _ANTIALIAS_FROM:
        # The blur a Gaussian resampler would add to the bilinear filter's own, on 3 x 3 taps.
        image = cv2.GaussianBlur(image, (3, 3), 0.5 * math.sqrt(rest * rest - 1.0))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def mask_overlay(
    image: np.ndarray,
    mask: np.ndarray,
    alpha: float,
    color: tuple[int, int, int] = DEFAULT_MASK_COLOR,
) -> np.ndarray:
    """``render.overlay_rgb(..., mode="mask")`` of a 0/255 uint8 ``mask``: flagged pixels tinted
    with ``color`` at ``alpha``, an opaque outline about 2 px per 1000 px inside the mask."""
    out = image.copy()
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return out
    # Everything outside the box is unflagged, as the constant border of the erosion assumes.
    box = (slice(y, y + h), slice(x, x + w))
    roi, flagged = out[box], np.ascontiguousarray(mask[box])
    solid = _filled(roi.shape, color)
    tinted = cv2.addWeighted(roi, 1.0 - alpha, solid, alpha, 0.0)
    cv2.copyTo(tinted, flagged, roi)
    eroded = cv2.erode(
        flagged,
        np.ones((3, 3), np.uint8),
        iterations=auto_thickness(*mask.shape[:2]),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    cv2.copyTo(solid, cv2.subtract(flagged, eroded), roi)
    return out


def _filled(shape: tuple[int, ...], color: tuple[int, int, int]) -> np.ndarray:
    """An H x W x 3 array of one colour. Broadcasting the colour over every pixel costs about
    5 ms per megapixel; copying one row into every row, a few hundredths of that."""
    row = np.tile(np.asarray(color, dtype=np.uint8), (shape[1], 1))
    return np.ascontiguousarray(np.broadcast_to(row, shape))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(pixels: np.ndarray, palette: bytes | None) -> bytes:
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError(f"expected uint8 H x W, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = _PNG_UP
    rows[:1, 1:] = pixels[:1]  # the first row's "row above" is zeros
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])  # modulo 256, as PNG wants
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if palette is None else 3, 0, 0, 0)
    chunks = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(_chunk(b"PLTE", palette))
    chunks += [_chunk(b"IDAT", data), _chunk(b"IEND", b"")]
    return b"".join(chunks)


def grey_png(pixels: np.ndarray) -> bytes:
    """An 8-bit grey PNG of uint8 H x W ``pixels`` (a mask: 0 and 255)."""
    return _png(pixels, None)


def palette_png(level: np.ndarray, cmap: str = "inferno") -> bytes:
    """uint8 levels as an 8-bit palette PNG coloured with ``cmap``: pixel value ``i`` is
    probability ``i / 255`` (``render.encode_heatmap_png``'s file)."""
    return _png(level, colormap_lut(cmap).tobytes())
