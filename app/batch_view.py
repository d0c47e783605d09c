"""The Batch view: a queue of dropped files and folders, analysed one after another in a job.

Every file gets a row: a corrupt or unreadable one an error row, and the batch goes on.
"Export report…" writes the forensic report folder with ``ncl_core.report.run_batch``.
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
from app.settings import Settings
from app.widgets import PathField
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.data.io import ImageReadError, read_image
from ncl_core.render import fit_within, overlay_rgb
from ncl_core.report import ReportOptions, run_batch
from ncl_core.scan import scan_inputs

THUMB_PX = 72
COLUMNS = ("", "Name", "Status", "Score", "Area %", "Error / warnings")
COL_THUMB, COL_NAME, COL_STATUS, COL_SCORE, COL_AREA, COL_NOTE = range(len(COLUMNS))
# Analyses kept in memory so that clicking a row shows it without running the model again.
CACHE_PIXELS = 64_000_000

STATUS_COLORS = {
    "ok": QColor(90, 190, 110),
    "error": QColor(230, 90, 90),
    "cancelled": QColor(160, 160, 160),
    "queued": QColor(160, 160, 160),
}


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
    """Asks where to write the report, and for the analyst and case fields."""

    def __init__(self, start_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export batch report")
        form = QFormLayout(self)
        self.folder = PathField("New or empty folder for the report")
        self.folder.set_text(start_dir)
        self.analyst = QLineEdit()
        self.case_id = QLineEdit()
        form.addRow("Report folder", self.folder)
        form.addRow("Analyst", self.analyst)
        form.addRow("Case ID", self.case_id)
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
        self.rows: dict[str, int] = {}  # path -> table row
        self.roots: list[Path] = []  # what the analyst dropped, for the report's header
        self.results: OrderedDict[str, Analysis] = OrderedDict()
        self._waiting_inputs: list[Path] = []
        self._job: Job | None = None
        self._report_job: Job | None = None
        self.last_report: Path | None = None
        self._t0 = 0.0
        self._done = 0
        self._total = 0
        self._build()

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
        for button in (add_files, add_folder, self.cancel_button, self.clear_button):
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
        header.setStretchLastSection(True)
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
        """Queue files and folders (folders recursively) and start analysing them."""
        paths = [Path(p) for p in paths]
        self.roots.extend(p for p in paths if p not in self.roots)
        self._waiting_inputs.extend(paths)
        if not self.is_busy():
            self._start()

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

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the batch")
        if folder:
            self.add_paths([folder])

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add files to the batch")
        if files:
            self.add_paths(files)

    # -- the batch job ------------------------------------------------------------------------
    def _start(self) -> None:
        inputs, self._waiting_inputs = list(self._waiting_inputs), []
        if not inputs:
            return
        info, device = self.models.info, self.models.device
        mode, threshold = self._mode(), self._threshold()
        slot = self.slot
        known = set(self.rows)

        def analyse(ctx: JobContext) -> None:
            scan = scan_inputs(inputs)
            files = [p for p in scan.files if str(p) not in known]
            ctx.emit({"type": "files", "files": files, "problems": scan.problems})
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
        self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "files":
            for problem in event["problems"]:
                row = self._add_row(problem.path)
                self._set_row(row, "error", note=f"{problem.path}: {problem.message}")
            for path in event["files"]:
                self._set_row(self._add_row(path), "queued")
            self._total = len(event["files"])
            self._update_progress()
        elif kind == "device":
            self.models.set_loaded_device(event["device"])
        elif kind == "running":
            row = self.rows.get(str(event["path"]))
            if row is not None:
                self._set_row(row, "analysing…")
        elif kind == "result":
            self._show_result(event["path"], event["result"], event.get("thumb"))

    def _show_result(self, path: Path, result: Analysis | AnalysisError | None, thumb) -> None:
        row = self.rows[str(path)]
        self._done += 1
        if result is None:
            self._set_row(row, "error", note=f"no model: {self.models.error or 'none loaded'}")
        elif isinstance(result, AnalysisError):
            self._set_row(row, "error", note=result.message)
        else:
            self._remember(str(path), result)
            note = " | ".join(result.warnings)
            self._set_row(row, "ok", result.score, 100.0 * result.area_fraction, note)
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
        self.summary_label.setText(
            f"{statuses.count('ok')} ok · {statuses.count('error')} error(s) · "
            f"{len(statuses)} in the queue"
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
        self.export_button.setEnabled(bool(self.rows))

    # -- table --------------------------------------------------------------------------------
    def _add_row(self, path: Path) -> int:
        key = str(path)
        if key in self.rows:
            return self.rows[key]
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col in range(len(COLUMNS)):
            self.table.setItem(row, col, QTableWidgetItem())
        name = self.table.item(row, COL_NAME)
        name.setText(path.name)
        name.setToolTip(key)
        name.setData(Qt.ItemDataRole.UserRole, key)
        self.rows[key] = row
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
        self.table.item(row, COL_SCORE).setText("" if score is None else f"{score:.3f}")
        self.table.item(row, COL_AREA).setText("" if area is None else f"{area:.2f}")
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
    def export_dialog(self) -> None:
        if not self.rows:
            self.message.emit("The queue is empty: drop files or folders first.", "warning")
            return
        start = self.settings.get("dirs/report") or platformdirs.user_documents_dir()
        dialog = ReportDialog(
            str(Path(start) / f"ncl-report-{time.strftime('%Y%m%d-%H%M%S')}"), self
        )
        if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.folder.text():
            return
        out_dir = Path(dialog.folder.text())
        self.settings.set("dirs/report", str(out_dir.parent))
        self.export(
            out_dir, dialog.analyst.text().strip() or None, dialog.case_id.text().strip() or None
        )

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
        device, slot, roots = self.models.device, self.slot, list(self.roots)
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
        job.failed.connect(lambda text: self.message.emit(f"Report not written: {text}", "error"))
        job.ended.connect(self._on_report_ended)
        self._report_job = job
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

    @Slot(object)
    def _on_report_done(self, summary) -> None:
        state = "complete" if summary.complete else "incomplete (cancelled)"
        self.message.emit(
            f"Report {state}: {summary.n_ok} ok, {summary.n_errors} errors, "
            f"{summary.n_hash_mismatches} hash mismatches — {summary.out_dir}",
            "warning" if summary.n_hash_mismatches or not summary.complete else "info",
        )
        self.last_report = Path(summary.out_dir)
        self.open_report_button.setEnabled((self.last_report / "index.html").is_file())

    def _open_report(self) -> None:
        if self.last_report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_report / "index.html")))

    @Slot()
    def _on_report_ended(self) -> None:
        self._report_job = None
        self.progress.setFormat("report: done")
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(bool(self.rows))
