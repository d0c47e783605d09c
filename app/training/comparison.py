"""The monitor's "Before / after" tab: what a fine-tune gained on its held-out images.

Filled from the trainer's ``comparison`` event (``ncl_core.training.comparison``): the table
of the base model's and the kept model's validation figures, and the held-out images drawn by
both, side by side (image | ground truth | before | after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

EMPTY_TEXT = (
    "A fine-tune ends here with its base model and the new model compared on the same "
    "held-out images."
)


class BeforeAfterPanel(QWidget):
    """A table (figure | before | after | change) beside the side-by-side pictures, which are
    scaled to the width they have."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(EMPTY_TEXT)
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "before", "after", "change"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column in range(4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVisible(False)
        self.pictures = QWidget()
        self.pictures_layout = QVBoxLayout(self.pictures)
        self.pictures_layout.setContentsMargins(0, 0, 0, 0)
        self.pictures_layout.addStretch(1)  # the pictures go above it
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.pictures)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row = QHBoxLayout()
        row.addWidget(self.table, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.scroll, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addLayout(row, 1)
        self.picture_labels: list[QLabel] = []
        self._originals: list[QPixmap] = []

    def clear(self) -> None:
        self.caption.setText(EMPTY_TEXT)
        self.table.setRowCount(0)
        self.table.setVisible(False)
        for label in self.picture_labels:
            self.pictures_layout.removeWidget(label)
            label.deleteLater()
        self.picture_labels = []
        self._originals = []

    def show_comparison(self, event: dict[str, Any]) -> None:
        """Fill the tab from a ``comparison`` event."""
        self.clear()
        n = event.get("n_images")
        floor = event.get("floor_f1")
        text = f"Before and after fine-tuning, on {n} validation image(s)" if n else ""
        if isinstance(floor, float):
            text += f". Marking every pixel scores F1 {floor:.3f} (the floor)."
        self.caption.setText(text or "Before and after fine-tuning")
        rows = event.get("rows", [])
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            change = row["after"] - row["before"]
            cells = (row["label"], f"{row['before']:.3f}", f"{row['after']:.3f}", f"{change:+.3f}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
        self.table.setVisible(bool(rows))
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        width = sum(self.table.columnWidth(c) for c in range(4)) + 4
        height = self.table.horizontalHeader().height() + self.table.verticalHeader().length() + 4
        self.table.setFixedSize(width, height)
        for path in event.get("pictures", []):
            label = QLabel()
            pixmap = QPixmap(str(path))
            if pixmap.isNull():
                label.setText(f"{Path(path).name}: could not be read")
            else:
                self._originals.append(pixmap)
                label.setProperty("original", len(self._originals) - 1)
            label.setToolTip(f"{path}\nimage | ground truth | base model | fine-tuned model")
            self.pictures_layout.insertWidget(len(self.picture_labels), label)
            self.picture_labels.append(label)
        self._fit_pictures()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_pictures()

    def _fit_pictures(self) -> None:
        """Each picture at the width of the pane (never enlarged)."""
        width = max(100, self.scroll.viewport().width() - 4)
        for label in self.picture_labels:
            index = label.property("original")
            if index is None:
                continue
            original = self._originals[int(index)]
            if original.width() > width:
                label.setPixmap(
                    original.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
                )
            else:
                label.setPixmap(original)
