"""The Batch view's queue: one row per file, with its thumbnail, status, score and notes.

Rows are found by path (``rows``), so they keep updating after the table has been sorted.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ncl_core.analysis import Analysis
from ncl_core.inference.render import fit_within, overlay_rgb

THUMB_PX = 72
COLUMNS = ("", "Name", "Status", "Score", "Area %", "Combined", "Model", "Error / warnings")
COL_THUMB, COL_NAME, COL_STATUS, COL_SCORE, COL_AREA, COL_COMBINED, COL_MODEL, COL_NOTE = range(
    len(COLUMNS)
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # the number a Score / Area cell sorts by
RETRYABLE = ("error", "cancelled")
UNFINISHED = ("queued", "analyzing…")

STATUS_COLORS = {
    "ok": QColor(90, 190, 110),
    "error": QColor(230, 90, 90),
    "cancelled": QColor(160, 160, 160),
    "queued": QColor(160, 160, 160),
    "skipped": QColor(160, 160, 160),
}


class _Item(QTableWidgetItem):
    """A cell that sorts by its number (``SORT_ROLE``) when it has one, else by its text;
    a cell without a number (an error, a queued row) counts as lower than every number, so
    that sorting by score, highest first, puts those rows last."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is None or theirs is None:
            if mine is None and theirs is None:
                return self.text().lower() < other.text().lower()
            return mine is None
        return float(mine) < float(theirs)


def thumbnail(image: np.ndarray, analysis: Analysis) -> np.ndarray:
    """A small copy of ``image`` (the RGB pixels analyzed, not kept) with the flagged region
    tinted: at most ``THUMB_PX`` a side, all a row keeps of the image."""
    small = fit_within(image, THUMB_PX)
    h, w = small.shape[:2]
    prob = cv2.resize(analysis.probability, (w, h), interpolation=cv2.INTER_AREA)
    return overlay_rgb(small, prob, analysis.threshold, 0.45, mode="mask", thickness=1)


class QueueTable(QTableWidget):
    """The rows of the queue; sorted on a header click, not while rows update."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.rows: dict[str, QTableWidgetItem] = {}  # path -> its Name cell (rows sort)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.horizontalHeader()
        header.setSectionResizeMode(COL_THUMB, QHeaderView.ResizeMode.Fixed)
        for column, width in (
            (COL_THUMB, THUMB_PX + 8),
            (COL_NAME, 260),
            (COL_STATUS, 90),
            (COL_SCORE, 70),
            (COL_AREA, 70),
            (COL_COMBINED, 110),
            (COL_MODEL, 120),
        ):
            self.setColumnWidth(column, width)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        header.setSectionsClickable(True)
        header.sectionClicked.connect(self.sort_by)
        self.setSortingEnabled(False)
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)

    # -- rows -------------------------------------------------------------------------------
    def add_row(self, path: Path) -> int:
        """The row of ``path``, added (empty) if it has none."""
        key = str(path)
        if key in self.rows:
            return self.rows[key].row()
        row = self.rowCount()
        self.insertRow(row)
        for col in range(len(COLUMNS)):
            self.setItem(row, col, _Item())
        name = self.item(row, COL_NAME)
        name.setText(path.name)
        name.setToolTip(key)
        name.setData(Qt.ItemDataRole.UserRole, key)
        self.rows[key] = name
        return row

    def row_of(self, path: str | Path) -> int | None:
        item = self.rows.get(str(path))
        return None if item is None else item.row()

    def set_row(
        self,
        row: int,
        status: str,
        score: float | None = None,
        area: float | None = None,
        note: str = "",
    ) -> None:
        status_item = self.item(row, COL_STATUS)
        status_item.setText(status)
        status_item.setForeground(STATUS_COLORS.get(status, QColor(220, 220, 220)))
        for col, value, text in (
            (COL_SCORE, score, "" if score is None else f"{score:.3f}"),
            (COL_AREA, area, "" if area is None else f"{area:.2f}"),
        ):
            item = self.item(row, col)
            item.setText(text)
            item.setData(SORT_ROLE, None if value is None else float(value))
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if status != "ok":
            self.item(row, COL_MODEL).setText("")
            self.set_combined(row, None)
        note_item = self.item(row, COL_NOTE)
        note_item.setText(note)
        note_item.setToolTip(note)

    def set_combined(self, row: int, found) -> None:
        """The combined evidence's finding (a ``ViewResult``; None: not made): "indicated" or
        "none" and its image score, sorting by the score; its summary as the tooltip."""
        item = self.item(row, COL_COMBINED)
        score = None if found is None else found.details.get("image_score")
        if found is None:
            text = ""
        elif score is None:
            text = "failed" if found.summary.startswith("failed") else "n/a"
        else:
            said = {True: "indicated", False: "none"}.get(found.details.get("indicated"), "")
            text = f"{said} {score:.3f}".strip()
        item.setText(text)
        item.setToolTip("" if found is None else f"Combined evidence: {found.summary}")
        item.setData(SORT_ROLE, None if score is None else float(score))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if found is not None and found.details.get("indicated"):
            item.setForeground(QColor(224, 112, 112))

    def set_model(self, row: int, model_id: str, model_sha256: str) -> None:
        model = self.item(row, COL_MODEL)
        model.setText(model_id)
        model.setToolTip(f"model file SHA-256 {model_sha256}")

    def set_thumbnail(self, row: int, image: QImage) -> None:
        self.item(row, COL_THUMB).setIcon(QIcon(QPixmap.fromImage(image)))

    def key(self, row: int) -> str | None:
        """The path of ``row``."""
        return self.item(row, COL_NAME).data(Qt.ItemDataRole.UserRole)

    def status(self, row: int) -> str:
        return self.item(row, COL_STATUS).text()

    def statuses(self) -> list[str]:
        return [self.status(r) for r in range(self.rowCount())]

    def paths_with_status(self, statuses: tuple[str, ...]) -> list[Path]:
        return [Path(k) for k, item in self.rows.items() if self.status(item.row()) in statuses]

    def row_status(self) -> list[tuple[str, str, str]]:
        """(name, status, note) of every row, in table order."""
        return [
            (self.item(r, COL_NAME).text(), self.status(r), self.item(r, COL_NOTE).text())
            for r in range(self.rowCount())
        ]

    def cancel_unfinished(self) -> None:
        """Rows still queued or being analyzed: not analyzed after all."""
        for row in range(self.rowCount()):
            if self.status(row) in UNFINISHED:
                self.set_row(row, "cancelled", note="not analyzed (cancelled)")

    def clear_rows(self) -> None:
        self.setRowCount(0)
        self.rows.clear()

    def sort_by(self, column: int) -> None:
        """Sort the rows by a column (a header click); a second click reverses the order."""
        header = self.horizontalHeader()
        order = Qt.SortOrder.AscendingOrder
        if header.sortIndicatorSection() == column:
            order = (
                Qt.SortOrder.DescendingOrder
                if header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
                else Qt.SortOrder.AscendingOrder
            )
        elif column in (COL_SCORE, COL_AREA, COL_COMBINED):
            order = Qt.SortOrder.DescendingOrder  # highest scores first
        header.setSortIndicator(column, order)
        self.sortItems(column, order)
