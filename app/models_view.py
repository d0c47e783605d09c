"""The Models view: the registry's models, their provenance and metrics; activate, import,
export and remove. The window's ``ModelState`` holds the list and runs the registry's calls
(they hash model files, so they run in jobs)."""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Job, JobManager
from app.model_state import ModelState
from app.session import Session
from ncl_core.errors import EvidenceFolderError
from ncl_core.inference.outputs import default_output_folder, refuse_inside_evidence
from ncl_core.models.modelfile import ModelInfo, measured_figures
from ncl_core.training.events import comparison_rows

COLUMNS = (
    "",
    "Name",
    "Backbone",
    "Trained on",
    "F1 / floor",
    "AUC",
    "Gain (same images)",
    "Measured on",
    "Created",
    "SHA-256",
)


def trained_on_text(info: ModelInfo) -> str:
    """One line saying what a model was trained on."""
    if info.bundled and not info.trained_on:
        return "bundled starter model"
    made_of = info.trained_on.get("average_of")
    if isinstance(made_of, list):
        return f"average of {len(made_of)} models"
    parts = [str(Path(d.get("root", "?")).name) for d in info.trained_on.get("datasets", [])]
    if info.trained_on.get("synthetic"):
        parts.append("synthetic forgeries")
    n = info.trained_on.get("n_train")
    text = ", ".join(parts) or "–"
    return f"{text} ({n} items)" if n else text


def _metric(info: ModelInfo, key: str) -> str:
    value = measured_figures(info).get(key)
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def f1_text(info: ModelInfo) -> str:
    """F1 at 0.5 beside the all-manipulated floor of the same images: alone it says little."""
    if not isinstance(measured_figures(info).get("floor_f1"), (int, float)):
        return _metric(info, "f1")
    return f"{_metric(info, 'f1')} / {_metric(info, 'floor_f1')}"


def measured_on_text(info: ModelInfo) -> str:
    """How many images the figures come from: figures of different models are comparable only
    when measured on the same images."""
    n = measured_figures(info).get("n_images")
    if not isinstance(n, (int, float)):
        return "–"
    if not info.metrics:
        return f"{int(n)} manipulated image(s) of its calibration"
    sets = [str(s) for s in info.trained_on.get("validation") or []]
    if not sets:
        return f"{int(n)} image(s)"
    # A validation folder is named by its last part; a held-out part is described in words.
    first = sets[0] if " " in sets[0] else f"of {Path(sets[0]).name}"
    more = f" +{len(sets) - 1}" if len(sets) > 1 else ""
    return f"{int(n)} image(s) {first}{more}"


def gain_text(info: ModelInfo) -> str:
    """A fine-tune's F1 at 0.5 before and after, both on its own validation images (the base
    model was measured on them before the first step); "–" for a model trained from scratch."""
    before = (info.trained_on.get("baseline") or {}).get("f1")
    after = info.metrics.get("f1")
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return "–"
    return f"F1 {before:.3f} → {after:.3f}"


def comparable(a: ModelInfo, b: ModelInfo) -> bool | None:
    """Whether the figures of two models come from the same validation images: True, False,
    or None when a model file does not say which images (older files)."""
    id_a, id_b = a.trained_on.get("validation_id"), b.trained_on.get("validation_id")
    if not id_a or not id_b:
        return None
    return id_a == id_b


class ModelsView(QWidget):
    """Registry table with details of the selected model."""

    message = Signal(str, str)
    activated = Signal(object)  # ModelInfo, now the active model
    removed = Signal()  # a model was deleted: the active one may have gone

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        session: Session,
        parent: QWidget | None = None,
    ):
        """``session``: the window's session, whose evidence an export never goes into."""
        super().__init__(parent)
        self.jobs, self.models = jobs, models
        self.evidence = session.evidence_roots
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_details)
        self.table.cellDoubleClicked.connect(lambda *_: self.activate_selected())
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFont("monospace", 9))
        self.details.setPlaceholderText("Select a model to see its provenance and metrics.")

        buttons = QHBoxLayout()
        for text, tip, slot in (
            ("Activate", "Use the selected model for analyses and batches", self.activate_selected),
            ("Import…", "Add a .safetensors model file (validated first)", self._import_dialog),
            ("Export…", "Copy the selected model file elsewhere", self._export_dialog),
            ("Remove", "Delete the selected model from the registry", self._remove_selected),
            ("Refresh", "Read the registry folder again", self.refresh),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.active_label = QLabel()
        buttons.addWidget(self.active_label)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setSizes([400, 220])
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        self.models.changed.connect(self._fill)
        self.models.list_changed.connect(self._fill)

    # -- the registry (through the window's ModelState) ---------------------------------------
    @property
    def infos(self) -> list[ModelInfo]:
        """The registry's models, in table order."""
        return self.models.models

    def _error(self, text: str) -> None:
        self.message.emit(text, "error")

    def refresh(self) -> Job:
        return self.models.refresh(failed=self._error)

    def activate(self, info: ModelInfo) -> Job:
        return self.models.activate(info, self.activated.emit, self._error)

    def activate_selected(self) -> None:
        info = self._selected()
        if info is not None:
            self.activate(info)

    def import_model(self, path: str | Path) -> Job:
        return self.models.import_model(
            path,
            lambda info: self.message.emit(f"Imported {info.name} ({info.id}).", "success"),
            self._error,
        )

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model", "", "NCL model (*.safetensors)"
        )
        if path:
            self.import_model(path)

    def _export_dialog(self) -> None:
        info = self._selected()
        if info is None:
            return
        folder = default_output_folder(None, self.evidence(), platformdirs.user_documents_dir())
        dest, _ = QFileDialog.getSaveFileName(
            self, "Export model", str(folder / info.path.name), "NCL model (*.safetensors)"
        )
        if dest:
            self.export_model(info, dest)

    def export_model(self, info: ModelInfo, dest: str | Path) -> Job | None:
        """Copy a model file out of the registry (never into an evidence folder)."""
        dest = Path(dest)
        try:
            refuse_inside_evidence(dest if dest.is_dir() else dest.parent, self.evidence())
        except EvidenceFolderError as exc:
            self.message.emit(f"Not exported: {exc}", "error")
            return None
        return self.models.export_model(
            info,
            dest,
            lambda path: self.message.emit(f"Exported to {path}.", "success"),
            self._error,
        )

    def _remove_selected(self) -> None:
        info = self._selected()
        if info is None:
            return
        if info.bundled:
            self.message.emit("The bundled starter model cannot be removed.", "warning")
            return
        answer = QMessageBox.question(
            self, "Remove model", f"Delete {info.name} ({info.path.name}) from the registry?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove(info)

    def remove(self, info: ModelInfo) -> Job:
        """Delete a model from the registry (the Remove button asks first)."""
        return self.models.remove(info, lambda _: self.removed.emit(), self._error)

    # -- table --------------------------------------------------------------------------------
    def _selected(self) -> ModelInfo | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.infos):
            self.message.emit("Select a model first.", "warning")
            return None
        return self.infos[rows[0].row()]

    @Slot()
    def _fill(self) -> None:
        active = self.models.info.sha256 if self.models.info else None
        selected = self.table.currentRow()
        self.table.setRowCount(len(self.infos))
        for row, info in enumerate(self.infos):
            values = (
                "★" if info.sha256 == active else "",
                info.name + (" (bundled)" if info.bundled else ""),
                f"{info.backbone} / OS {info.config.output_stride}",
                trained_on_text(info),
                f1_text(info),
                _metric(info, "auc"),
                gain_text(info),
                measured_on_text(info),
                info.created[:19].replace("T", " "),
                info.sha256,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                if col == 0:
                    item.setToolTip("active model")
                if col == 6:
                    item.setToolTip(
                        "a fine-tune's F1 before and after, both measured on its own "
                        "validation images"
                    )
                if col in (4, 5, 7):
                    item.setToolTip(
                        "validation figures at the model's best step; compare models only on "
                        "the same images (ncl-forensics eval)"
                    )
                if col == len(values) - 1:
                    item.setToolTip(info.sha256)
                self.table.setItem(row, col, item)
        if 0 <= selected < len(self.infos):
            self.table.selectRow(selected)
        if self.models.info is not None:
            self.active_label.setText(f"Active: {self.models.info.name}")
        else:
            self.active_label.setText(self.models.error or "no active model")

    def _show_details(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.infos):
            self.details.clear()
            return
        selected = self.infos[rows[0].row()]
        self._mark_comparable(selected)
        self.details.setPlainText(model_details(selected, self.models.info))

    def _mark_comparable(self, selected: ModelInfo) -> None:
        """Grey the figures of the models measured on other images than the selected one's:
        side by side in one table, they would invite a comparison they cannot bear."""
        grey = self.palette().color(QPalette.ColorRole.PlaceholderText)
        normal = self.palette().color(QPalette.ColorRole.Text)
        for row, info in enumerate(self.infos):
            same = info is selected or comparable(info, selected) is True
            for col in (4, 5):
                item = self.table.item(row, col)
                if item is None:
                    continue
                item.setForeground(normal if same else grey)
                item.setToolTip(
                    "measured on the same validation images as the selected model"
                    if same
                    else "measured on other images than the selected model: not comparable "
                    "with its figures (ncl-forensics eval measures both on the same images)"
                )


def model_details(info: ModelInfo, active: ModelInfo | None = None) -> str:
    """A readable account of one model: file, network, provenance, validation metrics, what
    a fine-tune gained and, on the same images only, how it compares with the active model."""
    c = info.config
    lines = [
        f"{info.name}{'  (bundled starter model)' if info.bundled else ''}",
        f"file        {info.path}",
        f"SHA-256     {info.sha256}",
        f"network     {c.backbone}, output stride {c.output_stride}, patches {c.patch_px} px, "
        f"pivot branches {'yes' if c.pivot else 'no'}",
        f"created     {info.created or '–'}   app version {info.app_version or '–'}",
        f"parent      {info.parent or '– (trained from scratch)'}",
        f"validated   {info.validation_summary()}",
        "",
        "trained on",
    ]
    for d in info.trained_on.get("datasets", []):
        lines.append(
            f"  {d.get('root', '?')}: {d.get('layout', '')} {d.get('n_tampered', '?')} tampered, "
            f"{d.get('n_authentic', '?')} authentic"
        )
    if info.trained_on.get("synthetic"):
        lines.append(
            f"  synthetic forgeries from {info.trained_on['synthetic'].get('photos', '?')}"
        )
    for v in info.trained_on.get("validation", []):
        lines.append(f"  validation: {v}")
    for part in info.trained_on.get("average_of") or []:
        lines.append(
            f"  average of: {part.get('name', '?')} ({str(part.get('sha256', '?'))[:12]}), "
            f"weight {part.get('weight', '?')}"
        )
    if not info.trained_on:
        lines.append("  –")
    lines += ["", "validation metrics"]
    for key, value in info.metrics.items():
        if isinstance(value, float) and not value.is_integer():
            shown = f"{value:.4f}"
        elif isinstance(value, (int, float)):
            shown = f"{value:g}"
        else:
            shown = str(value)
        lines.append(f"  {key:<20} {shown}")
    if not info.metrics:
        lines.append("  –")
    baseline = info.trained_on.get("baseline") or {}
    if baseline:
        lines += ["", "before and after fine-tuning, on the same validation images"]
        for row in comparison_rows(baseline, info.metrics):
            lines.append(
                f"  {row['label']:<44} {row['before']:.4f} → {row['after']:.4f} "
                f"({row['after'] - row['before']:+.4f})"
            )
    if active is not None and active.sha256 != info.sha256:
        lines += ["", f"compared with the active model ({active.name})"]
        same = comparable(info, active)
        if same:
            for row in comparison_rows(active.metrics, info.metrics):
                lines.append(
                    f"  {row['label']:<44} {row['after']:.4f} (active {row['before']:.4f})"
                )
        else:
            lines.append(
                "  not comparable here: "
                + (
                    "measured on other images"
                    if same is False
                    else "the files do not say on which images"
                )
                + "; measure both with ncl-forensics eval on the same images"
            )
    if info.train_config:
        lines += ["", "training settings", json.dumps(info.train_config, indent=2, default=str)]
    return "\n".join(lines)
