"""Pictures of an analysis: colour maps, heatmaps, overlays, legends and atomic image files.

Pure numpy + OpenCV (no Qt, no matplotlib, no Pillow), shared by the CLI, the batch report and the GUI.
Arrays are RGB ``uint8`` H x W x 3 unless said otherwise; probability maps are float H x W.
OpenCV calls are used for the per-pixel work because they release the GIL, so the batch
report can render in worker threads while the model runs.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ncl_core.fsutil import atomic_write_bytes
from ncl_core.settings import DEFAULT_THRESHOLD

# Perceptual maps first; the rest are there because analysts ask for them by name.
_CV_COLORMAPS = {
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "cividis": cv2.COLORMAP_CIVIDIS,
    "turbo": cv2.COLORMAP_TURBO,
}
COLORMAPS: tuple[str, ...] = (*_CV_COLORMAPS, "gray")
OVERLAY_MODES: tuple[str, ...] = ("heatmap", "mask", "outline")
DEFAULT_MASK_COLOR: tuple[int, int, int] = (255, 0, 0)


@cache
def _lut(name: str) -> np.ndarray:
    if name == "gray":
        ramp = np.arange(256, dtype=np.uint8)
        lut = np.stack([ramp, ramp, ramp], axis=1)
    elif name in _CV_COLORMAPS:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        bgr = cv2.applyColorMap(ramp, _CV_COLORMAPS[name]).reshape(256, 3)
        lut = np.ascontiguousarray(bgr[:, ::-1])
    else:
        raise ValueError(f"unknown colour map {name!r}; choose one of: {', '.join(COLORMAPS)}")
    lut.setflags(write=False)  # cached and shared: nobody may change it in place
    return lut


def colormap_lut(name: str = "inferno") -> np.ndarray:
    """The colour map ``name`` as a (256, 3) uint8 RGB table (index 0 = probability 0)."""
    return _lut(name).copy()


def _probability_u8(prob: np.ndarray) -> np.ndarray:
    """Probability map -> uint8 0..255, with NaN as 0 and values clipped to [0, 1]."""
    if prob.ndim != 2:
        raise ValueError(f"probability map must be 2-D (H x W), got shape {prob.shape}")
    p = np.nan_to_num(prob.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(p, 0.0, 1.0, out=p)
    return cv2.convertScaleAbs(p, alpha=255.0)


def heatmap_rgb(prob: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """Colour a probability map (float H x W in [0, 1]) -> uint8 H x W x 3 RGB."""
    idx = _probability_u8(prob)
    # applyColorMap with a user table maps channel by channel, so an RGB table gives RGB out.
    return cv2.applyColorMap(idx, _lut(cmap).reshape(256, 1, 3))


def mask_png(mask: np.ndarray) -> np.ndarray:
    """Boolean mask -> uint8 image with 0 (authentic) and 255 (flagged)."""
    return np.asarray(mask, dtype=bool).view(np.uint8) * np.uint8(255)


def mask_outline(mask: np.ndarray, thickness: int = 2) -> np.ndarray:
    """The inner boundary band (``thickness`` px) of a boolean mask, as a boolean array.

    The image edge counts as outside, so a region touching the border is outlined there too.
    """
    return _outline_u8(mask_png(mask), thickness) > 0


def _outline_u8(m: np.ndarray, thickness: int) -> np.ndarray:
    """``mask_outline`` of a 0/255 mask, as 0/255 (OpenCV throughout: no GIL held)."""
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    eroded = cv2.erode(
        m,
        np.ones((3, 3), np.uint8),
        iterations=int(thickness),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return cv2.subtract(m, eroded)  # the eroded mask lies inside the mask


def auto_thickness(height: int, width: int) -> int:
    # About 2 px on a 1000 px image, so outlines stay visible on large images shown scaled down.
    return max(1, round(max(height, width) / 500))


def overlay_rgb(
    image: np.ndarray,
    prob: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 0.5,
    cmap: str = "inferno",
    mode: str = "heatmap",
    color: tuple[int, int, int] = DEFAULT_MASK_COLOR,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw an analysis over its image.

    ``heatmap``: the coloured probability map blended over the whole image at ``alpha``
    (the threshold is not used). ``mask``: pixels with ``prob >= threshold`` tinted with
    ``color`` at ``alpha``, plus an opaque outline. ``outline``: only the opaque outline.
    ``thickness`` of the outline defaults to about 2 px per 1000 px of image.
    """
    _check_image(image, channels=(3,))
    if prob.shape != image.shape[:2]:
        raise ValueError(
            f"probability map {prob.shape} does not match image {image.shape[:2]} (H x W)"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if mode not in OVERLAY_MODES:
        raise ValueError(
            f"unknown overlay mode {mode!r}; choose one of: {', '.join(OVERLAY_MODES)}"
        )
    if mode == "heatmap":
        return cv2.addWeighted(image, 1.0 - alpha, heatmap_rgb(prob, cmap), alpha, 0.0)

    mask = mask_png(prob >= threshold)
    out = image.copy()
    solid = np.empty_like(image)
    solid[:] = np.asarray(color, dtype=np.uint8)
    if mode == "mask":
        tinted = cv2.addWeighted(image, 1.0 - alpha, solid, alpha, 0.0)
        cv2.copyTo(tinted, mask, out)
    band = _outline_u8(mask, thickness or auto_thickness(*mask.shape))
    cv2.copyTo(solid, band, out)
    return out


def colorbar_rgb(height: int, width: int, cmap: str = "inferno") -> np.ndarray:
    """Legend for a colour map as uint8 RGB.

    Vertical (probability 1 at the top) when ``height >= width``, else horizontal
    (probability 0 on the left).
    """
    if height < 1 or width < 1:
        raise ValueError(f"colour bar size must be positive, got {height} x {width}")
    lut = _lut(cmap)
    if height >= width:
        ramp = np.linspace(1.0, 0.0, height)
        column = lut[np.round(ramp * 255).astype(np.intp)]
        return np.ascontiguousarray(np.repeat(column[:, None, :], width, axis=1))
    ramp = np.linspace(0.0, 1.0, width)
    row = lut[np.round(ramp * 255).astype(np.intp)]
    return np.ascontiguousarray(np.repeat(row[None, :, :], height, axis=0))


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """Scale an image down (area interpolation) so its longer side is at most ``max_side``.

    Returns the input unchanged when it already fits; never scales up.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _check_image(array: np.ndarray, channels: tuple[int, ...]) -> None:
    if array.dtype != np.uint8:
        hint = " (use mask_png for boolean masks)" if array.dtype == bool else ""
        raise ValueError(f"image must be uint8, got {array.dtype}{hint}")
    if array.ndim == 2 and 1 in channels:
        return
    if array.ndim == 3 and array.shape[2] in channels:
        return
    raise ValueError(f"image must be H x W or H x W x {channels}, got shape {array.shape}")


def _to_bgr(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return array
    code = cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
    return cv2.cvtColor(array, code)


def encode_png(array: np.ndarray, compression: int = 3) -> bytes:
    """PNG bytes of a uint8 gray, RGB or RGBA image."""
    _check_image(array, channels=(1, 3, 4))
    ok, buf = cv2.imencode(".png", _to_bgr(array), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 gray or RGB image."""
    _check_image(array, channels=(1, 3))
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buf = cv2.imencode(".jpg", _to_bgr(array), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


# Single-channel maps and masks: zlib level 1 and the "up" filter alone (a row of a smooth map
# or of a mask differs little from the row above), run-length coding for masks. Several times
# faster than the default filter search, and smaller files.
_MAP_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
_MASK_PNG = [*_MAP_PNG, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A boolean mask as an 8-bit grey PNG: 255 flagged, 0 not (``mask_png``'s pixels)."""
    ok, buf = cv2.imencode(".png", mask_png(mask), _MASK_PNG)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def encode_heatmap_png(prob: np.ndarray, cmap: str = "inferno") -> bytes:
    """A heatmap as an 8-bit palette PNG: pixel value ``i`` is probability ``i / 255``.

    Viewers show the colour map; the probabilities stay readable from the pixel values, and
    the file is a third of an RGB PNG's size and encoding time.
    """
    ok, buf = cv2.imencode(".png", _probability_u8(prob), _MAP_PNG)
    if not ok:
        raise ValueError("PNG encoding failed")
    return _grey_png_as_palette(buf.tobytes(), _lut(cmap).tobytes())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _grey_png_as_palette(png: bytes, palette: bytes) -> bytes:
    """An 8-bit grey PNG as a palette PNG of the same pixel values.

    Both code one byte per pixel, so the image data stays as it is: the header's colour type
    becomes "palette" and the palette is added before the data (ancillary chunks are dropped).
    """
    out, pos = [png[:8]], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            if data[8:10] != b"\x08\x00":  # bit depth 8, colour type grey
                raise ValueError("not an 8-bit grey PNG")
            out += [
                _png_chunk(b"IHDR", data[:9] + b"\x03" + data[10:]),
                _png_chunk(b"PLTE", palette),
            ]
        elif kind in (b"IDAT", b"IEND"):
            out.append(png[pos : pos + 12 + length])
        pos += 12 + length
    return b"".join(out)


def save_heatmap_png(
    path: str | Path, prob: np.ndarray, cmap: str = "inferno", durable: bool = True
) -> None:
    """Write ``encode_heatmap_png(prob, cmap)`` atomically."""
    atomic_write_bytes(path, encode_heatmap_png(prob, cmap), durable)


def save_mask_png(path: str | Path, mask: np.ndarray, durable: bool = True) -> None:
    """Write ``encode_mask_png(mask)`` atomically."""
    atomic_write_bytes(path, encode_mask_png(mask), durable)


def save_png(path: str | Path, array: np.ndarray, durable: bool = True) -> None:
    """Write a uint8 gray / RGB / RGBA image as PNG, atomically (``fsutil.atomic_write_bytes``;
    ``durable=False``: no fsync, for a folder made durable later with ``fsutil.sync_folder``)."""
    atomic_write_bytes(path, encode_png(array), durable)


def save_jpeg(path: str | Path, array: np.ndarray, quality: int = 90, durable: bool = True) -> None:
    """Write a uint8 gray / RGB image as JPEG, atomically."""
    atomic_write_bytes(path, encode_jpeg(array, quality), durable)
