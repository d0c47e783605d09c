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
from ncl_core.inference.render import colorbar_rgb
from ncl_core.settings import DEFAULT_THRESHOLD

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


@dataclass(frozen=True)
class Placed:
    """One piece of the legend where it is drawn: the colour bar, a swatch with its text, or
    one word of a text (a text wraps between its words)."""

    row: int
    x: int
    width: int
    kind: str  # "bar", "swatch" or "text"
    text: str
    color: QColor | None = None


class Legend(QWidget):
    """The colour scale of the drawn map (named: the model's probability or a forensic view),
    or the mask / patch colours with their counts. What does not fit in one row goes on to
    the next (texts wrap between words): nothing is cut off. Its height is that of the
    fullest legend at its width, whatever is shown, so that the image above keeps its size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._cmap = "inferno"
        self._mode = "heatmap"
        self._threshold = DEFAULT_THRESHOLD
        self._counts: dict[str, int] | None = None
        self._scale = MapScale()
        self._reserved: tuple[MapScale, ...] = ()

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

    def reserve(self, scales: list[MapScale]) -> None:
        """Every map the legend may name: its height is enough for the widest of them."""
        self._reserved = tuple(scales)
        self._fit_height()

    # -- the items and their rows --------------------------------------------------------------
    def items(
        self,
        mode: str | None = None,
        counts: dict[str, int] | None = None,
        scale: MapScale | None = None,
    ) -> list[tuple[str, str, QColor | None]]:
        """(kind, text, colour) of every item shown: kind "bar" (the colour bar, its text the
        ends), "text" or "swatch". ``mode``, ``counts``, ``scale``: other than those shown."""
        out: list[tuple[str, str, QColor | None]] = []
        scale = self._scale if scale is None else scale
        t = self._threshold
        mode = self._mode if mode is None else mode
        counts = self._counts if counts is None else counts
        if mode == "heatmap":
            out.append(("bar", f"{scale.low} … {scale.high}", None))
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

    def _width_of(self, kind: str, text: str, scale: MapScale) -> int:
        fm = self.fontMetrics()
        if kind == "bar":
            low, high = fm.horizontalAdvance(scale.low), fm.horizontalAdvance(scale.high)
            return low + 6 + self._bar_width() + 6 + high
        return (16 if kind == "swatch" else 0) + fm.horizontalAdvance(text)

    def layout(self, width: int | None = None, items=None, scale=None) -> list[Placed]:
        """Where each piece of ``items`` (default: ``items()``) goes in rows of ``width`` px."""
        width = self.width() if width is None else width
        scale = self._scale if scale is None else scale
        space = self.fontMetrics().horizontalAdvance(" ")
        placed: list[Placed] = []
        row, x = 0, 6  # x: the right end of the last piece placed
        for kind, text, color in self.items() if items is None else items:
            words = text.split(" ") if kind == "text" else [text]
            for i, word in enumerate(words):
                w = min(self._width_of(kind, word, scale), max(1, width - 12))
                gap = 0 if x == 6 else (space if i else _GAP)
                if x > 6 and x + gap + w > width - 6:
                    row, x, gap = row + 1, 6, 0
                placed.append(Placed(row, x + gap, w, kind, word, color))
                x += gap + w
        return placed

    def cut(self) -> list[str]:
        """The pieces too wide for the legend, shown cut short (none but at tiny widths)."""
        width = self.width()
        return [
            p.text
            for p in self.layout()
            if p.width < self._width_of(p.kind, p.text, self._scale) or p.x + p.width > width
        ]

    def rows(self, placed: list[Placed] | None = None) -> int:
        placed = self.layout() if placed is None else placed
        return 1 + max((p.row for p in placed), default=0)

    def _fit_height(self) -> None:
        counts = dict.fromkeys(PATCH_COLORS, 99_999)
        rows = max(
            self.rows(self.layout(items=self.items("heatmap", counts, scale), scale=scale))
            for scale in (self._scale, *self._reserved)
        )
        self.setFixedHeight(max(34, rows * _ROW_H + 12))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        text_color = self.palette().windowText().color()
        placed = self.layout()
        top = (self.height() - self.rows(placed) * _ROW_H) // 2
        scale = self._scale
        for p in placed:
            x, w = p.x, p.width
            mid = top + p.row * _ROW_H + _ROW_H // 2
            base = mid + fm.ascent() // 2 - 1
            painter.setPen(text_color)
            if p.kind == "bar":
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
            elif p.kind == "swatch":
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(p.color)
                painter.drawRect(QRectF(x, mid - 6, 12, 12))
                painter.setPen(text_color)
                painter.drawText(x + 16, base, self._fitted(fm, p.text, w - 16))
            else:
                painter.drawText(x, base, self._fitted(fm, p.text, w))
        painter.end()

    @staticmethod
    def _fitted(fm, text: str, width: int) -> str:
        """``text``, elided only where it is wider than ``width`` (a tiny legend)."""
        if fm.horizontalAdvance(text) <= width:
            return text
        return fm.elidedText(text, Qt.TextElideMode.ElideRight, width)


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
