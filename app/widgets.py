"""Small widgets shared by the views: the message bar, the colour legend, a path field."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from app.qtimage import pixmap_rgb
from ncl_core.render import colorbar_rgb

# Patch colours of the contour-patch view (as in the paper's Figure 1): alpha for the overlay.
PATCH_COLORS = {
    "authentic": QColor(70, 140, 255, 60),
    "tampered": QColor(235, 50, 50, 150),
    "contour": QColor(255, 200, 0, 170),
}
MASK_COLOR = QColor(255, 0, 0)

_LEVEL_STYLE = {
    "info": "background:#24476b; color:#f0f0f0;",
    "warning": "background:#6b5a1e; color:#fff6d0;",
    "error": "background:#7a2626; color:#ffecec;",
}


class _WheelWhenFocused(QObject):
    """Lets a control take the mouse wheel only once it has the focus (a click or Tab): a
    wheel turned over it while the panel scrolls goes on to the panel instead."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        wheel = event.type() == QEvent.Type.Wheel
        if wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # unaccepted: Qt hands it on to the parent (the scroll area)
            return True
        return False


_wheel_guard: list[_WheelWhenFocused] = []  # made with the first control it guards


def wheel_only_when_focused(*widgets: QWidget) -> None:
    """Combo boxes, spin boxes and sliders of a scrolled panel: the wheel changes them only
    while they have the focus, and turning it does not give them the focus."""
    if not _wheel_guard:
        _wheel_guard.append(_WheelWhenFocused())
    for widget in widgets:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_wheel_guard[0])


class MessageBar(QWidget):
    """A one-line message across the top of the window; errors stay until dismissed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss this message")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.level = ""
        self.source = ""  # who posted the message (a view's name), so that it can retract it
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, text: str, level: str = "info", source: str = "") -> None:
        """Show ``text``; info messages fade after 8 s, warnings and errors stay."""
        self.level, self.source = level, source
        self.label.setText(text)
        self.setStyleSheet(_LEVEL_STYLE.get(level, _LEVEL_STYLE["info"]))
        self.show()
        if level == "info":
            self._timer.start(8000)
        else:
            self._timer.stop()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


@dataclass(frozen=True)
class MapScale:
    """What the drawn map stands for, as the legend names it: its name and what brighter
    means, the labels of the colour bar's ends, and the symbol of its value (``p ≥ 0.50``)."""

    name: str = "tampering probability (NCL model)"
    low: str = "p = 0"
    high: str = "1"
    symbol: str = "p"


_ROW_H = 22  # px, one row of the legend
_GAP = 16  # px between the legend's items


class Legend(QWidget):
    """The colour scale of the drawn map (named: the model's probability or a forensic view),
    or the mask / patch colours with their counts. Items that do not fit in one row go on to
    the next, whole: nothing is cut off."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._cmap = "inferno"
        self._mode = "heatmap"
        self._threshold = 0.5
        self._counts: dict[str, int] | None = None
        self._scale = MapScale()

    def set_state(
        self,
        mode: str,
        cmap: str,
        threshold: float,
        patch_counts: dict[str, int] | None = None,
        scale: MapScale | None = None,
    ) -> None:
        """``mode``: the overlay drawn ("heatmap", "mask", "outline" or "off"); ``scale``: what
        the map is (default: the model's probability)."""
        self._mode, self._cmap, self._threshold = mode, cmap, threshold
        self._counts = patch_counts
        self._scale = scale or MapScale()
        self._fit_height()
        self.update()

    # -- the items and their rows --------------------------------------------------------------
    def items(
        self, mode: str | None = None, counts: dict[str, int] | None = None
    ) -> list[tuple[str, str, QColor | None]]:
        """(kind, text, colour) of every item shown: kind "bar" (the colour bar, its text the
        ends), "text" or "swatch". ``mode``, ``counts``: other than those shown."""
        out: list[tuple[str, str, QColor | None]] = []
        scale, t = self._scale, self._threshold
        mode = self._mode if mode is None else mode
        counts = self._counts if counts is None else counts
        if mode == "heatmap":
            out.append(("bar", f"{scale.low} … {scale.high}", None))
            # Three items, so that a narrow legend wraps between them rather than cut them.
            out.append(("text", scale.name, None))
            out.append(("text", f"colour map {self._cmap}", None))
            out.append(("text", f"tick = threshold {t:.2f}", None))
        elif mode in ("mask", "outline"):
            out.append(("swatch", f"{scale.symbol} ≥ {t:.2f} (flagged)", MASK_COLOR))
            out.append(("text", scale.name, None))
        if counts is not None:
            for name in ("tampered", "contour", "authentic"):
                color = QColor(PATCH_COLORS[name])
                color.setAlpha(255)
                out.append(("swatch", f"{name} {counts[name]}", color))
        return out

    def texts(self) -> list[str]:
        return [text for _, text, _ in self.items()]

    def _bar_width(self) -> int:
        return min(260, max(60, self.width() // 3))

    def _item_width(self, kind: str, text: str) -> int:
        fm = self.fontMetrics()
        if kind == "bar":
            low, high = self._scale.low, self._scale.high
            return (
                fm.horizontalAdvance(low) + 6 + self._bar_width() + 6 + fm.horizontalAdvance(high)
            )
        # A few px spare: elidedText cuts a text given exactly its own advance.
        if kind == "swatch":
            return 16 + fm.horizontalAdvance(text) + 4
        return fm.horizontalAdvance(text) + 4

    def layout_items(self, width: int | None = None, items=None) -> list[tuple[int, int, int]]:
        """(row, x, width) of every item of ``items`` (default: ``items()``), flowed into rows
        of ``width`` px."""
        width = self.width() if width is None else width
        placed, row, x = [], 0, 6
        for kind, text, _ in self.items() if items is None else items:
            w = min(self._item_width(kind, text), max(1, width - 12))
            if x > 6 and x + w > width - 6:
                row, x = row + 1, 6
            placed.append((row, x, w))
            x += w + _GAP
        return placed

    def cut(self) -> list[str]:
        """The items too wide for the legend, shown cut short (none but at very small widths)."""
        width = self.width()
        return [
            text
            for (kind, text, _), (_, x, w) in zip(self.items(), self.layout_items(), strict=True)
            if w < self._item_width(kind, text) or x + w > width
        ]

    def _fit_height(self) -> None:
        """As tall as the fullest legend of this map at this width needs (the colour bar and
        the patch counts), so that the image above does not jump at each overlay change."""
        fullest = self.items("heatmap", dict.fromkeys(PATCH_COLORS, 99_999))
        rows = 1 + max((row for row, _, _ in self.layout_items(items=fullest)), default=0)
        self.setFixedHeight(max(34, rows * _ROW_H + 12))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        text_color = self.palette().windowText().color()
        top = (
            self.height() - (1 + max((r for r, _, _ in self.layout_items()), default=0)) * _ROW_H
        ) // 2
        for (kind, text, color), (row, x, w) in zip(self.items(), self.layout_items(), strict=True):
            mid = top + row * _ROW_H + _ROW_H // 2
            base = mid + fm.ascent() // 2 - 1
            painter.setPen(text_color)
            if kind == "bar":
                scale = self._scale
                painter.drawText(x, base, scale.low)
                bx = x + fm.horizontalAdvance(scale.low) + 6
                bar_w, bar_h = self._bar_width(), 12
                painter.drawPixmap(
                    bx, mid - bar_h // 2, pixmap_rgb(colorbar_rgb(bar_h, bar_w, self._cmap))
                )
                tx = bx + round(self._threshold * (bar_w - 1))
                painter.setPen(QColor(255, 255, 255))
                painter.drawLine(tx, mid - bar_h // 2 - 3, tx, mid + bar_h // 2 + 3)
                painter.setPen(text_color)
                painter.drawText(bx + bar_w + 6, base, scale.high)
            elif kind == "swatch":
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(color)
                painter.drawRect(QRectF(x, mid - 6, 12, 12))
                painter.setPen(text_color)
                painter.drawText(
                    x + 16, base, fm.elidedText(text, Qt.TextElideMode.ElideRight, w - 16)
                )
            else:
                painter.drawText(x, base, fm.elidedText(text, Qt.TextElideMode.ElideRight, w))
        painter.end()


class PathField(QWidget):
    """A line edit with a Browse… button for a folder or a file."""

    changed = Signal(str)

    def __init__(
        self,
        placeholder: str,
        pick_folder: bool = True,
        file_filter: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.text()))
        browse = QToolButton()
        browse.setText("Browse…")
        browse.clicked.connect(self._browse)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)
        self._pick_folder = pick_folder
        self._filter = file_filter

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)
        self.changed.emit(self.text())

    def _browse(self) -> None:
        if self._pick_folder:
            path = QFileDialog.getExistingDirectory(self, self.edit.placeholderText(), self.text())
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, self.edit.placeholderText(), self.text(), self._filter
            )
        if path:
            self.set_text(path)


class BusyRow(QWidget):
    """What a running job does: its stage, a progress bar (a busy bar while the fraction is
    unknown) and a Cancel button. Hidden until ``show_busy``."""

    cancel_clicked = Signal()

    def __init__(self, cancel_tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(cancel_tip)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        row = QHBoxLayout(self)
        row.addWidget(self.stage_label, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        self.setVisible(False)

    def show_busy(self, text: str, fraction: float | None) -> None:
        self.setVisible(True)
        self.stage_label.setText(text)
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * fraction))
