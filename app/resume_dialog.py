"""The Training view's Resume dialog: the resumable runs, described, not bare folder names.

What a run folder holds is read by ``ncl_core.training.run_dir``; this dialog only lays it out.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ncl_core.training.run_dir import RunSummary

COLUMNS = ("Model", "Data", "Progress", "Date", "State")
STATES = {
    "interrupted": "interrupted",
    "cancelled": "cancelled",
    "stopped": "time limit reached",
    "failed": "failed",
    "finished": "finished",
}
_NOTE_COLOR = QColor(217, 165, 59)


def _tooltip(run: RunSummary) -> str:
    lines = [f"Run folder: {run.path}"]
    if run.base_model:
        lines.append(f"Fine-tunes: {run.base_model}")
    lines += [f"Data: {p}" for p in run.data_paths()]
    lines += [f"Note: {n}" for n in run.notes]
    return "\n".join(lines)


class ResumeDialog(QDialog):
    """Pick a run to continue from its checkpoint (or another folder)."""

    def __init__(self, runs: list[RunSummary], root: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Resume a training run")
        self.runs = list(runs)
        self.root = Path(root)
        self._other: Path | None = None

        intro = QLabel(
            f"Runs with a checkpoint in {self.root}, the most recent first. A run continues "
            "from its last checkpoint, with its own settings."
            if self.runs
            else f"No run with a checkpoint in {self.root}. Choose another run folder."
        )
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(len(self.runs), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The state column takes the rest and wraps a damaged run's notes.
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        header.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        for row, run in enumerate(self.runs):
            state = STATES.get(run.state, run.state)
            if run.notes:
                state += " — " + "; ".join(run.notes)
            cells = (
                run.model_text(),
                run.data_text(),
                run.progress_text(),
                run.date_text(),
                state,
            )
            tip = _tooltip(run)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if col == len(cells) - 1 and run.notes:
                    item.setForeground(_NOTE_COLOR)
                self.table.setItem(row, col, item)
        self.table.resizeRowsToContents()
        self.table.setVisible(bool(self.runs))
        self.table.itemSelectionChanged.connect(self._on_selected)
        self.table.itemDoubleClicked.connect(lambda _item: self.accept())

        buttons = QDialogButtonBox()
        self.resume_button = buttons.addButton("Resume", QDialogButtonBox.ButtonRole.AcceptRole)
        self.other_button = QPushButton("Other folder…")
        self.other_button.setToolTip("A run folder somewhere else (one holding checkpoint.pt)")
        buttons.addButton(self.other_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.other_button.clicked.connect(self._choose_other)

        self.more_spin = QDoubleSpinBox()
        self.more_spin.setRange(0.0, 100_000.0)
        self.more_spin.setDecimals(0)
        self.more_spin.setSuffix(" min")
        self.more_spin.setSpecialValueText("none")
        self.more_spin.setToolTip(
            "Give the run more time: its time limit grows by this much, and a learning rate "
            "that follows the clock continues over the longer schedule"
        )
        self.more_spin.valueChanged.connect(self._update_buttons)
        self.time_note = QLabel("")
        self.time_note.setWordWrap(True)
        more = QFormLayout()
        more.addRow("More time", self.more_spin)
        more.addRow(self.time_note)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(more)
        layout.addWidget(buttons)
        if self.runs:
            self.table.selectRow(0)
        self._update_buttons()
        self.resize(1180, 200 + 40 * min(len(self.runs), 8))

    def _on_selected(self) -> None:
        """A run that used all its time is offered more (15 minutes, or what is there)."""
        run = self.selected_run()
        if run is not None and run.needs_more_time and not self.more_spin.value():
            self.more_spin.setValue(15)
        self._update_buttons()

    def _update_buttons(self) -> None:
        run = self.selected_run()
        blocked = run is not None and run.needs_more_time and not self.more_spin.value()
        self.resume_button.setEnabled(run is not None and not blocked)
        if run is not None and run.needs_more_time:
            self.time_note.setText(
                f"This run used all of its {run.time_limit_min:g}-minute time limit and its "
                "learning rate reached 0: it continues only with more time."
            )
            self.time_note.setStyleSheet("" if self.more_spin.value() else "color:#d9a53b;")
        else:
            self.time_note.setText("")

    def more_minutes(self) -> float | None:
        """The minutes of more time asked for; None for none."""
        return self.more_spin.value() or None

    def selected_run(self) -> RunSummary | None:
        rows = self.table.selectionModel().selectedRows()
        return self.runs[rows[0].row()] if rows else None

    def selected_path(self) -> Path | None:
        """The run folder to resume: the chosen row, or the folder picked by hand."""
        if self._other is not None:
            return self._other
        run = self.selected_run()
        return run.path if run is not None else None

    def row_texts(self, row: int) -> list[str]:
        """The texts of one row (tests and screenshots read them)."""
        return [self.table.item(row, col).text() for col in range(len(COLUMNS))]

    def _choose_other(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder to resume", str(self.root))
        if folder:
            self._other = Path(folder)
            self.accept()
