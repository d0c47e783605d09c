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
    """A table (figure | before | after | change) above the side-by-side pictures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(EMPTY_TEXT)
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "before", "after", "change"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVisible(False)
        self.pictures = QWidget()
        self.pictures_layout = QVBoxLayout(self.pictures)
        self.pictures_layout.setContentsMargins(0, 0, 0, 0)
        self.pictures_layout.addStretch(1)  # the pictures go above it
        scroll = QScrollArea()
        scroll.setWidget(self.pictures)
        scroll.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.table)
        layout.addWidget(scroll, 1)
        self.picture_labels: list[QLabel] = []

    def clear(self) -> None:
        self.caption.setText(EMPTY_TEXT)
        self.table.setRowCount(0)
        self.table.setVisible(False)
        for label in self.picture_labels:
            self.pictures_layout.removeWidget(label)
            label.deleteLater()
        self.picture_labels = []

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
        self.table.setFixedHeight(
            self.table.horizontalHeader().height()
            + sum(self.table.rowHeight(r) for r in range(len(rows)))
            + 4
        )
        for path in event.get("pictures", []):
            label = QLabel()
            pixmap = QPixmap(str(path))
            if pixmap.isNull():
                label.setText(f"{Path(path).name}: could not be read")
            else:
                label.setPixmap(pixmap)
            label.setToolTip(f"{path}\nimage | ground truth | base model | fine-tuned model")
            self.pictures_layout.insertWidget(len(self.picture_labels), label)
            self.picture_labels.append(label)
