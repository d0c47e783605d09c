"""The Batch view's report: the export dialog and the job that writes the report folder.

The report is ``ncl_core.report.run_batch`` over the queue's inputs (the bundled samples are
never part of it), with the Analysis view's mode and threshold. The rows the batch analyzed
already are handed in (``finished``): the model does not run again for a file whose bytes,
model and mode are those of its analysis; the others are analyzed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from app.forensic_views import COMBINED_ABOUT, COMBINED_COST
from app.jobs import Job, JobContext, JobEvent, JobManager
from app.model_state import ModelState
from app.resources import is_sample
from app.session import Session
from app.settings import Settings
from app.widgets import PathField
from ncl_core.analysis import Analysis
from ncl_core.inference.outputs import default_output_folder
from ncl_core.report import ReportOptions, run_batch
from ncl_core.settings import DEFAULT_MODE, DEFAULT_THRESHOLD

ONLY_SAMPLES = (
    "The queue holds only the bundled samples, and samples are never exported into a report: "
    "add the evidence to report on first."
)
NOT_WRITTEN = "report: not written"  # the progress bar's text when a report was refused


def fmt_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def casework_roots(roots: list[Path]) -> tuple[list[Path], list[Path]]:
    """The inputs a report covers, and the bundled samples left out of it."""
    return [r for r in roots if not is_sample(r)], [r for r in roots if is_sample(r)]


class ReportDialog(QDialog):
    """Asks where to write the report, and for the analyst and case fields; shows the mode
    and threshold the report will use (those of the Analysis view)."""

    def __init__(
        self,
        start_dir: str,
        parent: QWidget | None = None,
        analyst: str = "",
        case_id: str = "",
        mode: str = DEFAULT_MODE,
        threshold: float = DEFAULT_THRESHOLD,
        left_out: int = 0,
        combined: bool = True,
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
        self.combined_check = QCheckBox("Combined evidence for each image (its finding and map)")
        self.combined_check.setChecked(combined)
        self.combined_check.setToolTip(f"{COMBINED_ABOUT} {COMBINED_COST}")
        form.addRow(self.combined_check)
        if left_out:
            samples = QLabel(
                f"{left_out} bundled sample image(s) in the queue are left out of the report."
            )
            samples.setWordWrap(True)
            form.addRow(samples)
        note = QLabel(
            "The report reuses the batch's analyses made with the same model and mode (other "
            "files are analyzed), hashes each input at the start and the end, and writes HTML, "
            "PDF, CSV, JSONL, MANIFEST.json and SHA256SUMS into the folder (check it later with "
            "ncl-forensics verify FOLDER; sign it with ncl-forensics sign)."
        )
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        # Tall enough for the wrapped lines at this width: a fixed height clipped them.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        width = 560
        self.setMinimumSize(width, form.totalHeightForWidth(width))
        self.resize(width, form.totalHeightForWidth(width))


class BatchReport(QObject):
    """Asks for the report's folder and fields, and writes one report at a time in a job."""

    progress = Signal(int, int, str)  # done, total (-1: unchanged), progress bar format
    ended = Signal(str)  # how it ended, for the progress bar
    message = Signal(str, str)  # text, level

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        session: Session,
        parent: QObject | None = None,
    ) -> None:
        """``session``: the window's session (the report's mode and threshold)."""
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self.session = session
        self.last_report: Path | None = None  # the folder of the last report written
        self._job: Job | None = None
        self._outcome = ""
        self._t0 = 0.0

    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def make_dialog(self, roots: list[Path], parent: QWidget | None = None) -> ReportDialog:
        """The export dialog for a queue of ``roots``, filled as last time."""
        casework, samples = casework_roots(roots)
        start = default_output_folder(
            self.settings.get("dirs/report"), casework, platformdirs.user_documents_dir()
        )
        overlay = self.session.overlay
        return ReportDialog(
            str(start / f"ncl-report-{time.strftime('%Y%m%d-%H%M%S')}"),
            parent,
            analyst=self.settings.get("report/analyst"),
            case_id=self.settings.get("report/case_id"),
            mode=overlay.mode,
            threshold=overlay.threshold,
            left_out=len(samples),
            combined=self.settings.get("report/combined"),
        )

    def ask(
        self, roots: list[Path], parent: QWidget | None = None
    ) -> tuple[Path, str | None, str | None, tuple[str, ...]] | None:
        """The report folder, analyst, case ID and forensic views the analyst chose (remembered
        for the next time); None when the dialog was cancelled."""
        dialog = self.make_dialog(roots, parent)
        if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.folder.text():
            return None
        analyst, case_id = dialog.analyst.text().strip(), dialog.case_id.text().strip()
        combined = dialog.combined_check.isChecked()
        self.settings.set("report/analyst", analyst)
        self.settings.set("report/case_id", case_id)
        self.settings.set("report/combined", combined)
        views = ("combined",) if combined else ()
        return Path(dialog.folder.text()), analyst or None, case_id or None, views

    def start(
        self,
        roots: list[Path],
        out_dir: Path,
        analyst: str | None,
        case_id: str | None,
        finished: Iterable[tuple[str | Path, Analysis]] = (),
        views: tuple[str, ...] = (),
    ) -> Job | None:
        """Write the report of the queue's ``roots`` (not its samples) into ``out_dir``;
        None, with a message, when there is no model or nothing but samples.

        ``finished``: ``(path, analysis)`` of rows analyzed already; the report reuses those of
        the active model in the report's mode (at the report's threshold) instead of running the
        model again. ``views``: forensic views on each image's page (``ncl_core.views``).
        """
        try:
            info = self.models.require()
        except Exception as exc:  # noqa: BLE001 - ModelFileError; the message says why
            self.message.emit(str(exc), "error")
            return None
        roots, samples = casework_roots(roots)
        if not roots:
            self.message.emit(ONLY_SAMPLES, "warning")
            return None
        if samples:
            self.message.emit(
                f"{len(samples)} bundled sample(s) left out of the report: samples are never "
                "exported with casework.",
                "info",
            )
        overlay = self.session.overlay
        # The report lists the regions shared between images, as the Batch view does.
        options = ReportOptions(
            mode=overlay.mode,
            threshold=overlay.threshold,
            analyst=analyst,
            case_id=case_id,
            case_match=True,
            views=views,
        )
        device, load = self.models.device, self.models.predictor
        reusable = [(p, a) for p, a in finished if a.model_sha256 == info.sha256]

        def report(ctx: JobContext):
            predictor = load(info, device)
            return run_batch(
                roots,
                predictor,
                out_dir,
                options,
                on_event=ctx.emit,
                cancel=ctx.cancelled,
                finished=reusable,
            )

        job = Job("report", report)
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.ended.connect(self._on_ended)
        self._job = job
        self._outcome = "report: cancelled"
        self._t0 = time.monotonic()
        return self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: JobEvent) -> None:
        """The report's progress (``ncl_core.report``'s events)."""
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "start":
            self.progress.emit(event["done"], max(1, event["total"]), "report: %v / %m")
        elif kind == "row":
            elapsed = time.monotonic() - self._t0
            left = event["total"] - event["index"]
            eta = elapsed / max(1, event["index"]) * left
            self.progress.emit(event["index"], -1, f"report: %v / %m · ETA {fmt_eta(eta)}")
        elif kind == "phase":
            self.progress.emit(-1, -1, f"report: {event['phase']}…")

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._outcome = NOT_WRITTEN
        self.message.emit(f"Report not written: {text}", "error")

    @Slot(object)
    def _on_done(self, summary) -> None:
        state = "complete" if summary.complete else "incomplete (cancelled)"
        self._outcome = f"report: {state}"
        skipped = f"{summary.n_skipped} skipped (not images), " if summary.n_skipped else ""
        self.message.emit(
            f"Report {state}: {summary.n_ok} ok, {summary.n_errors} errors, {skipped}"
            f"{summary.n_hash_mismatches} hash mismatches — {summary.out_dir}",
            "warning" if summary.n_hash_mismatches or not summary.complete else "success",
        )
        self.last_report = Path(summary.out_dir)

    @Slot()
    def _on_ended(self) -> None:
        self._job = None
        self.ended.emit(self._outcome)
