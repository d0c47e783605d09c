"""Small widgets shared by the views: the message bar, the colour legend, a path field."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
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


class Legend(QWidget):
    """The colour scale of the overlay, or the mask / patch colours with their counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._cmap = "inferno"
        self._mode = "heatmap"
        self._threshold = 0.5
        self._counts: dict[str, int] | None = None

    def set_state(
        self,
        mode: str,
        cmap: str,
        threshold: float,
        patch_counts: dict[str, int] | None = None,
    ) -> None:
        self._mode, self._cmap, self._threshold = mode, cmap, threshold
        self._counts = patch_counts
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        x = 6
        mid = self.height() // 2
        if self._mode == "heatmap":
            bar_w, bar_h = min(260, max(60, self.width() // 3)), 12
            painter.drawText(x, mid + fm.ascent() // 2 - 1, "p = 0")
            x += fm.horizontalAdvance("p = 0") + 6
            bar = pixmap_rgb(colorbar_rgb(bar_h, bar_w, self._cmap))
            painter.drawPixmap(x, mid - bar_h // 2, bar)
            tx = x + round(self._threshold * (bar_w - 1))
            painter.setPen(QColor(255, 255, 255))
            painter.drawLine(tx, mid - bar_h // 2 - 3, tx, mid + bar_h // 2 + 3)
            x += bar_w + 6
            painter.setPen(self.palette().windowText().color())
            text = (
                f"1    tampering probability ({self._cmap}); tick = threshold {self._threshold:.2f}"
            )
            painter.drawText(x, mid + fm.ascent() // 2 - 1, text)
            x += fm.horizontalAdvance(text) + 18
        elif self._mode in ("mask", "outline"):
            x = self._swatch(painter, x, mid, MASK_COLOR, f"p ≥ {self._threshold:.2f} (flagged)")
        if self._counts is not None:
            for name in ("tampered", "contour", "authentic"):
                color = QColor(PATCH_COLORS[name])
                color.setAlpha(255)
                x = self._swatch(painter, x, mid, color, f"{name} {self._counts[name]}")
        painter.end()

    def _swatch(self, painter: QPainter, x: int, mid: int, color: QColor, text: str) -> int:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRect(QRectF(x, mid - 6, 12, 12))
        painter.setPen(self.palette().windowText().color())
        fm = painter.fontMetrics()
        painter.drawText(x + 16, mid + fm.ascent() // 2 - 1, text)
        return x + 16 + fm.horizontalAdvance(text) + 16


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
