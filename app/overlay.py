"""The threshold-dependent overlay layers, computed off the GUI thread.

``render_layers`` is a pure function of a ``LayerRequest``: it returns QImages (safe to build
in any thread) that the GUI thread only turns into pixmaps. A 12-megapixel map takes a few
hundred milliseconds here, which would otherwise freeze the window while the threshold
slider is dragged.

Large maps are drawn at a display resolution: a map of more than ``DISPLAY_MAX_PIXELS`` is
reduced by a whole factor, each layer pixel showing the highest value of its block (a small
flagged region is never averaged away), and the layer is scaled back up in the viewer. A
screen shows far fewer pixels than that unless zoomed in, and several full-resolution RGBA
layers of a 48-megapixel photograph would hold gigabytes. The tampered area is still counted
on the full-resolution map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor, QImage

from app.qtimage import qimage_rgb
from app.widgets import MASK_COLOR, PATCH_COLORS
from ncl_core.inference.render import auto_thickness, heatmap_rgb, mask_outline
from ncl_core.network.patches import AUTHENTIC, CONTOUR, LABEL_NAMES, TAMPERED, patch_labels_np

_TRANSPARENT = QColor(0, 0, 0, 0)
DISPLAY_MAX_PIXELS = 16_000_000  # layers of larger maps are drawn from blocks of pixels


def display_factor(height: int, width: int, max_pixels: int | None = None) -> int:
    """The smallest whole factor that brings an ``height`` x ``width`` map to at most
    ``max_pixels`` (default ``DISPLAY_MAX_PIXELS``) layer pixels."""
    limit = max_pixels or DISPLAY_MAX_PIXELS
    factor = max(1, math.ceil(math.sqrt(height * width / limit)))
    while math.ceil(height / factor) * math.ceil(width / factor) > limit:
        factor += 1
    return factor


def block_max(values: np.ndarray, factor: int) -> np.ndarray:
    """The highest value of each ``factor`` x ``factor`` block (the last ones may be
    smaller); NaN only where a whole block is NaN. ``values`` itself when ``factor`` is 1."""
    if factor == 1:
        return values
    h, w = values.shape
    rows = np.fmax.reduceat(values, np.arange(0, h, factor), axis=0)
    return np.fmax.reduceat(rows, np.arange(0, w, factor), axis=1)


@dataclass
class LayerRequest:
    """Everything the layers depend on."""

    probability: np.ndarray | None
    threshold: float
    mode: str  # heatmap | mask | outline | off
    cmap: str
    want_heatmap: bool  # the heatmap picture is not cached for this (analysis, cmap)
    heat_key: tuple[int, str] | None  # what the heatmap is cached under by the caller
    patch_mask: str | None  # None (no patches), "prediction" or "ground_truth"
    ground_truth: np.ndarray | None
    patch_px: int
    patch_eps: float
    side_probability: np.ndarray | None = None  # a second map, drawn as a heatmap for its pane

    @property
    def scale(self) -> int:
        """Map pixels per layer pixel (1 up to ``DISPLAY_MAX_PIXELS``)."""
        return 1 if self.probability is None else display_factor(*self.probability.shape)

    @property
    def side_scale(self) -> int:
        p = self.side_probability
        return 1 if p is None else display_factor(*p.shape)


@dataclass
class RenderedLayers:
    request: LayerRequest
    heatmap: QImage | None = None
    mask: np.ndarray | None = None  # as drawn: at the layers' resolution
    mask_image: QImage | None = None
    outline_image: QImage | None = None
    patch_grid: np.ndarray | None = None
    patch_image: QImage | None = None
    patch_counts: dict[str, int] | None = None
    area_fraction: float | None = None
    side_heatmap: QImage | None = None


def premultiplied(colors: list[QColor]) -> np.ndarray:
    """The colours as premultiplied ARGB32 words (what Qt itself makes of them)."""
    table = QImage(len(colors), 1, QImage.Format.Format_Indexed8)
    table.setColorTable([c.rgba() for c in colors])
    table.fill(0)
    row = np.frombuffer(table.bits(), np.uint8, count=len(colors))
    row[:] = np.arange(len(colors), dtype=np.uint8)
    argb = table.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    return np.frombuffer(argb.constBits(), np.uint32, count=len(colors)).copy()


def indexed_image(labels: np.ndarray, colors: list[QColor]) -> QImage:
    """Small integers H x W -> a premultiplied ARGB QImage, one colour (with alpha) per value.

    The pixels are looked up by numpy straight into the image's own buffer, which lets other
    threads run meanwhile (a Qt conversion of a 12-megapixel layer would hold the GIL, and
    with it the GUI thread, for several milliseconds).
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    h, w = labels.shape
    image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    words = image.bytesPerLine() // 4
    pixels = np.frombuffer(image.bits(), np.uint32, count=h * words).reshape(h, words)
    np.take(premultiplied(colors), labels, out=pixels[:, :w])
    return image


def patch_colors() -> list[QColor]:
    colors = [_TRANSPARENT] * 3
    colors[AUTHENTIC] = PATCH_COLORS["authentic"]
    colors[TAMPERED] = PATCH_COLORS["tampered"]
    colors[CONTOUR] = PATCH_COLORS["contour"]
    return colors


def patch_counts(grid: np.ndarray) -> dict[str, int]:
    """``ncl_core.network.patches.label_counts`` of a numpy grid, in numpy (no torch, no GIL held)."""
    counts = np.bincount(grid.ravel(), minlength=3)
    return {name: int(counts[value]) for value, name in LABEL_NAMES.items()}


def render_layers(req: LayerRequest) -> RenderedLayers:
    """Heatmap (when asked), binary mask + outline (mask / outline modes), patch grid."""
    out = RenderedLayers(req)
    if req.side_probability is not None:
        side = block_max(req.side_probability, req.side_scale)
        out.side_heatmap = qimage_rgb(heatmap_rgb(side, req.cmap))
        del side
    prob = req.probability
    full = None  # the full-resolution mask, when the layers have it
    if prob is not None:
        shown = block_max(prob, req.scale)
        if req.want_heatmap:
            out.heatmap = qimage_rgb(heatmap_rgb(shown, req.cmap))
        mask = shown >= req.threshold
        # At full resolution the drawn mask is the flagged pixels: counted once, reused below.
        full = mask if shown is prob else None
        del shown
        flagged = np.count_nonzero(full if full is not None else prob >= req.threshold)
        out.area_fraction = flagged / prob.size if prob.size else 0.0
        if req.mode in ("mask", "outline"):
            out.mask = mask
            if req.mode == "mask":
                out.mask_image = indexed_image(mask, [_TRANSPARENT, MASK_COLOR])
            band = mask_outline(mask, auto_thickness(*mask.shape))
            out.outline_image = indexed_image(band, [_TRANSPARENT, MASK_COLOR])
    source = None
    if req.patch_mask == "ground_truth":
        source = req.ground_truth
    elif req.patch_mask == "prediction" and prob is not None:
        source = full if full is not None else prob >= req.threshold
    if source is not None:
        grid = patch_labels_np(source, req.patch_px, req.patch_eps)
        out.patch_grid = grid
        out.patch_counts = patch_counts(grid)
        out.patch_image = indexed_image(grid, patch_colors())
    return out
