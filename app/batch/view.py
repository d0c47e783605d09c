"""The Batch view: a queue of dropped files and folders, analyzed one after another in a job.

Every file gets a row: a corrupt or unreadable one an error row, a file that is not an image by
its name a "skipped" row, and the batch goes on. "Export report…" writes the forensic report
folder (``app.batch.report``); the bundled samples are never part of it. The analysis mode and
threshold are the Analysis view's (its ``app.display.OverlaySettings``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.batch.job import analyze_batch
from app.batch.report import (
    NOT_WRITTEN,
    ONLY_SAMPLES,
    BatchReport,
    ReportDialog,
    casework_roots,
    fmt_eta,
)
from app.batch.shared_regions import SharedRegionsPanel
from app.batch.table import RETRYABLE, QueueTable
from app.forensic_views import COMBINED_ABOUT, COMBINED_COST
from app.jobs import (
    DeviceUsed,
    FileResult,
    FilesFound,
    Job,
    JobContext,
    JobEvent,
    JobManager,
    Running,
)
from app.model_state import ModelState
from app.resources import is_sample
from app.session import Session
from app.settings import Settings
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.report import SKIPPED_NOT_IMAGE
from ncl_core.views import ViewResult

# Analyses kept in memory so that clicking a row shows it without running the model again.
CACHE_PIXELS = 64_000_000


def _button(text: str, tip: str, slot, enabled: bool = True) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    button.setEnabled(enabled)
    return button


class BatchView(QWidget):
    """Queue table, progress with ETA, cancel, and report export."""

    message = Signal(str, str)
    open_requested = Signal(str, object)  # path, Analysis | None

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        session: Session,
        parent: QWidget | None = None,
    ) -> None:
        """``session``: the window's session; the batch and its report use its analysis mode
        and threshold, and hold their inputs in it as evidence."""
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self.session = session
        self.roots: list[Path] = []  # what the analyst dropped, for the report's header
        self.results: OrderedDict[str, Analysis] = OrderedDict()
        self._waiting_inputs: list[Path] = []
        self._job: Job | None = None
        self.report = BatchReport(jobs, models, settings, session, self)
        self.report.progress.connect(self._on_report_progress)
        self.report.message.connect(self.message)
        self.report.ended.connect(self._on_report_ended)
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
        self.cancel_button = _button(
            "Cancel", "Stop after the current image; finished rows are kept (Esc)", self.cancel
        )
        self.retry_button = _button(
            "Retry failed",
            "Analyze the rows that failed or were cancelled again",
            self.retry_failed,
        )
        self.clear_button = _button("Clear", "Empty the queue", self.clear)
        self.export_button = _button(
            "Export report…",
            "Write the forensic report (HTML, PDF, CSV, JSONL, hashes) for the files in the queue",
            self.export_dialog,
        )
        self.open_report_button = _button(
            "Open report", "Open the last exported report in the web browser", self._open_report
        )
        self.combined_check = QCheckBox("Combined evidence")
        self.combined_check.setChecked(self.settings.get("batch/combined"))
        self.combined_check.setToolTip(
            f"Its finding in the Combined column of each image. {COMBINED_ABOUT} "
            f"{COMBINED_COST} Applies to files added from now on."
        )
        self.combined_check.toggled.connect(lambda on: self.settings.set("batch/combined", on))
        for button in (
            self.cancel_button,
            self.retry_button,
            self.export_button,
            self.open_report_button,
        ):
            button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(hint, 1)
        for button in (
            _button("Add files…", "Add image files to the queue", self._choose_files),
            _button(
                "Add folder…",
                "Add every file under a folder (recursively) (Ctrl+Shift+O)",
                self.choose_folder,
            ),
            self.cancel_button,
            self.retry_button,
            self.clear_button,
            self.export_button,
            self.open_report_button,
        ):
            top.addWidget(button)
        top.addWidget(self.combined_check)

        self.table = QueueTable()
        self.table.cellClicked.connect(self._on_row_clicked)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.summary_label = QLabel()
        self.shared = SharedRegionsPanel(self.jobs)
        self.shared.message.connect(self.message)

        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.shared)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.summary_label)
        layout.addLayout(bottom)

    # -- public -------------------------------------------------------------------------------
    @property
    def rows(self):
        """The queue's rows by path (their Name cells)."""
        return self.table.rows

    def inputs(self) -> list[Path]:
        """The files and folders queued so far, as dropped or added (evidence: nothing is
        ever written into them)."""
        return list(self.roots)

    def is_busy(self) -> bool:
        return (self._job is not None and self._job.is_running()) or self.report.is_busy()

    def add_paths(self, paths: list[str | Path]) -> None:
        """Queue files and folders (folders recursively) and start analyzing them.

        Rows that failed or were cancelled before are analyzed again.
        """
        paths = [Path(p) for p in paths]
        self.roots.extend(p for p in paths if p not in self.roots)
        self.session.hold_evidence("batch", self.roots)
        self._waiting_inputs.extend(paths)
        if not self.is_busy():
            self._start()

    def retry_failed(self) -> None:
        """Analyze again every row that failed or was cancelled."""
        paths = self.table.paths_with_status(RETRYABLE)
        if not paths:
            self.message.emit("No failed or cancelled rows to retry.", "info")
            return
        self._waiting_inputs.extend(paths)
        if not self.is_busy():
            self._start()

    def sort_by(self, column: int) -> None:
        """Sort the rows by a column (a header click); a second click reverses the order."""
        self.table.sort_by(column)

    def cancel(self) -> None:
        self._waiting_inputs.clear()
        if self._job is not None:
            self._job.cancel()
        self.report.cancel()
        self.shared.cancel()

    def clear(self) -> None:
        if self.is_busy():
            self.message.emit("Cancel the running batch before clearing the queue.", "warning")
            return
        self.table.clear_rows()
        self.shared.clear()
        self.roots.clear()
        self.session.hold_evidence("batch", [])
        self.results.clear()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.summary_label.setText("")
        self.export_button.setEnabled(False)
        self.retry_button.setEnabled(False)

    def row_status(self) -> list[tuple[str, str, str]]:
        """(name, status, note) of every row, in table order (for tests and scripts)."""
        return self.table.row_status()

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
        # The images are compared with each other again once this batch ends, new ones too.
        self.shared.cancel()
        model = (self.models.info, self.models.device)
        overlay, load = self.session.overlay, self.models.predictor
        combined = self.combined_check.isChecked()
        # Rows that failed or were cancelled are analyzed again when their files come again.
        known = {
            k for k, item in self.rows.items() if self.table.status(item.row()) not in RETRYABLE
        }

        def analyze(ctx: JobContext) -> None:
            analyze_batch(
                ctx, inputs, known, model, overlay.mode, overlay.threshold, load, combined
            )

        job = Job("batch", analyze)
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
    def _on_event(self, event: JobEvent) -> None:
        table = self.table
        if isinstance(event, FilesFound):
            for problem in event.problems:
                row = table.add_row(problem.path)
                table.set_row(row, "error", note=f"{problem.path}: {problem.message}")
            for path in event.skipped:
                table.set_row(table.add_row(path), "skipped", note=SKIPPED_NOT_IMAGE)
            for path in event.files:
                table.set_row(table.add_row(path), "queued")
            self._total = len(event.files)
            self._update_progress()
            if not (event.files or event.skipped or event.problems):
                names = ", ".join(str(p) for p in event.inputs)
                if event.n_found:
                    self.message.emit(f"Already in the queue: {names}.", "info")
                else:
                    self.message.emit(
                        f"Nothing to analyze in {names}: no files found there.", "warning"
                    )
        elif isinstance(event, DeviceUsed):
            self.models.set_loaded_device(event.device)
        elif isinstance(event, Running):
            row = table.row_of(event.path)
            if row is not None:
                table.set_row(row, "analyzing…")
        elif isinstance(event, FileResult):
            self._show_result(event.path, event.result, event.thumb, event.combined)

    def _show_result(
        self,
        path: Path,
        result: Analysis | AnalysisError | None,
        thumb,
        combined: ViewResult | None = None,
    ) -> None:
        table = self.table
        row = table.row_of(path)
        self._done += 1
        if result is None:
            table.set_row(row, "error", note=f"no model: {self.models.error or 'none loaded'}")
        elif isinstance(result, AnalysisError):
            table.set_row(row, "error", note=result.message)
        else:
            self._remember(str(path), result)
            note = " | ".join(result.warnings)
            if is_sample(path):
                note = " | ".join(filter(None, ["bundled sample: never in a report", note]))
            table.set_row(row, "ok", result.score, 100.0 * result.area_fraction, note)
            table.set_model(row, result.model_id, result.model_sha256)
            table.set_combined(row, combined)
            if thumb is not None:
                table.set_thumbnail(row, thumb)
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
            self.progress.setFormat(f"%v / %m · ETA {fmt_eta(eta)}")
        else:
            self.progress.setFormat(f"%v / %m · {fmt_eta(elapsed)}")
        statuses = self.table.statuses()
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
        self.table.cancel_unfinished()
        self._update_progress()
        if cancelled:
            self.message.emit(f"Batch cancelled; {self._done} finished rows kept.", "info")
        if self._waiting_inputs:
            self._start()
            return
        self.cancel_button.setEnabled(False)
        self._update_buttons()
        if not cancelled:  # the analyzed files compared with each other, in a job of its own
            self.shared.find(self.table.paths_with_status(("ok",)))

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(bool(self.rows))
        self.retry_button.setEnabled(bool(self.table.paths_with_status(RETRYABLE)))

    def _on_row_clicked(self, row: int, _col: int) -> None:
        key, status = self.table.key(row), self.table.status(row)
        if key and Path(key).is_file() and status in ("ok", "cancelled", "error"):
            self.open_requested.emit(key, self.results.get(key))

    # -- report -------------------------------------------------------------------------------
    @property
    def last_report(self) -> Path | None:
        """The folder of the last report written."""
        return self.report.last_report

    def casework_roots(self) -> tuple[list[Path], list[Path]]:
        """The inputs a report covers, and the bundled samples left out of it."""
        return casework_roots(self.roots)

    def make_report_dialog(self) -> ReportDialog:
        return self.report.make_dialog(self.roots, self)

    def export_dialog(self) -> None:
        if not self.rows:
            self.message.emit("The queue is empty: drop files or folders first.", "warning")
            return
        if not self.casework_roots()[0]:
            self.message.emit(ONLY_SAMPLES, "warning")
            return
        chosen = self.report.ask(self.roots, self)
        if chosen is not None and self.export(*chosen) is not None:
            self.settings.set("dirs/report", str(chosen[0].parent))

    def export(
        self,
        out_dir: Path,
        analyst: str | None = None,
        case_id: str | None = None,
        views: tuple[str, ...] = (),
    ) -> Job | None:
        """Write the report for everything dropped so far (in a job); the rows' analyses kept
        in memory are reused, not run again. ``views``: forensic views on each image's page."""
        if self.is_busy():
            self.message.emit("Wait for the batch to finish (or cancel it) first.", "warning")
            return None
        finished = list(self.results.items())
        job = self.report.start(self.roots, out_dir, analyst, case_id, finished, views)
        if job is not None:
            self.cancel_button.setEnabled(True)
            self.export_button.setEnabled(False)
        return job

    @Slot(int, int, str)
    def _on_report_progress(self, done: int, total: int, text: str) -> None:
        if total >= 0:
            self.progress.setRange(0, total)
        if done >= 0:
            self.progress.setValue(done)
        self.progress.setFormat(text)

    def _open_report(self) -> None:
        if self.last_report is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_report / "index.html")))

    @Slot(str)
    def _on_report_ended(self, outcome: str) -> None:
        if outcome == NOT_WRITTEN:
            # Refused or failed: an empty bar, not the batch's full one (which read as done).
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.progress.setFormat(outcome)
        if self.last_report is not None:
            self.open_report_button.setEnabled((self.last_report / "index.html").is_file())
        self.cancel_button.setEnabled(False)
        self._update_buttons()
