"""The Training view: validate a labeled folder, fine-tune or train, and watch it live.

The settings are ``TrainingForm``'s (``app.training.form``), the curves and the log
``TrainingMonitor``'s (``app.training.monitor``). The ``Trainer`` runs in a job and speaks in
events; the text of each event (the log, the status line) is ``format_event``'s, the same the
command line prints. The model a run writes is registered through the window's ``ModelState``,
which lists the registry again for every view.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.jobs import History, Job, JobContext, JobEvent, JobManager
from app.model_state import ModelState
from app.resume_dialog import ResumeDialog
from app.settings import Settings
from app.training.form import TrainingForm
from app.training.monitor import TrainingMonitor
from ncl_core.models.modelfile import ModelInfo
from ncl_core.paths import runs_dir
from ncl_core.training import Trainer, format_event
from ncl_core.training.run_dir import list_runs, past_events


class TrainingView(QWidget):
    """Dataset check, training settings, start / cancel / resume, and the live monitor."""

    message = Signal(str, str)
    model_trained = Signal(object)  # the registered ModelInfo
    activate_requested = Signal(object)  # ModelInfo to make active

    def __init__(
        self,
        jobs: JobManager,
        settings: Settings,
        models: ModelState,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.jobs, self.settings, self.models = jobs, settings, models
        self._job: Job | None = None
        self._registering: Job | None = None  # the trained model being added to the registry
        self._trained: ModelInfo | None = None
        self.run_dir: Path | None = None
        self._build()
        models.list_changed.connect(self.form.set_models)
        models.changed.connect(lambda: self.form.set_active_model(models.info))

    def _build(self) -> None:
        self.form = TrainingForm(self.jobs, self.settings)
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Validate the settings and start (runs in the background)")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; a resumable checkpoint is kept")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.resume_button = QPushButton("Resume…")
        self.resume_button.setToolTip("Continue a cancelled or interrupted run from its checkpoint")
        self.resume_button.clicked.connect(self._choose_resume)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.activate_button = QPushButton("Make this model active")
        self.activate_button.setToolTip("Use the new model for analyses and batches")
        self.activate_button.setVisible(False)
        self.activate_button.clicked.connect(self._activate)

        form_widget = QWidget()
        form_layout = QVBoxLayout(form_widget)
        form_layout.addWidget(self.form)
        form_layout.addLayout(buttons)
        form_layout.addWidget(self.result_label)
        form_layout.addWidget(self.activate_button)
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(form_widget)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(420)

        self.monitor = TrainingMonitor()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self.monitor)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 900])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """The labeled sets may have grown in the Analysis view: listed again when shown."""
        self.form.refresh_sets()
        super().showEvent(event)

    # -- run ----------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        """A run, or the registration of the model it wrote, is under way."""
        return any(job is not None and job.is_running() for job in (self._job, self._registering))

    def start(self) -> Job | None:
        if self.is_busy():
            return None
        problem = self.form.data_problem()
        if problem is not None:
            self.message.emit(f"The training folder is not usable: {problem}", "error")
            return None
        try:
            config = self.form.build_config()
        except ValueError as exc:
            self.message.emit(f"Cannot start training: {exc}", "error")
            return None
        return self._run(lambda on_event: Trainer(config, on_event), f"Training {config.name}")

    def resume(self, run_dir: str | Path, more_minutes: float | None = None) -> Job | None:
        """Continue a run from its checkpoint; ``more_minutes`` gives it more time (needed
        when it stopped at its time limit)."""
        if self.is_busy():
            return None
        run_dir = Path(run_dir)
        title = f"Resuming {run_dir}" + (
            f" with {more_minutes:g} more minutes" if more_minutes else ""
        )
        return self._run(
            lambda on_event: Trainer.resume(run_dir, on_event, more_minutes=more_minutes),
            title,
            run_dir,
        )

    def resume_dialog(self) -> ResumeDialog:
        """The resumable runs of the user's runs folder, each with its model, data, progress
        and date (read by ``ncl_core.training.run_dir``; no checkpoint is loaded)."""
        root = runs_dir()
        return ResumeDialog(list_runs(root), root, self)

    def _choose_resume(self) -> None:
        dialog = self.resume_dialog()
        if dialog.exec() and dialog.selected_path() is not None:  # exec: 1 when accepted
            self.resume(dialog.selected_path(), dialog.more_minutes())

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.monitor.append_log("cancelling after the current step…")

    def _run(self, make_trainer, title: str, resume_from: Path | None = None) -> Job:
        def train(ctx: JobContext) -> Path | None:
            if resume_from is not None:
                ctx.emit(History(past_events(resume_from)))
            trainer = make_trainer(ctx.emit)
            ctx.on_cancel(trainer.cancel)
            return trainer.fit()  # the model file written; None when cancelled

        self.monitor.starting(title)
        self.result_label.setText("")
        self.activate_button.setVisible(False)
        job = Job("training", train)
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_trained)
        job.failed.connect(self._on_failed)
        job.was_cancelled.connect(self._on_cancelled)
        job.ended.connect(self._on_ended)
        self._job = job
        self._set_running(True)
        return self.jobs.start(job)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    @Slot(object)
    def _on_event(self, event: JobEvent) -> None:
        """A trainer's event (``ncl_core.train``), or the events so far of a resumed run."""
        if isinstance(event, History):
            for past in event.events:
                self.monitor.add_event(past)
            return
        if not isinstance(event, dict):
            return
        self.monitor.add_event(event)
        kind = event.get("type")
        if kind == "start":
            self.run_dir = Path(event["run_dir"])
            self.monitor.started(event)
        text = format_event(event)
        if text is None:
            return
        if kind == "step":
            self.monitor.show_status(text, event.get("losses", {}))
        else:
            self.monitor.append_log(text)
        if kind in ("finished", "cancelled", "failed"):
            self.monitor.show_status(text[:1].upper() + text[1:], {})  # no ETA any more

    @Slot(object)
    def _on_trained(self, path: Path | None) -> None:
        """Register the model file the run wrote (``ModelState`` lists the registry again)."""
        if path is None:
            return
        self.monitor.append_log("registering the new model…")
        job = self.models.register_trained(Path(path), self._on_registered, self._on_failed)
        if job.is_running():
            self._registering = job
            self.cancel_button.setEnabled(False)  # the run is over; registering is quick
            job.ended.connect(self._on_registering_ended)

    def _on_registered(self, info: ModelInfo) -> None:
        self.monitor.append_log(f"registered as {info.name}")
        self._trained = info
        metrics = ", ".join(
            f"{k} {v:.3f}"
            for k, v in info.metrics.items()
            if k in ("f1", "auc") and isinstance(v, float)
        )
        self.result_label.setText(
            f"New model registered: {info.name} ({info.id}){' — ' + metrics if metrics else ''}"
        )
        self.activate_button.setVisible(True)
        self.model_trained.emit(info)
        self.message.emit(f"Training finished; model {info.name} registered.", "info")

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.monitor.append_log(f"error: {text}")
        self.monitor.show_status(f"Stopped: {text}", {})
        self.message.emit(f"Training stopped: {text}", "error")

    @Slot()
    def _on_cancelled(self) -> None:
        where = f" Resume from {self.run_dir}." if self.run_dir else ""
        self.message.emit(f"Training cancelled; a checkpoint was kept.{where}", "info")

    @Slot()
    def _on_ended(self) -> None:
        self._job = None
        self.monitor.stop()
        if not self.is_busy():
            self._set_running(False)

    @Slot()
    def _on_registering_ended(self) -> None:
        self._registering = None
        if not self.is_busy():
            self._set_running(False)

    def _activate(self) -> None:
        if self._trained is not None:
            self.activate_requested.emit(self._trained)
