"""The threshold-dependent overlay layers, computed off the GUI thread.

``render_layers`` is a pure function of a ``LayerRequest``: it returns QImages (safe to build
in any thread) that the GUI thread only turns into pixmaps. A 12-megapixel map takes a few
hundred milliseconds here, which would otherwise freeze the window while the threshold
slider is dragged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor, QImage

from app.qtimage import qimage_rgb
from app.widgets import MASK_COLOR, PATCH_COLORS
from ncl_core.patches import AUTHENTIC, CONTOUR, TAMPERED, label_counts, patch_labels_np
from ncl_core.render import auto_thickness, heatmap_rgb, mask_outline

_TRANSPARENT = QColor(0, 0, 0, 0)


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


@dataclass
class RenderedLayers:
    request: LayerRequest
    heatmap: QImage | None = None
    mask: np.ndarray | None = None
    mask_image: QImage | None = None
    outline_image: QImage | None = None
    patch_grid: np.ndarray | None = None
    patch_image: QImage | None = None
    patch_counts: dict[str, int] | None = None
    area_fraction: float | None = None
    side_heatmap: QImage | None = None


def indexed_image(labels: np.ndarray, colors: list[QColor]) -> QImage:
    """Small integers H x W -> a premultiplied ARGB QImage, one colour (with alpha) per value."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    h, w = labels.shape
    image = QImage(labels.data, w, h, w, QImage.Format.Format_Indexed8)
    image.setColorTable([c.rgba() for c in colors])
    # The conversion copies, so the result does not borrow ``labels``.
    return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def patch_colors() -> list[QColor]:
    colors = [_TRANSPARENT] * 3
    colors[AUTHENTIC] = PATCH_COLORS["authentic"]
    colors[TAMPERED] = PATCH_COLORS["tampered"]
    colors[CONTOUR] = PATCH_COLORS["contour"]
    return colors


def render_layers(req: LayerRequest) -> RenderedLayers:
    """Heatmap (when asked), binary mask + outline (mask / outline modes), patch grid."""
    out = RenderedLayers(req)
    if req.side_probability is not None:
        out.side_heatmap = qimage_rgb(heatmap_rgb(req.side_probability, req.cmap))
    prob = req.probability
    if prob is not None:
        if req.want_heatmap:
            out.heatmap = qimage_rgb(heatmap_rgb(prob, req.cmap))
        mask = prob >= req.threshold
        out.area_fraction = float(mask.mean()) if mask.size else 0.0
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
        source = prob >= req.threshold
    if source is not None:
        grid = patch_labels_np(source, req.patch_px, req.patch_eps)
        out.patch_grid = grid
        out.patch_counts = label_counts(grid)
        out.patch_image = indexed_image(grid, patch_colors())
    return out
