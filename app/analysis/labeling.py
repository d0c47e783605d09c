"""Making a mask on the Analysis view: paint and correct it over the image, then keep the image
and its mask in a labeled set (``ncl_core.training.labeled_sets``) to fine-tune on.

``MaskEdit`` is the mask and its undo history (numpy and OpenCV, no Qt); ``LabelBox`` is the
side panel's "Label" box and ``Labeler`` the mouse tools on the viewer: brush, eraser, polygon
(click the corners, double-click to close; right button: erase the shape) and box
(drag; right button: erase). Editing starts from the model's mask at the current threshold.
The evidence file is never written: the set gets a copy of it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainterPath, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.jobs import Job, JobContext, JobManager
from app.viewer import LAYERS, ImageViewer
from ncl_core.training.labeled_sets import LabeledSets, SetError, check_set_name

TOOLS = (
    ("brush", "Brush", "Paint manipulated pixels (B)"),
    ("eraser", "Eraser", "Erase marked pixels (E)"),
    (
        "polygon",
        "Polygon",
        "Click the corners; double-click or Enter fills it; right button: erase (P)",
    ),
    ("box", "Box", "Drag a rectangle to fill; right button: erase it (R)"),
)
UNDO_DEPTH = 40
LABEL_COLOR = (0, 220, 255)  # the mask being edited: cyan, unlike every heatmap colour


class MaskEdit:
    """A mask being edited and its undo history (packed bits: 1/8 of the mask each)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = np.ascontiguousarray(mask, dtype=bool).copy()
        self._undo: list[bytes] = []

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    def checkpoint(self) -> None:
        """Remember the mask as it is, before a change (one undo step)."""
        self._undo.append(np.packbits(self.mask).tobytes())
        del self._undo[:-UNDO_DEPTH]

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> bool:
        if not self._undo:
            return False
        bits = np.frombuffer(self._undo.pop(), dtype=np.uint8)
        self.mask = np.unpackbits(bits)[: self.mask.size].reshape(self.mask.shape).astype(bool)
        return True

    def _draw(self, value: bool, draw) -> None:
        canvas = self.mask.astype(np.uint8)
        draw(canvas)
        self.mask = canvas.astype(bool) if value else self.mask & canvas.astype(bool)

    def stroke(self, points: list[tuple[float, float]], radius: float, value: bool) -> None:
        """A brush (``value`` True) or eraser stroke through ``points`` (image x, y)."""
        pts = [(round(x), round(y)) for x, y in points]
        r = max(1, round(radius))
        target = np.zeros(self.mask.shape, np.uint8)
        for a, b in zip(pts, pts[1:] or pts):
            cv2.line(target, a, b, 1, thickness=2 * r, lineType=cv2.LINE_8)
            cv2.circle(target, b, r, 1, thickness=-1)
        cv2.circle(target, pts[0], r, 1, thickness=-1)
        self._apply(target.astype(bool), value)

    def polygon(self, points: list[tuple[float, float]], value: bool) -> None:
        if len(points) < 3:
            return
        target = np.zeros(self.mask.shape, np.uint8)
        cv2.fillPoly(target, [np.round(np.asarray(points)).astype(np.int32)], 1)
        self._apply(target.astype(bool), value)

    def box(self, x0: float, y0: float, x1: float, y1: float, value: bool) -> None:
        h, w = self.mask.shape
        left, right = sorted((int(np.floor(x0)), int(np.ceil(x1))))
        top, bottom = sorted((int(np.floor(y0)), int(np.ceil(y1))))
        target = np.zeros(self.mask.shape, bool)
        target[max(0, top) : min(h, bottom), max(0, left) : min(w, right)] = True
        self._apply(target, value)

    def _apply(self, target: np.ndarray, value: bool) -> None:
        if value:
            self.mask |= target
        else:
            self.mask &= ~target


def mask_pixmap(mask: np.ndarray) -> QPixmap:
    """The mask as a translucent cyan layer with a solid edge."""
    h, w = mask.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[mask] = (*LABEL_COLOR, 110)
    edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rgba[edge] = (*LABEL_COLOR, 255)
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(image.copy())


class Labeler(QObject):
    """The mouse tools on ``viewer`` while a mask is edited."""

    changed = Signal()  # the mask changed (drawn, undone, replaced)

    def __init__(self, viewer: ImageViewer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.edit: MaskEdit | None = None
        self.tool = "brush"
        self.radius = 8
        self._stroke: list[tuple[float, float]] = []
        self._value = True
        self._polygon: list[tuple[float, float]] = []
        self._box_start: QPointF | None = None
        scene = viewer.scene()
        self._layer = QGraphicsPixmapItem()
        self._layer.setZValue(len(LAYERS) + 1)
        self._layer.setVisible(False)
        scene.addItem(self._layer)
        pen = QPen(QColor(*LABEL_COLOR), 0)
        self._shape = QGraphicsPathItem()
        self._shape.setPen(pen)
        self._shape.setZValue(len(LAYERS) + 2)
        scene.addItem(self._shape)
        self._rect = QGraphicsRectItem()
        self._rect.setPen(pen)
        self._rect.setZValue(len(LAYERS) + 2)
        self._rect.setVisible(False)
        scene.addItem(self._rect)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(30)  # strokes are drawn at most ~30 times a second
        self._redraw.timeout.connect(self._show)

    # -- editing ------------------------------------------------------------------------------
    def active(self) -> bool:
        return self.edit is not None

    def start(self, mask: np.ndarray) -> None:
        """Edit ``mask`` (a copy); the viewer's left button paints instead of panning."""
        first = self.edit is None
        if not first:
            self.edit.checkpoint()
            self.edit.mask = np.asarray(mask, bool).copy()
        else:
            self.edit = MaskEdit(mask)
            self.viewer.viewport().installEventFilter(self)
            self.viewer.setDragMode(QGraphicsView.DragMode.NoDrag)
            self.viewer.setCursor(Qt.CursorShape.CrossCursor)
        self._show()
        self.changed.emit()

    def stop(self) -> None:
        """Stop editing; the viewer pans again."""
        if self.edit is None:
            return
        self.edit = None
        self._polygon, self._stroke, self._box_start = [], [], None
        self.viewer.viewport().removeEventFilter(self)
        self.viewer.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.viewer.unsetCursor()
        self._layer.setVisible(False)
        self._shape.setPath(QPainterPath())
        self._rect.setVisible(False)
        self.changed.emit()

    def undo(self) -> None:
        if self.edit is not None and self.edit.undo():
            self._show()
            self.changed.emit()

    def mask(self) -> np.ndarray | None:
        return None if self.edit is None else self.edit.mask.copy()

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self._polygon = []
        self._shape.setPath(QPainterPath())

    def close_polygon(self, value: bool = True) -> None:
        if self.edit is not None and len(self._polygon) >= 3:
            self.edit.checkpoint()
            self.edit.polygon(self._polygon, value)
            self._show()
            self.changed.emit()
        self._polygon = []
        self._shape.setPath(QPainterPath())

    def _show(self) -> None:
        if self.edit is not None:
            self._layer.setPixmap(mask_pixmap(self.edit.mask))
            self._layer.setVisible(True)

    # -- the mouse ----------------------------------------------------------------------------
    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if self.edit is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            return self._press(event)
        if kind == QEvent.Type.MouseMove:
            return self._move(event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._release(event)
        if kind == QEvent.Type.MouseButtonDblClick and self.tool == "polygon":
            self.close_polygon(self._value)
            return True
        return False

    def _point(self, event) -> QPointF:
        return self.viewer.mapToScene(event.position().toPoint())

    def _press(self, event) -> bool:
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        p = self._point(event)
        erase = button == Qt.MouseButton.RightButton
        if self.tool in ("brush", "eraser"):
            if erase:
                return False
            self._value = self.tool == "brush"
            self.edit.checkpoint()
            self._stroke = [(p.x(), p.y())]
            self.edit.stroke(self._stroke, self.radius, self._value)
            self._redraw.start()
        elif self.tool == "box":
            self._value = not erase
            self._box_start = p
            self._rect.setRect(QRectF(p, p))
            self._rect.setVisible(True)
        elif self.tool == "polygon":
            self._value = not erase
            self._polygon.append((p.x(), p.y()))
            self._show_polygon()
        return True

    def _move(self, event) -> bool:
        p = self._point(event)
        if self._stroke:
            self.edit.stroke([self._stroke[-1], (p.x(), p.y())], self.radius, self._value)
            self._stroke.append((p.x(), p.y()))
            if not self._redraw.isActive():
                self._redraw.start()
            return True
        if self._box_start is not None:
            self._rect.setRect(QRectF(self._box_start, p).normalized())
            return True
        return False  # hovering: the viewer reports the pixel under the cursor

    def _release(self, event) -> bool:
        if self._stroke:
            self._stroke = []
            self._show()
            self.changed.emit()
            return True
        if self._box_start is not None:
            start, p = self._box_start, self._point(event)
            self._box_start = None
            self._rect.setVisible(False)
            self.edit.checkpoint()
            self.edit.box(start.x(), start.y(), p.x(), p.y(), self._value)
            self._show()
            self.changed.emit()
            return True
        return self.tool == "polygon"

    def _show_polygon(self) -> None:
        path = QPainterPath()
        if self._polygon:
            path.moveTo(*self._polygon[0])
            for x, y in self._polygon[1:]:
                path.lineTo(x, y)
        self._shape.setPath(path)


class LabelBox(QGroupBox):
    """The side panel's "Label" box: edit a mask, choose a set, add the image to it."""

    added = Signal(str)  # the name of the set an image went into

    def __init__(self, jobs: JobManager, labeler: Labeler, parent: QWidget | None = None):
        super().__init__("Label (make a mask for fine-tuning)", parent)
        self.jobs, self.labeler = jobs, labeler
        self._source = None  # () -> (path, model mask or None, image shape) of what is shown
        self._job: Job | None = None
        form = QFormLayout(self)
        self.edit_button = QPushButton("Edit mask")
        self.edit_button.setCheckable(True)
        self.edit_button.setToolTip(
            "Paint the manipulated region over the image, starting from the model's mask at "
            "the current threshold; the left button paints instead of panning (wheel: zoom)"
        )
        self.edit_button.toggled.connect(self._toggle)
        self.from_model_button = QPushButton("From model")
        self.from_model_button.setToolTip("Start again from the model's mask at the threshold")
        self.from_model_button.clicked.connect(self._from_model)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Nothing marked: an authentic example")
        self.clear_button.clicked.connect(self._clear)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last change (Ctrl+Z)")
        self.undo_button.clicked.connect(labeler.undo)
        row = QHBoxLayout()
        for button in (self.edit_button, self.from_model_button, self.clear_button):
            row.addWidget(button)
        form.addRow(row)
        self.tool_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        row = QHBoxLayout()
        for key, label, tip in TOOLS:
            button = QPushButton(label)
            button.setCheckable(True)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, k=key: self.set_tool(k))
            group.addButton(button)
            row.addWidget(button)
            self.tool_buttons[key] = button
        self.tool_buttons["brush"].setChecked(True)
        form.addRow(row)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 500)
        self.size_spin.setValue(labeler.radius)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Radius of the brush and the eraser, in image pixels")
        self.size_spin.valueChanged.connect(lambda v: setattr(labeler, "radius", v))
        row = QHBoxLayout()
        row.addWidget(self.size_spin)
        row.addWidget(self.undo_button)
        form.addRow("Brush", row)
        self.set_combo = QComboBox()
        self.set_combo.setEditable(True)
        self.set_combo.setToolTip("A labeled set in your data folder; type a new name to make one")
        self.add_button = QPushButton("Add to set")
        self.add_button.setToolTip(
            "Copy the image (never changed) with this mask into the set, to fine-tune on; the "
            "same image again replaces its mask"
        )
        self.add_button.clicked.connect(self.add_to_set)
        row = QHBoxLayout()
        row.addWidget(self.set_combo, 1)
        row.addWidget(self.add_button)
        form.addRow("Set", row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        labeler.changed.connect(self._update)
        self.refresh_sets()
        self._update_buttons()

    def install_shortcuts(self, owner: QWidget) -> None:
        """Ctrl+Z on the Analysis view undoes the last change of the mask. (No letter keys:
        they would be taken from the set name being typed.)"""
        shortcut = QShortcut(QKeySequence.StandardKey.Undo, owner)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.labeler.undo)

    def set_source(self, source) -> None:
        """``source()`` gives (path, the model's mask at the threshold or None, image shape)."""
        self._source = source

    def set_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)
        self.labeler.set_tool(tool)

    def refresh_sets(self) -> None:
        text = self.set_combo.currentText()
        self.set_combo.clear()
        self.set_combo.addItems(LabeledSets().names())
        self.set_combo.setEditText(text or "my-cases")

    def image_changed(self) -> None:
        """A new image is shown: editing stops (its mask belonged to the previous one)."""
        self.edit_button.setChecked(False)
        self.status.setText("")
        self._update_buttons()

    # -- actions ------------------------------------------------------------------------------
    def _toggle(self, on: bool) -> None:
        if on:
            if not self._from_model():
                self.edit_button.setChecked(False)
        else:
            self.labeler.stop()

    def _from_model(self) -> bool:
        if self._source is None:
            return False
        path, mask, shape = self._source()
        if path is None or shape is None:
            self.status.setText("Open an image first.")
            return False
        self.labeler.start(mask if mask is not None else np.zeros(shape, bool))
        if mask is None:
            self.status.setText("No analysis of this image: starting from an empty mask.")
        return True

    def _clear(self) -> None:
        if self.labeler.edit is not None:
            self.labeler.start(np.zeros(self.labeler.edit.shape, bool))

    def add_to_set(self) -> Job | None:
        """Copy the shown image and the edited mask into the chosen set (in the background)."""
        mask = self.labeler.mask()
        path = self._source()[0] if self._source is not None else None
        if mask is None or path is None:
            self.status.setText("Edit a mask first (Edit mask).")
            return None
        name = self.set_combo.currentText().strip()
        try:
            check_set_name(name)
        except SetError as exc:
            self.status.setText(str(exc))
            return None

        def add(ctx: JobContext):
            item = LabeledSets().add(name, Path(path), mask)
            return item, len(LabeledSets().get(name).items)

        job = Job("adding to a labeled set", add)
        job.succeeded.connect(lambda result: self._added(name, Path(path), *result))
        job.failed.connect(lambda text: self.status.setText(f"Not added: {text}"))
        job.ended.connect(self._update_buttons)
        self._job = job
        self.add_button.setEnabled(False)
        self.status.setText(f"Adding {Path(path).name} to {name}…")
        return self.jobs.start(job)

    def _added(self, name: str, path: Path, item, count: int) -> None:
        kind = f"{100 * item.marked:.1f} % marked" if item.mask else "authentic (nothing marked)"
        self.status.setText(f"Added {path.name} to set {name} ({kind}); it holds {count} images.")
        self.refresh_sets()
        self.set_combo.setEditText(name)
        self.added.emit(name)

    def _update(self) -> None:
        """The mask changed: the buttons, and how much of the image it marks."""
        self._update_buttons()
        if self.labeler.active():
            marked = float(self.labeler.edit.mask.mean())
            self.status.setText(f"{100 * marked:.1f} % of the image marked.")

    def _update_buttons(self) -> None:
        editing = self.labeler.active()
        for button in (self.from_model_button, self.clear_button, *self.tool_buttons.values()):
            button.setEnabled(editing)
        self.undo_button.setEnabled(editing and self.labeler.edit.can_undo())
        busy = self._job is not None and self._job.is_running()
        self.add_button.setEnabled(editing and not busy)
