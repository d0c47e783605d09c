"""The Training view: validate a labeled folder, fine-tune or train, and watch it live.

The ``Trainer`` runs in a job and speaks in events; curves are updated with ``setData`` on
existing pyqtgraph items, at most every ``PLOT_INTERVAL_MS``, so a fast run cannot flood the
GUI thread. The text of each event (the log, the status line) is ``format_event``'s, the same
the command line prints.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Job, JobContext, JobManager
from app.resume_dialog import ResumeDialog
from app.settings import Settings
from app.widgets import PathField
from ncl_core.backbones import BACKBONES
from ncl_core.config import ModelConfig
from ncl_core.data.datasets import scan_dataset
from ncl_core.modelfile import ModelInfo, ModelRegistry
from ncl_core.paths import runs_dir
from ncl_core.training import TrainConfig, Trainer, format_event
from ncl_core.training.events import MAIN_LOSSES
from ncl_core.training.recipes import Recipe, recipe_for
from ncl_core.training.run_dir import list_runs, past_events

PLOT_INTERVAL_MS = 150
SMOOTHING = 0.9  # EMA weight of the smoothed loss curves (as TensorBoard's slider)
# Known loss parts get fixed colours; any other part a model returns gets the next one.
LOSS_COLORS = {"total": (240, 240, 240), "ncl": (255, 150, 40), "pc": (80, 170, 255)}
EXTRA_COLORS = [(180, 120, 255), (120, 220, 120), (255, 110, 160), (200, 200, 90)]
DEVICES = ("auto", "cpu", "cuda", "mps")


class _Series:
    """One loss part: raw values per step and their bias-corrected EMA."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.raw: list[float] = []
        self.smooth: list[float] = []
        self._ema = 0.0
        self._n = 0

    def add(self, step: int, value: float) -> None:
        self.steps.append(step)
        self.raw.append(value)
        if math.isfinite(value):
            self._n += 1
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * value
        self.smooth.append(self._ema / (1 - SMOOTHING**self._n) if self._n else float("nan"))


class TrainingMonitor(QWidget):
    """Loss curves (raw + smoothed) per step, validation F1/AUC per epoch, lr, speed, log."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.plots = pg.GraphicsLayoutWidget()
        self.loss_plot = self.plots.addPlot(row=0, col=0, colspan=2, title="Loss per step")
        self.loss_plot.addLegend(offset=(-10, 5), colCount=5)
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_plot.setLabel("bottom", "step")
        self.val_plot = self.plots.addPlot(row=1, col=0, title="Validation per epoch")
        self.val_plot.addLegend(offset=(-10, 5), colCount=2)
        self.val_plot.showGrid(x=True, y=True, alpha=0.2)
        self.val_plot.setLabel("bottom", "epoch")
        self.val_plot.setYRange(0, 1.15)  # the band above 1 holds the legend
        self.lr_plot = self.plots.addPlot(row=1, col=1, title="Learning rate")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.2)
        self.lr_plot.setLabel("bottom", "step")
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen((200, 200, 120), width=2))
        self.val_curves = {
            "f1": self.val_plot.plot(
                pen=pg.mkPen((90, 200, 120), width=2), symbol="o", symbolSize=7, name="F1"
            ),
            "auc": self.val_plot.plot(
                pen=pg.mkPen((200, 120, 255), width=2), symbol="s", symbolSize=7, name="AUC"
            ),
        }
        self.raw_curves: dict[str, pg.PlotDataItem] = {}
        self.smooth_curves: dict[str, pg.PlotDataItem] = {}

        self.stats = QLabel("No training yet.")
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace", 9))
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plots)
        splitter.addWidget(self.log)
        splitter.setSizes([600, 160])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stats)
        layout.addWidget(splitter, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(PLOT_INTERVAL_MS)
        self._timer.timeout.connect(self.redraw)
        self.reset()

    def reset(self) -> None:
        self.series: dict[str, _Series] = {}
        self.lr_steps: list[int] = []
        self.lr_values: list[float] = []
        self.val_epochs: list[int] = []
        self.val_values: dict[str, list[float]] = {"f1": [], "auc": []}
        self.log.clear()
        self._dirty = True
        self.redraw()

    def _curves_for(self, name: str) -> None:
        if name in self.raw_curves:
            return
        color = LOSS_COLORS.get(name) or EXTRA_COLORS[len(self.raw_curves) % len(EXTRA_COLORS)]
        faded = pg.mkColor(color)
        faded.setAlpha(70)
        raw = self.loss_plot.plot(pen=pg.mkPen(faded, width=1))
        smooth = self.loss_plot.plot(pen=pg.mkPen(color, width=2), name=name)
        # Clicking a legend entry hides the smoothed curve; its raw curve follows.
        smooth.visibleChanged.connect(lambda: raw.setVisible(smooth.isVisible()))
        # The parts the status line names are shown at first; the others (per-term,
        # per-stage) start hidden: click their legend entry.
        if name not in MAIN_LOSSES:
            smooth.setVisible(False)
        self.raw_curves[name], self.smooth_curves[name] = raw, smooth

    def add_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "history":  # a resumed run: the curves so far, from its event log
            for past in event["events"]:
                self.add_event(past)
            return
        if kind == "step":
            for name, value in event.get("losses", {}).items():
                self.series.setdefault(name, _Series()).add(int(event["step"]), float(value))
            self.lr_steps.append(int(event["step"]))
            self.lr_values.append(float(event.get("lr", float("nan"))))
            self._dirty = True
        elif kind == "validation":
            metrics = event.get("metrics", {})
            self.val_epochs.append(int(event["epoch"]))
            for key in self.val_values:
                self.val_values[key].append(float(metrics.get(key, float("nan"))))
            self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self.redraw()

    @Slot()
    def redraw(self) -> None:
        """Push the collected points into the existing curves (setData, no new items)."""
        if not self._dirty:
            return
        self._dirty = False
        for name, series in self.series.items():
            self._curves_for(name)
            steps = np.asarray(series.steps, dtype=float)
            self.raw_curves[name].setData(steps, np.asarray(series.raw, dtype=float))
            self.smooth_curves[name].setData(steps, np.asarray(series.smooth, dtype=float))
        for name in self.raw_curves:
            if name not in self.series:
                self.raw_curves[name].setData([], [])
                self.smooth_curves[name].setData([], [])
        self.lr_curve.setData(np.asarray(self.lr_steps, float), np.asarray(self.lr_values, float))
        epochs = np.asarray(self.val_epochs, dtype=float)
        for key, curve in self.val_curves.items():
            curve.setData(epochs, np.asarray(self.val_values[key], dtype=float))

    def point_counts(self) -> dict[str, int]:
        """How many points each loss curve shows (tests read it)."""
        counts = {}
        for name, curve in self.smooth_curves.items():
            xs = curve.getData()[0]
            counts[name] = 0 if xs is None else len(xs)
        return counts

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(text)


class TrainingView(QWidget):
    """Dataset check, training settings, start / cancel / resume, and the live monitor."""

    message = Signal(str, str)
    model_trained = Signal(object)  # the registered ModelInfo
    activate_requested = Signal(object)  # ModelInfo to make active

    def __init__(self, jobs: JobManager, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.jobs, self.settings = jobs, settings
        self._job: Job | None = None
        self._trained: ModelInfo | None = None
        self.dataset_ok = False
        self.run_dir: Path | None = None
        self._build()

    def _build(self) -> None:
        form_widget = QWidget()
        form_layout = QVBoxLayout(form_widget)

        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        self.data_field = PathField("Labeled folder (images + masks) or IMDL-BenCo JSON")
        self.data_field.setToolTip(
            "Tp/Gt, images/masks, tampered/masks (+ Au/ or authentic/), CASIA, COVERAGE, "
            "Columbia, NIST16 names, or an IMDL-BenCo JSON list"
        )
        self.data_field.changed.connect(self._validate_data)
        self.data_summary = QLabel("Choose a labeled folder; it is checked before training.")
        self.data_summary.setWordWrap(True)
        self.data_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.val_field = PathField("Validation folder (optional; default: 10 % of the data)")
        self.val_field.changed.connect(self._validate_val)
        self.val_summary = QLabel("")
        self.val_summary.setWordWrap(True)
        data_form.addRow("Training", self.data_field)
        data_form.addRow(self.data_summary)
        data_form.addRow("Validation", self.val_field)
        data_form.addRow(self.val_summary)

        model_box = QGroupBox("Model and settings")
        model_form = QFormLayout(model_box)
        self.base_combo = QComboBox()
        self.base_combo.setToolTip(
            "Fine-tune a model from the registry, or train a preset from scratch (NCL needs "
            "no pre-trained weights)"
        )
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name of the new model (default: from the date)")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10000)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 10_000_000)
        self.steps_spin.setSpecialValueText("all epochs")
        self.steps_spin.setToolTip("Total optimizer steps; overrides epochs when set")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.time_spin = QDoubleSpinBox()
        self.time_spin.setRange(0.0, 100_000.0)
        self.time_spin.setDecimals(0)
        self.time_spin.setSuffix(" min")
        self.time_spin.setSpecialValueText("no limit")
        self.time_spin.setToolTip(
            "Stop after this many minutes: validate, keep the best model, leave a checkpoint "
            "to resume. Fine-tuning: the learning rate reaches 0 when the time is up"
        )
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(0.0, 1.0)
        self.lr_spin.setSingleStep(0.0005)
        self.lr_spin.setSpecialValueText("auto")
        self.lr_spin.setToolTip("0 = auto: 0.007 × batch / 4, ×0.1 when fine-tuning")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(64, 2048)
        self.size_spin.setSingleStep(32)
        self.size_spin.setToolTip(
            "Side of the training crops in pixels, taken at native resolution (a multiple of "
            "the patch size)"
        )
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto: CUDA if present, else MPS, else CPU")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(0, 32)
        self.workers_spin.setToolTip("Data-loading processes (0 = load in the training thread)")
        if getattr(sys, "frozen", False):
            # A packaged app would re-launch itself for every loader process: TrainConfig uses 0.
            self.workers_spin.setValue(0)
            self.workers_spin.setEnabled(False)
            self.workers_spin.setToolTip(
                "The packaged app loads data in the training thread (no loader processes)"
            )
        self.recipe_label = QLabel("")
        self.recipe_label.setWordWrap(True)
        self.recipe_label.setObjectName("recipe")
        model_form.addRow("Start from", self.base_combo)
        model_form.addRow(self.recipe_label)
        model_form.addRow("Name", self.name_edit)
        model_form.addRow("Time limit", self.time_spin)
        model_form.addRow("Epochs", self.epochs_spin)
        model_form.addRow("Steps", self.steps_spin)
        model_form.addRow("Batch size", self.batch_spin)
        model_form.addRow("Learning rate", self.lr_spin)
        model_form.addRow("Image size", self.size_spin)
        model_form.addRow("Device", self.device_combo)
        model_form.addRow("Loader workers", self.workers_spin)

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

        form_layout.addWidget(data_box)
        form_layout.addWidget(model_box)
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
        self._base_chosen = False  # the analyst picked a "Start from" entry
        self._active_path: str | None = None
        self._models: list[ModelInfo] = []
        # set_models blocks the combo's signals: any other change is a choice (the analyst's,
        # or a script's) that a later listing of the registry must keep.
        self.base_combo.currentIndexChanged.connect(self._on_base_chosen)
        self._recipe: Recipe | None = None
        self.base_combo.currentIndexChanged.connect(self._apply_recipe)
        self.set_models([])
        self._apply_recipe()

    # -- models -------------------------------------------------------------------------------
    def set_models(self, models: list[ModelInfo], active: ModelInfo | None = None) -> None:
        """Fill "Start from" with the registry's models (fine-tune) and the presets.

        Until the analyst picks an entry, it follows the active model (fine-tuning it is the
        usual case); from scratch only when there is no model at all.
        """
        current = self.base_combo.currentData() if self._base_chosen else None
        if active is not None:
            self._active_path = str(active.path)
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        for info in models:
            self.base_combo.addItem(f"Fine-tune: {info.name} ({info.backbone})", str(info.path))
        for backbone in BACKBONES:
            self.base_combo.addItem(f"From scratch: {backbone}", f"preset:{backbone}")
        index = self.base_combo.findData(current)
        if index < 0:
            index = self.base_combo.findData(self._active_path)
        self.base_combo.setCurrentIndex(max(0, index))
        self.base_combo.blockSignals(False)
        self._models = list(models)

    def set_active_model(self, info: ModelInfo | None) -> None:
        """The model now active in the window: the default of "Start from"."""
        self._active_path = str(info.path) if info is not None else None
        self.set_models(self._models)

    def _on_base_chosen(self) -> None:
        self._base_chosen = True

    def recipe(self) -> Recipe:
        """The recipe of the "Start from" choice: fine-tuning a model, or a preset from scratch."""
        base = str(self.base_combo.currentData() or "preset:")
        return recipe_for(finetune=not base.startswith("preset:"))

    def _apply_recipe(self) -> None:
        """Show the recipe's settings and put its defaults in the form when the kind of run
        (fine-tune or from scratch) changes; values the analyst typed for the same kind stay."""
        recipe = self.recipe()
        self.recipe_label.setText(f"<b>Recipe ({recipe.name}).</b> {recipe.summary}")
        if recipe == self._recipe:
            return
        self._recipe = recipe
        self.time_spin.setValue(recipe.time_limit_min or 0)
        self.epochs_spin.setValue(recipe.epochs)
        self.batch_spin.setValue(recipe.batch_size)
        self.size_spin.setValue(recipe.size)
        if self.workers_spin.isEnabled():
            self.workers_spin.setValue(recipe.workers)

    # -- dataset check ------------------------------------------------------------------------
    def _validate_data(self, text: str) -> None:
        self.dataset_ok = False
        self._check_dataset(text, self.data_summary, is_train=True)

    def _validate_val(self, text: str) -> None:
        self._check_dataset(text, self.val_summary, is_train=False)

    def _check_dataset(self, text: str, label: QLabel, is_train: bool) -> None:
        if not text:
            label.setText("")
            return
        label.setStyleSheet("")
        label.setText("Checking…")

        def scan(ctx: JobContext) -> dict[str, Any]:
            return scan_dataset(text).summary()

        job = Job("dataset check", scan)
        job.succeeded.connect(lambda summary: self._show_dataset(summary, label, is_train, text))
        job.failed.connect(lambda error: self._show_dataset_error(error, label, text))
        self.jobs.start(job)

    def _show_dataset(self, summary: dict[str, Any], label: QLabel, is_train: bool, text: str):
        if (self.data_field if is_train else self.val_field).text() != text:
            return  # the field changed meanwhile
        n_t, n_a, n_u = summary["n_tampered"], summary["n_authentic"], summary["n_unpaired"]
        lines = [f"Layout: {summary['layout']} — {n_t} tampered, {n_a} authentic"]
        if n_u:
            shown = ", ".join(Path(p).name for p in summary["unpaired"][:5])
            more = f" and {n_u - 5} more" if n_u > 5 else ""
            lines.append(f"{n_u} unpaired file(s) will be ignored: {shown}{more}")
        lines.extend(summary.get("notes", []))
        usable = n_t + n_a > 0
        label.setStyleSheet("" if usable and not n_u else "color:#d9a53b;")
        if not usable:
            lines.append("No usable image: check the layout.")
        label.setText("\n".join(lines))
        if is_train:
            self.dataset_ok = usable
            self.settings.set("dirs/dataset", text)

    def _show_dataset_error(self, error: str, label: QLabel, text: str) -> None:
        label.setStyleSheet("color:#e07070;")
        label.setText(error)
        if self.data_field.text() == text:
            self.dataset_ok = False

    # -- run ----------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    def build_config(self) -> TrainConfig:
        """The TrainConfig of the form (ValueError when a value is not allowed)."""
        data = self.data_field.text()
        if not data:
            raise ValueError("choose a labeled training folder first")
        base = str(self.base_combo.currentData() or "preset:resnet18")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = runs_dir() / stamp
        name = self.name_edit.text().strip() or f"ncl-{stamp}"
        recipe = self.recipe()
        model = ModelConfig(backbone=recipe.backbone, output_stride=recipe.output_stride)
        base_model = None
        if base.startswith("preset:"):
            model = ModelConfig(backbone=base.split(":", 1)[1], output_stride=recipe.output_stride)
        else:
            base_model = base
        minutes = self.time_spin.value() or None
        val = self.val_field.text()
        return TrainConfig(
            data=(data,),
            val=(val,) if val else (),
            out=str(run_dir / f"{name}.safetensors"),
            name=name,
            model=model,
            base_model=base_model,
            size=self.size_spin.value(),
            epochs=self.epochs_spin.value(),
            steps=self.steps_spin.value() or None,
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value() or None,
            time_limit_min=minutes,
            schedule_by_time=bool(minutes and recipe.schedule_by_time),
            device=self.device_combo.currentText(),
            workers=self.workers_spin.value(),
            run_dir=str(run_dir),
        )

    def start(self) -> Job | None:
        if self.is_busy():
            return None
        if (
            self.data_field.text()
            and not self.dataset_ok
            and "Checking" not in self.data_summary.text()
        ):
            self.message.emit(
                "The training folder is not usable: " + self.data_summary.text().split("\n")[0],
                "error",
            )
            return None
        try:
            config = self.build_config()
        except ValueError as exc:
            self.message.emit(f"Cannot start training: {exc}", "error")
            return None
        return self._run(lambda on_event: Trainer(config, on_event), f"Training {config.name}")

    def resume(self, run_dir: str | Path) -> Job | None:
        if self.is_busy():
            return None
        run_dir = Path(run_dir)
        return self._run(
            lambda on_event: Trainer.resume(run_dir, on_event), f"Resuming {run_dir}", run_dir
        )

    def resume_dialog(self) -> ResumeDialog:
        """The resumable runs of the user's runs folder, each with its model, data, progress
        and date (read by ``ncl_core.training.run_dir``; no checkpoint is loaded)."""
        root = runs_dir()
        return ResumeDialog(list_runs(root), root, self)

    def _choose_resume(self) -> None:
        dialog = self.resume_dialog()
        if dialog.exec() and dialog.selected_path() is not None:  # exec: 1 when accepted
            self.resume(dialog.selected_path())

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.monitor.append_log("cancelling after the current step…")

    def _run(self, make_trainer, title: str, resume_from: Path | None = None) -> Job:
        def train(ctx: JobContext) -> ModelInfo | None:
            if resume_from is not None:
                ctx.emit({"type": "history", "events": past_events(resume_from)})
            trainer = make_trainer(ctx.emit)
            ctx.on_cancel(trainer.cancel)
            path = trainer.fit()
            if path is None:
                return None
            ctx.emit({"type": "log", "level": "info", "message": "registering the new model…"})
            info = ModelRegistry().register_trained(path)
            ctx.emit({"type": "log", "level": "info", "message": f"registered as {info.name}"})
            return info

        self.monitor.reset()
        self.monitor.append_log(title)
        self.result_label.setText("")
        self.activate_button.setVisible(False)
        job = Job("training", train)
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_trained)
        job.failed.connect(self._on_failed)
        job.was_cancelled.connect(self._on_cancelled)
        job.ended.connect(self._on_ended)
        self._job = job
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: dict[str, Any]) -> None:
        self.monitor.add_event(event)
        kind = event.get("type")
        if kind == "start":
            self.run_dir = Path(event["run_dir"])
        text = format_event(event)
        if text is None:
            return
        if kind == "step":  # the status line above the plots, every loss part in its tooltip
            losses = event.get("losses", {})
            self.monitor.stats.setToolTip("\n".join(f"{k}: {v:.5f}" for k, v in losses.items()))
            self.monitor.stats.setText(text)
        else:
            self.monitor.append_log(text)

    @Slot(object)
    def _on_trained(self, info: ModelInfo | None) -> None:
        if info is None:
            return
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
        self.message.emit(f"Training stopped: {text}", "error")

    @Slot()
    def _on_cancelled(self) -> None:
        where = f" Resume from {self.run_dir}." if self.run_dir else ""
        self.message.emit(f"Training cancelled; a checkpoint was kept.{where}", "info")

    @Slot()
    def _on_ended(self) -> None:
        self._job = None
        self.monitor.stop()
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _activate(self) -> None:
        if self._trained is not None:
            self.activate_requested.emit(self._trained)
