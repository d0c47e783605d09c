"""The Batch view: a queue of dropped files and folders, analysed one after another in a job.

Every file gets a row: a corrupt or unreadable one an error row, a file that is not an image by
its name a "skipped" row, and the batch goes on. "Export report…" writes the forensic report
folder with ``ncl_core.report.run_batch``; the bundled samples are never part of it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import platformdirs
from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Job, JobContext, JobManager
from app.model_state import ModelState, PredictorSlot
from app.qtimage import qimage_rgb
from app.resources import is_sample
from app.settings import Settings
from app.widgets import PathField
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.data.io import ImageReadError, is_image_file, read_image
from ncl_core.outputs import default_output_folder
from ncl_core.render import fit_within, overlay_rgb
from ncl_core.report import SKIPPED_NOT_IMAGE, ReportOptions, run_batch
from ncl_core.scan import scan_inputs

THUMB_PX = 72
COLUMNS = ("", "Name", "Status", "Score", "Area %", "Model", "Error / warnings")
COL_THUMB, COL_NAME, COL_STATUS, COL_SCORE, COL_AREA, COL_MODEL, COL_NOTE = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # the number a Score / Area cell sorts by
RETRYABLE = ("error", "cancelled")
# Analyses kept in memory so that clicking a row shows it without running the model again.
CACHE_PIXELS = 64_000_000

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


ONLY_SAMPLES = (
    "The queue holds only the bundled samples, and samples are never exported into a report: "
    "add the evidence to report on first."
)


def _thumbnail(path: Path, analysis: Analysis) -> np.ndarray | None:
    """A small picture of the image with its flagged region tinted (None if unreadable)."""
    try:
        image, _ = read_image(path)
    except (ImageReadError, OSError):
        return None
    small = fit_within(image, THUMB_PX)
    h, w = small.shape[:2]
    prob = cv2.resize(analysis.probability, (w, h), interpolation=cv2.INTER_AREA)
    return overlay_rgb(small, prob, analysis.threshold, 0.45, mode="mask", thickness=1)


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ReportDialog(QDialog):
    """Asks where to write the report, and for the analyst and case fields; shows the mode
    and threshold the report will use (those of the Analysis view)."""

    def __init__(
        self,
        start_dir: str,
        parent: QWidget | None = None,
        analyst: str = "",
        case_id: str = "",
        mode: str = "resize",
        threshold: float = 0.5,
        left_out: int = 0,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export batch report")
        form = QFormLayout(self)
        self.folder = PathField("New or empty folder for the report")
        self.folder.set_text(start_dir)
        self.analyst = QLineEdit(analyst)
        self.case_id = QLineEdit(case_id)
        form.addRow("Report folder", self.folder)
        form.addRow("Analyst", self.analyst)
        form.addRow("Case ID", self.case_id)
        self.settings_label = QLabel(
            f"mode <b>{mode}</b>, threshold <b>{threshold:.2f}</b> "
            "(as set in the Analysis view; change them there)"
        )
        self.settings_label.setWordWrap(True)
        form.addRow("Analysis", self.settings_label)
        if left_out:
            samples = QLabel(
                f"{left_out} bundled sample image(s) in the queue are left out of the report."
            )
            samples.setWordWrap(True)
            form.addRow(samples)
        note = QLabel(
            "The report analyses every file again, hashes each input at the start and the end, "
            "and writes HTML, PDF, CSV, JSONL and SHA256SUMS into the folder."
        )
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, 200)


class BatchView(QWidget):
    """Queue table, progress with ETA, cancel, and report export."""

    message = Signal(str, str)
    open_requested = Signal(str, object)  # path, Analysis | None

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        threshold: Callable[[], float],
        mode: Callable[[], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self._threshold, self._mode = threshold, mode
        self.slot = PredictorSlot()
        self.rows: dict[str, QTableWidgetItem] = {}  # path -> its Name cell (rows sort)
        self.roots: list[Path] = []  # what the analyst dropped, for the report's header
        self.results: OrderedDict[str, Analysis] = OrderedDict()
        self._waiting_inputs: list[Path] = []
        self._job: Job | None = None
        self._report_job: Job | None = None
        self._report_outcome = ""
        self.last_report: Path | None = None
        self._t0 = 0.0
        self._done = 0
        self._total = 0
        self._build()
        self.models.changed.connect(self._on_models_changed)

    def _build(self) -> None:
        hint = QLabel(
            "Drop files or folders anywhere on the window (folders are searched recursively), "
            "or add them here. Click a row to open it in the Analysis view."
        )
        hint.setWordWrap(True)
        add_files = QPushButton("Add files…")
        add_files.setToolTip("Add image files to the queue")
        add_files.clicked.connect(self._choose_files)
        add_folder = QPushButton("Add folder…")
        add_folder.setToolTip("Add every file under a folder (recursively) (Ctrl+Shift+O)")
        add_folder.clicked.connect(self.choose_folder)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current image; finished rows are kept (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.retry_button = QPushButton("Retry failed")
        self.retry_button.setToolTip("Analyse the rows that failed or were cancelled again")
        self.retry_button.clicked.connect(self.retry_failed)
        self.retry_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty the queue")
        self.clear_button.clicked.connect(self.clear)
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip(
            "Write the forensic report (HTML, PDF, CSV, JSONL, hashes) for the files in the queue"
        )
        self.export_button.clicked.connect(self.export_dialog)
        self.export_button.setEnabled(False)
        self.open_report_button = QPushButton("Open report")
        self.open_report_button.setToolTip("Open the last exported report in the web browser")
        self.open_report_button.setEnabled(False)
        self.open_report_button.clicked.connect(self._open_report)
        top = QHBoxLayout()
        top.addWidget(hint, 1)
        for button in (
            add_files,
            add_folder,
            self.cancel_button,
            self.retry_button,
            self.clear_button,
        ):
            top.addWidget(button)
        top.addWidget(self.export_button)
        top.addWidget(self.open_report_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_THUMB, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(COL_THUMB, THUMB_PX + 8)
        self.table.setColumnWidth(COL_NAME, 260)
        self.table.setColumnWidth(COL_STATUS, 90)
        self.table.setColumnWidth(COL_SCORE, 70)
        self.table.setColumnWidth(COL_AREA, 70)
        self.table.setColumnWidth(COL_MODEL, 120)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        header.setSectionsClickable(True)
        header.sectionClicked.connect(self.sort_by)
        self.table.setSortingEnabled(False)  # sorted on a header click, not while rows update
        self.table.cellClicked.connect(self._on_row_clicked)
        self.table.setAcceptDrops(False)
        self.table.viewport().setAcceptDrops(False)

        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.summary_label = QLabel()

        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.summary_label)
        layout.addLayout(bottom)

    # -- public -------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return any(j is not None and j.is_running() for j in (self._job, self._report_job))

    def add_paths(self, paths: list[str | Path]) -> None:
        """Queue files and folders (folders recursively) and start analysing them.

        Rows that failed or were cancelled before are analysed again.
        """
        paths = [Path(p) for p in paths]
        self.roots.extend(p for p in paths if p not in self.roots)
        self._waiting_inputs.extend(paths)
        if not self.is_busy():
            self._start()

    def retry_failed(self) -> None:
        """Analyse again every row that failed or was cancelled."""
        paths = [Path(k) for k, item in self.rows.items() if self._status(item) in RETRYABLE]
        if not paths:
            self.message.emit("No failed or cancelled rows to retry.", "info")
            return
        self._waiting_inputs.extend(paths)
        if not self.is_busy():
            self._start()

    def sort_by(self, column: int) -> None:
        """Sort the rows by a column (a header click); a second click reverses the order."""
        header = self.table.horizontalHeader()
        order = Qt.SortOrder.AscendingOrder
        if header.sortIndicatorSection() == column:
            order = (
                Qt.SortOrder.DescendingOrder
                if header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
                else Qt.SortOrder.AscendingOrder
            )
        elif column in (COL_SCORE, COL_AREA):
            order = Qt.SortOrder.DescendingOrder  # highest scores first
        header.setSortIndicator(column, order)
        self.table.sortItems(column, order)

    def _status(self, item: QTableWidgetItem) -> str:
        return self.table.item(item.row(), COL_STATUS).text()

    def cancel(self) -> None:
        self._waiting_inputs.clear()
        for job in (self._job, self._report_job):
            if job is not None:
                job.cancel()

    def clear(self) -> None:
        if self.is_busy():
            self.message.emit("Cancel the running batch before clearing the queue.", "warning")
            return
        self.table.setRowCount(0)
        self.rows.clear()
        self.roots.clear()
        self.results.clear()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.summary_label.setText("")
        self.export_button.setEnabled(False)
        self.retry_button.setEnabled(False)

    def row_status(self) -> list[tuple[str, str, str]]:
        """(name, status, note) of every row, in table order (for tests and scripts)."""
        return [
            (
                self.table.item(r, COL_NAME).text(),
                self.table.item(r, COL_STATUS).text(),
                self.table.item(r, COL_NOTE).text(),
            )
            for r in range(self.table.rowCount())
        ]

    def choose_folder(self) -> bool:
        """Ask for a folder and queue it; True when one was chosen."""
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the batch")
        if folder:
            self.add_paths([folder])
        return bool(folder)

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add files to the batch")
        if files:
            self.add_paths(files)

    # -- the batch job ------------------------------------------------------------------------
    @Slot()
    def _on_models_changed(self) -> None:
        if not self.models.loading and self._waiting_inputs and not self.is_busy():
            self._start()

    def _start(self) -> None:
        if not self._waiting_inputs:
            return
        if self.models.loading:
            # Started again when the model is known (``_on_models_changed``).
            self.progress.setFormat("waiting for the model to load…")
            return
        inputs, self._waiting_inputs = list(self._waiting_inputs), []
        info, device = self.models.info, self.models.device
        mode, threshold = self._mode(), self._threshold()
        slot = self.slot
        # Rows that failed or were cancelled are analysed again when their files come again.
        known = {k for k, item in self.rows.items() if self._status(item) not in RETRYABLE}

        def analyse(ctx: JobContext) -> None:
            scan = scan_inputs(inputs)
            new = [p for p in scan.files if str(p) not in known]
            files = [p for p in new if is_image_file(p)]
            ctx.emit(
                {
                    "type": "files",
                    "inputs": inputs,
                    "files": files,
                    "skipped": [p for p in new if not is_image_file(p)],
                    "problems": scan.problems,
                    "n_found": len(scan.files),
                }
            )
            if not files:
                return
            if info is None:
                for path in files:
                    ctx.emit({"type": "result", "path": path, "result": None})
                return
            predictor = slot.get(info, device)
            ctx.emit({"type": "device", "device": predictor.device})
            results = predictor.analyze_many(
                files, mode=mode, threshold=threshold, cancel=ctx.cancelled
            )
            try:
                ctx.emit({"type": "running", "path": files[0]})
                for i, (path, result) in enumerate(zip(files, results)):
                    thumb = _thumbnail(path, result) if isinstance(result, Analysis) else None
                    ctx.emit(
                        {
                            "type": "result",
                            "path": path,
                            "result": result,
                            "thumb": None if thumb is None else qimage_rgb(thumb),
                        }
                    )
                    if ctx.cancelled():
                        break
                    if i + 1 < len(files):
                        ctx.emit({"type": "running", "path": files[i + 1]})
            finally:
                results.close()  # stops the predictor's read-ahead thread at once

        job = Job("batch", analyse)
        job.event.connect(self._on_event)
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        job.ended.connect(self._on_ended)
        self._job = job
        self._t0 = time.monotonic()
        self._done = 0
        self._total = 0
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)
        self.retry_button.setEnabled(False)
        self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "files":
            for problem in event["problems"]:
                row = self._add_row(problem.path)
                self._set_row(row, "error", note=f"{problem.path}: {problem.message}")
            for path in event["skipped"]:
                self._set_row(self._add_row(path), "skipped", note=SKIPPED_NOT_IMAGE)
            for path in event["files"]:
                self._set_row(self._add_row(path), "queued")
            self._total = len(event["files"])
            self._update_progress()
            if not (event["files"] or event["skipped"] or event["problems"]):
                names = ", ".join(str(p) for p in event["inputs"])
                if event["n_found"]:
                    self.message.emit(f"Already in the queue: {names}.", "info")
                else:
                    self.message.emit(
                        f"Nothing to analyse in {names}: no files found there.", "warning"
                    )
        elif kind == "device":
            self.models.set_loaded_device(event["device"])
        elif kind == "running":
            item = self.rows.get(str(event["path"]))
            if item is not None:
                self._set_row(item.row(), "analysing…")
        elif kind == "result":
            self._show_result(event["path"], event["result"], event.get("thumb"))

    def _show_result(self, path: Path, result: Analysis | AnalysisError | None, thumb) -> None:
        row = self.rows[str(path)].row()
        self._done += 1
        if result is None:
            self._set_row(row, "error", note=f"no model: {self.models.error or 'none loaded'}")
        elif isinstance(result, AnalysisError):
            self._set_row(row, "error", note=result.message)
        else:
            self._remember(str(path), result)
            note = " | ".join(result.warnings)
            if is_sample(path):
                note = " | ".join(filter(None, ["bundled sample: never in a report", note]))
            self._set_row(row, "ok", result.score, 100.0 * result.area_fraction, note)
            model = self.table.item(row, COL_MODEL)
            model.setText(result.model_id)
            model.setToolTip(f"model file SHA-256 {result.model_sha256}")
            if thumb is not None:
                self.table.item(row, COL_THUMB).setIcon(QIcon(QPixmap.fromImage(thumb)))
        self._update_progress()

    def _remember(self, path: str, analysis: Analysis) -> None:
        self.results[path] = analysis
        while (
            len(self.results) > 1
            and sum(a.probability.size for a in self.results.values()) > CACHE_PIXELS
        ):
            self.results.popitem(last=False)

    def _update_progress(self) -> None:
        total = max(self._total, 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(self._done, total))
        elapsed = time.monotonic() - self._t0
        if 0 < self._done < self._total:
            eta = elapsed / self._done * (self._total - self._done)
            self.progress.setFormat(f"%v / %m · ETA {_fmt_eta(eta)}")
        else:
            self.progress.setFormat(f"%v / %m · {_fmt_eta(elapsed)}")
        statuses = [self.table.item(r, COL_STATUS).text() for r in range(self.table.rowCount())]
        skipped = statuses.count("skipped")
        self.summary_label.setText(
            f"{statuses.count('ok')} ok · {statuses.count('error')} error(s) · "
            + (f"{skipped} skipped (not images) · " if skipped else "")
            + f"{len(statuses)} in the queue"
        )

    @Slot()
    def _on_ended(self) -> None:
        cancelled = self._job is not None and self._job.ctx.cancelled()
        self._job = None
        for row in range(self.table.rowCount()):
            if self.table.item(row, COL_STATUS).text() in ("queued", "analysing…"):
                self._set_row(row, "cancelled", note="not analysed (cancelled)")
        self._update_progress()
        if cancelled:
            self.message.emit(f"Batch cancelled; {self._done} finished rows kept.", "info")
        if self._waiting_inputs:
            self._start()
            return
        self.cancel_button.setEnabled(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(bool(self.rows))
        self.retry_button.setEnabled(
            any(self._status(item) in RETRYABLE for item in self.rows.values())
        )

    # -- table --------------------------------------------------------------------------------
    def _add_row(self, path: Path) -> int:
        key = str(path)
        if key in self.rows:
            return self.rows[key].row()
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col in range(len(COLUMNS)):
            self.table.setItem(row, col, _Item())
        name = self.table.item(row, COL_NAME)
        name.setText(path.name)
        name.setToolTip(key)
        name.setData(Qt.ItemDataRole.UserRole, key)
        self.rows[key] = name
        return row

    def _set_row(
        self,
        row: int,
        status: str,
        score: float | None = None,
        area: float | None = None,
        note: str = "",
    ) -> None:
        status_item = self.table.item(row, COL_STATUS)
        status_item.setText(status)
        status_item.setForeground(STATUS_COLORS.get(status, QColor(220, 220, 220)))
        for col, value, text in (
            (COL_SCORE, score, "" if score is None else f"{score:.3f}"),
            (COL_AREA, area, "" if area is None else f"{area:.2f}"),
        ):
            item = self.table.item(row, col)
            item.setText(text)
            item.setData(SORT_ROLE, None if value is None else float(value))
        if status != "ok":
            self.table.item(row, COL_MODEL).setText("")
        for col in (COL_SCORE, COL_AREA):
            self.table.item(row, col).setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
        note_item = self.table.item(row, COL_NOTE)
        note_item.setText(note)
        note_item.setToolTip(note)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        key = self.table.item(row, COL_NAME).data(Qt.ItemDataRole.UserRole)
        status = self.table.item(row, COL_STATUS).text()
        if key and Path(key).is_file() and status in ("ok", "cancelled", "error"):
            self.open_requested.emit(key, self.results.get(key))

    # -- report -------------------------------------------------------------------------------
    def casework_roots(self) -> tuple[list[Path], list[Path]]:
        """The inputs a report covers, and the bundled samples left out of it."""
        casework = [r for r in self.roots if not is_sample(r)]
        return casework, [r for r in self.roots if is_sample(r)]

    def make_report_dialog(self) -> ReportDialog:
        casework, samples = self.casework_roots()
        start = default_output_folder(
            self.settings.get("dirs/report"), casework, platformdirs.user_documents_dir()
        )
        return ReportDialog(
            str(start / f"ncl-report-{time.strftime('%Y%m%d-%H%M%S')}"),
            self,
            analyst=self.settings.get("report/analyst"),
            case_id=self.settings.get("report/case_id"),
            mode=self._mode(),
            threshold=self._threshold(),
            left_out=len(samples),
        )

    def export_dialog(self) -> None:
        if not self.rows:
            self.message.emit("The queue is empty: drop files or folders first.", "warning")
            return
        if not self.casework_roots()[0]:
            self.message.emit(ONLY_SAMPLES, "warning")
            return
        dialog = self.make_report_dialog()
        if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.folder.text():
            return
        out_dir = Path(dialog.folder.text())
        analyst, case_id = dialog.analyst.text().strip(), dialog.case_id.text().strip()
        self.settings.set("report/analyst", analyst)
        self.settings.set("report/case_id", case_id)
        if self.export(out_dir, analyst or None, case_id or None) is not None:
            self.settings.set("dirs/report", str(out_dir.parent))

    def export(
        self, out_dir: Path, analyst: str | None = None, case_id: str | None = None
    ) -> Job | None:
        """Write the report for everything dropped so far (in a job)."""
        if self.is_busy():
            self.message.emit("Wait for the batch to finish (or cancel it) first.", "warning")
            return None
        try:
            info = self.models.require()
        except Exception as exc:  # noqa: BLE001 - ModelFileError; the message says why
            self.message.emit(str(exc), "error")
            return None
        roots, samples = self.casework_roots()
        if not roots:
            self.message.emit(ONLY_SAMPLES, "warning")
            return None
        if samples:
            self.message.emit(
                f"{len(samples)} bundled sample(s) left out of the report: samples are never "
                "exported with casework.",
                "info",
            )
        device, slot = self.models.device, self.slot
        options = ReportOptions(
            mode=self._mode(), threshold=self._threshold(), analyst=analyst, case_id=case_id
        )

        def report(ctx: JobContext):
            predictor = slot.get(info, device)
            return run_batch(
                roots, predictor, out_dir, options, on_event=ctx.emit, cancel=ctx.cancelled
            )

        job = Job("report", report)
        job.event.connect(self._on_report_event)
        job.succeeded.connect(self._on_report_done)
        job.failed.connect(self._on_report_failed)
        job.ended.connect(self._on_report_ended)
        self._report_job = job
        self._report_outcome = "report: cancelled"
        self._t0 = time.monotonic()
        self.cancel_button.setEnabled(True)
        self.export_button.setEnabled(False)
        return self.jobs.start(job)

    @Slot(object)
    def _on_report_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "start":
            self.progress.setRange(0, max(1, event["total"]))
            self.progress.setValue(event["done"])
            self.progress.setFormat("report: %v / %m")
        elif kind == "row":
            self.progress.setValue(event["index"])
            elapsed = time.monotonic() - self._t0
            left = event["total"] - event["index"]
            eta = elapsed / max(1, event["index"]) * left
            self.progress.setFormat(f"report: %v / %m · ETA {_fmt_eta(eta)}")
        elif kind == "phase":
            self.progress.setFormat(f"report: {event['phase']}…")

    @Slot(str)
    def _on_report_failed(self, text: str) -> None:
        self._report_outcome = "report: not written"
        self.message.emit(f"Report not written: {text}", "error")

    @Slot(object)
    def _on_report_done(self, summary) -> None:
        state = "complete" if summary.complete else "incomplete (cancelled)"
        self._report_outcome = f"report: {state}"
        skipped = f"{summary.n_skipped} skipped (not images), " if summary.n_skipped else ""
        self.message.emit(
            f"Report {state}: {summary.n_ok} ok, {summary.n_errors} errors, {skipped}"
            f"{summary.n_hash_mismatches} hash mismatches — {summary.out_dir}",
            "warning" if summary.n_hash_mismatches or not summary.complete else "success",
        )
        self.last_report = Path(summary.out_dir)
        self.open_report_button.setEnabled((self.last_report / "index.html").is_file())

    def _open_report(self) -> None:
        if self.last_report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_report / "index.html")))

    @Slot()
    def _on_report_ended(self) -> None:
        self._report_job = None
        self.progress.setFormat(self._report_outcome)
        self.cancel_button.setEnabled(False)
        self._update_buttons()
