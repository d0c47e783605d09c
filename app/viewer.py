"""The image viewer: a QGraphicsView with zoom in log steps, drag to pan and stacked layers.

Layers (heatmap, mask, outline, patches) are pixmap items above the image, so opacity and
visibility changes cost nothing and a threshold change re-draws only the layer it affects.
The image itself is kept scaled to the screen (a device-coordinate cache): every re-draw of a
layer repaints the view, and smoothing a large photograph down each time would cost more
than the layers do.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QLineF, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QPixmapCache,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.qtimage import pixmap_rgb

PIXMAP_CACHE_KB = 96 * 1024
ZOOM_STEP = 2.0**0.25  # four wheel notches double the size
MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
# Drawing order, bottom to top.
LAYERS = ("image", "heatmap", "mask", "outline", "patches")


class GridItem(QGraphicsItem):
    """The patch grid's lines, drawn only where exposed (a path of them strokes slowly)."""

    def __init__(self) -> None:
        super().__init__()
        self._px, self._cols, self._rows = 0, 0, 0
        # Opaque: alpha-blended lines cost several times more to draw on every re-paint.
        self._pen = QPen(QColor(185, 185, 190), 1)
        self._pen.setCosmetic(True)

    def set_grid(self, patch_px: int, cols: int, rows: int) -> None:
        valid = patch_px > 0 and cols > 0 and rows > 0
        grid = (patch_px, cols, rows) if valid else (0, 0, 0)
        if grid == (self._px, self._cols, self._rows):
            return  # the same grid (a threshold change): nothing to repaint
        self.prepareGeometryChange()
        self._px, self._cols, self._rows = grid
        self.update()

    def has_grid(self) -> bool:
        return self._px > 0

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._cols * self._px, self._rows * self._px)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if not self._px:
            return
        p = self._px
        exposed = option.exposedRect.intersected(self.boundingRect())
        # Fewer than 3 screen px between lines would only grey the picture out.
        if p * painter.transform().m11() < 3:
            return
        c0, c1 = max(0, int(exposed.left() // p)), min(self._cols, int(exposed.right() // p) + 1)
        r0, r1 = max(0, int(exposed.top() // p)), min(self._rows, int(exposed.bottom() // p) + 1)
        top, bottom = r0 * p, r1 * p
        left, right = c0 * p, c1 * p
        lines = [QLineF(c * p, top, c * p, bottom) for c in range(c0, c1 + 1)]
        lines += [QLineF(left, r * p, right, r * p) for r in range(r0, r1 + 1)]
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(self._pen)
        painter.drawLines(lines)


class ImageViewer(QGraphicsView):
    """Shows one image plus overlay layers; emits the image pixel under the cursor."""

    hovered = Signal(int, int)  # image x, y; (-1, -1) when outside the image
    view_changed = Signal()  # zoom or scroll position changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        # A handful of items that change often: an index would only cost on every change.
        self.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.viewport().setMouseTracking(True)
        # Drops go to the window, which decides between analysis and batch.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setToolTip(
            "Wheel: zoom · drag: pan · double-click: fit / 100 % · keys + − 0 (fit) 1 (100 %)"
        )
        self._items: dict[str, QGraphicsPixmapItem] = {}
        for z, name in enumerate(LAYERS):
            item = QGraphicsPixmapItem()
            # Hit tests (tooltips) by the rectangle: the default traces the alpha channel.
            item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
            item.setZValue(z)
            item.setVisible(False)
            self.scene().addItem(item)
            self._items[name] = item
        self._items["image"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # Room for the cached image of a few views on a large screen (Qt's default is 10 MB).
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), PIXMAP_CACHE_KB))
        self._grid = GridItem()
        self._grid.setZValue(len(LAYERS))
        self._grid.setVisible(False)
        self.scene().addItem(self._grid)
        self._image_size: tuple[int, int] = (0, 0)  # width, height
        self._zoom = 1.0
        self._fit = True
        self._syncing = False
        self.horizontalScrollBar().valueChanged.connect(self._emit_view_changed)
        self.verticalScrollBar().valueChanged.connect(self._emit_view_changed)
        # What the pane shows, in its top left corner (side by side: which pane is which).
        # A child of the view, not of its viewport: ``rendered()`` stays the picture alone.
        self.caption = QLabel(self)
        self.caption.setStyleSheet(
            "background: rgba(20, 20, 24, 190); color: #f0f0f0; padding: 2px 6px;"
        )
        self.caption.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.caption.move(8, 8)
        self.caption.hide()

    # -- content ------------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show a new image (RGB uint8) and fit it; None clears the viewer and its layers."""
        for name in LAYERS:
            self.set_layer(name, None)
        self.set_grid(0, 0, 0)
        if rgb is None:
            self._image_size = (0, 0)
            self.scene().setSceneRect(QRectF())
            return
        self.set_image_pixmap(pixmap_rgb(rgb))

    def set_image_pixmap(
        self, pixmap: QPixmap, scale: float = 1.0, size: tuple[int, int] | None = None
    ) -> None:
        """Like ``set_image`` for a ready pixmap, drawn ``scale`` times larger (a reduced copy
        of an image of ``size`` (width, height) pixels; default: the pixmap's size)."""
        for name in LAYERS[1:]:
            self.set_layer(name, None)
        self.set_grid(0, 0, 0)
        w, h = size or (pixmap.width(), pixmap.height())
        self._image_size = (w, h)
        self.set_layer("image", pixmap, scale=scale)
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        self.fit()

    def set_caption(self, text: str) -> None:
        """Name what the pane shows in its corner; an empty text hides the name."""
        self.caption.setText(text)
        self.caption.adjustSize()
        self.caption.setVisible(bool(text))
        self.caption.raise_()

    def has_image(self) -> bool:
        return self._image_size != (0, 0)

    def image_size(self) -> tuple[int, int]:
        return self._image_size

    def set_layer(
        self, name: str, pixmap: QPixmap | None, opacity: float = 1.0, scale: float = 1.0
    ) -> None:
        """Put ``pixmap`` in layer ``name`` (scaled by ``scale`` image px per pixmap px)."""
        item = self._items[name]
        if pixmap is None:
            item.setPixmap(QPixmap())
            item.setVisible(False)
            return
        item.setPixmap(pixmap)
        item.setTransform(QTransform.fromScale(scale, scale))
        item.setOpacity(opacity)
        item.setVisible(True)
        self._update_smoothing(item, scale)

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        self._items[name].setOpacity(opacity)

    def set_layer_visible(self, name: str, visible: bool) -> None:
        item = self._items[name]
        item.setVisible(visible and not item.pixmap().isNull())

    def layer_visible(self, name: str) -> bool:
        return self._items[name].isVisible()

    def set_grid(self, patch_px: int, cols: int, rows: int) -> None:
        """Lines around ``cols`` x ``rows`` patches of ``patch_px``; 0 hides the grid."""
        self._grid.set_grid(patch_px, cols, rows)
        self._grid.setVisible(self._grid.has_grid())

    def set_grid_visible(self, visible: bool) -> None:
        self._grid.setVisible(visible and self._grid.has_grid())

    def rendered(self) -> QPixmap:
        """What the viewer shows right now (for tests and screenshots)."""
        return self.viewport().grab()

    # -- zoom and pan -------------------------------------------------------------------------
    def zoom(self) -> float:
        return self._zoom

    def is_fit(self) -> bool:
        return self._fit

    def fit(self) -> None:
        """Scale so the whole image fits the view."""
        self._fit = True
        w, h = self._image_size
        if not w or not h:
            return
        vp = self.viewport().rect()
        z = min(vp.width() / w, vp.height() / h) if vp.width() > 1 and vp.height() > 1 else 1.0
        self._apply_zoom(max(MIN_ZOOM, min(MAX_ZOOM, z)))
        self.centerOn(w / 2, h / 2)

    def actual_size(self, anchor: QPoint | None = None) -> None:
        """100 %: one image pixel per screen pixel."""
        self.set_zoom(1.0, anchor)

    def zoom_in(self, anchor: QPoint | None = None) -> None:
        self.set_zoom(self._zoom * ZOOM_STEP, anchor)

    def zoom_out(self, anchor: QPoint | None = None) -> None:
        self.set_zoom(self._zoom / ZOOM_STEP, anchor)

    def set_zoom(self, zoom: float, anchor: QPoint | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (view coords; default centre) still."""
        self._fit = False
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        if anchor is None:
            anchor = self.viewport().rect().center()
        fixed = self.mapToScene(anchor)
        self._apply_zoom(zoom)
        moved = self.mapFromScene(fixed) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._emit_view_changed()

    def _apply_zoom(self, zoom: float) -> None:
        self._zoom = zoom
        self.setTransform(QTransform.fromScale(zoom, zoom))
        for name, item in self._items.items():
            if name != "patches":
                self._update_smoothing(item, item.transform().m11())
        self._emit_view_changed()

    def _update_smoothing(self, item: QGraphicsPixmapItem, scale: float) -> None:
        # Enlarged pixels stay sharp squares (analysts inspect single pixels); a reduced image
        # is smoothed so it does not alias. Overlays are never smoothed: they are flat colours
        # or a smooth map already, and smoothing them doubles the cost of every re-draw.
        smooth = self._zoom * scale < 1.0 and item is self._items["image"]
        mode = (
            Qt.TransformationMode.SmoothTransformation
            if smooth
            else Qt.TransformationMode.FastTransformation
        )
        item.setTransformationMode(mode)

    # -- synchronised views -------------------------------------------------------------------
    def view_center(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    def follow(self, other: ImageViewer) -> None:
        """Take ``other``'s zoom and centre (side-by-side views move together)."""
        if self._syncing or not self.has_image():
            return
        self._syncing = True
        try:
            self._fit = other.is_fit()
            self._apply_zoom(other.zoom())
            self.centerOn(other.view_center())
        finally:
            self._syncing = False

    def _emit_view_changed(self) -> None:
        if not self._syncing:
            self.view_changed.emit()

    # -- events -------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps and self.has_image():
            self.set_zoom(self._zoom * math.pow(ZOOM_STEP, steps), event.position().toPoint())
            event.accept()
        else:
            super().wheelEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.has_image():
            if self._fit or abs(self._zoom - 1.0) > 1e-6:
                self.actual_size(event.position().toPoint())
            else:
                self.fit()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        point = self.mapToScene(event.position().toPoint())
        x, y = math.floor(point.x()), math.floor(point.y())
        w, h = self._image_size
        self.hovered.emit(*((x, y) if 0 <= x < w and 0 <= y < h else (-1, -1)))

    def leaveEvent(self, event) -> None:
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()
