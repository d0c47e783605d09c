"""The Training view's settings form: the data (checked as it is chosen), where the run starts
from, the recipe of that kind of run, and the settings it fills in.

``build_config`` turns the form into the ``TrainConfig`` the ``Trainer`` runs. The defaults come
from the library's recipes (``ncl_core.training.recipes``), as the command line's do.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Job, JobContext, JobManager
from app.settings import Settings
from app.widgets import PathField
from ncl_core.data.datasets import scan_dataset
from ncl_core.models.modelfile import ModelInfo
from ncl_core.network.backbones import BACKBONES
from ncl_core.network.net_config import ModelConfig
from ncl_core.paths import runs_dir
from ncl_core.settings import DEVICES
from ncl_core.training import TrainConfig
from ncl_core.training.labeled_sets import LabeledSets, SetError
from ncl_core.training.recipes import Recipe, recipe_for


class TrainingForm(QWidget):
    """The "Data" and "Model and settings" boxes of the Training view."""

    def __init__(self, jobs: JobManager, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.jobs, self.settings = jobs, settings
        self.dataset_ok = False  # the training folder was checked and holds usable images
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_data_box())
        layout.addWidget(self._build_model_box())
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
        self.refresh_sets()

    def _build_data_box(self) -> QGroupBox:
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
        self.set_combo = QComboBox()
        self.set_combo.setToolTip(
            "A labeled set made in the Analysis view (or with ncl-forensics sets add): "
            "a fifth of it is held out to measure the model before and after"
        )
        self.set_combo.currentIndexChanged.connect(self._on_set_chosen)
        data_form.addRow("Labeled set", self.set_combo)
        data_form.addRow("Training", self.data_field)
        data_form.addRow(self.data_summary)
        data_form.addRow("Validation", self.val_field)
        data_form.addRow(self.val_summary)
        return data_box

    def _build_model_box(self) -> QGroupBox:
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
        return model_box

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
        # The signals were blocked: the recipe of what "Start from" shows now is applied here
        # (fine-tuning the active model shows the fine-tune recipe, not the from-scratch one).
        self._apply_recipe()

    def set_active_model(self, info: ModelInfo | None) -> None:
        """The model now active in the window: the default of "Start from"."""
        self._active_path = str(info.path) if info is not None else None
        self.set_models(self._models)

    def _on_base_chosen(self) -> None:
        self._base_chosen = True

    # -- the recipe ---------------------------------------------------------------------------
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

    # -- labeled sets -------------------------------------------------------------------------
    def refresh_sets(self) -> None:
        """List the labeled sets again (keeping the chosen one while it exists)."""
        chosen = self.set_combo.currentData()
        self.set_combo.blockSignals(True)
        self.set_combo.clear()
        self.set_combo.addItem("none: train on the folder below", None)
        for labeled in LabeledSets().list():
            self.set_combo.addItem(
                f"{labeled.name} ({len(labeled.items)} images: {labeled.n_tampered} "
                f"manipulated, {labeled.n_authentic} authentic)",
                labeled.name,
            )
        self.set_combo.setCurrentIndex(max(0, self.set_combo.findData(chosen)))
        self.set_combo.blockSignals(False)
        self._on_set_chosen()

    def chosen_set(self) -> str | None:
        return self.set_combo.currentData()

    def _on_set_chosen(self) -> None:
        name = self.chosen_set()
        self.data_field.setEnabled(name is None)
        if name is None:
            self._validate_data(self.data_field.text())
            return
        try:
            labeled = LabeledSets().get(name)
        except SetError as exc:
            self.dataset_ok = False
            self.data_summary.setStyleSheet("color:#e07070;")
            self.data_summary.setText(str(exc))
            return
        n = len(labeled.items)
        self.dataset_ok = n > 0
        self.data_summary.setStyleSheet("" if n >= 5 else "color:#d9a53b;")
        text = (
            f"Set {name}: {n} images ({labeled.n_tampered} manipulated, {labeled.n_authentic} "
            "authentic); a fifth is held out to measure the model before and after."
        )
        if n < 5:
            text += " Too few to hold any out: add more images to measure what it gains."
        self.data_summary.setText(text if n else f"Set {name} holds no image.")

    # -- dataset check ------------------------------------------------------------------------
    def data_problem(self) -> str | None:
        """Why the chosen training folder cannot be used, once its check says so (None while
        there is none, it is being checked, or it is usable)."""
        if self.chosen_set() is not None:
            return None if self.dataset_ok else self.data_summary.text()
        if not self.data_field.text() or self.dataset_ok or "Checking" in self.data_summary.text():
            return None
        return self.data_summary.text().split("\n")[0]

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
        if is_train and self.chosen_set() is not None:
            return  # a labeled set was chosen meanwhile
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

    # -- the run's settings -------------------------------------------------------------------
    def build_config(self) -> TrainConfig:
        """The TrainConfig of the form (ValueError when a value is not allowed)."""
        labeled_set = self.chosen_set()
        try:
            data = str(LabeledSets().path(labeled_set)) if labeled_set else self.data_field.text()
        except SetError as exc:  # removed meanwhile
            raise ValueError(str(exc)) from None
        if not data:
            raise ValueError("choose a labeled set or a labeled training folder first")
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
            labeled_set=labeled_set,
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
