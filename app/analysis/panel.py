"""The Analysis view's side panel: display controls, forensic views, contour patches, the
result, the file and the save buttons.

The controls show the ``OverlaySettings`` of an ``AnalysisState`` and change them there; the
rest of the panel shows what the view hands it (``show_file``, ``show_result``, …).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.analysis.state import AnalysisState
from app.forensic_views import COMBINED_ABOUT, ForensicViews
from app.jobs import JobManager
from app.model_state import ModelState
from app.widgets import wheel_only_when_focused
from ncl_core.analysis import Analysis
from ncl_core.data.io import ImageInfo
from ncl_core.evidence.image import Evidence
from ncl_core.inference.finding import image_finding
from ncl_core.inference.predictor import MODES
from ncl_core.inference.render import COLORMAPS

OVERLAY_MODES = (
    ("heatmap", "Heatmap"),
    ("mask", "Binary mask"),
    ("outline", "Outline"),
    ("off", "Off"),
)
MODE_TIPS = {
    "auto": "Auto: the model's own default (the mode and size it was measured best with).",
    "resize": "Resize: the paper's protocol (the image resized to the model's input size). Fast.",
    "tiled": "Tiled: full resolution in overlapping tiles. Slower, finds small edits.",
}
PANEL_MIN_WIDTH = 300  # px; the controls usually need more
SAVE_KINDS = (
    ("mask", "Mask", "Binary mask at the threshold, PNG (white = flagged)"),
    ("heatmap", "Heatmap", "Coloured probability map, PNG"),
    ("overlay", "Overlay", "The image with the overlay as displayed, PNG"),
    ("json", "JSON", "All facts of this analysis (hashes, model, settings), JSON"),
)


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def breakable(text: str, every: int = 20) -> str:
    """``text`` with zero-width spaces inside very long words, so that a word-wrapped label
    can break them instead of widening the side panel."""
    words = []
    for word in text.split(" "):
        if len(word) > every:
            word = "\u200b".join(word[i : i + every] for i in range(0, len(word), every))
        words.append(word)
    return " ".join(words)


def _selectable(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _combo(items, tips: dict[str, str] | None = None) -> QComboBox:
    combo = QComboBox()
    for key, label in items:
        combo.addItem(label, key)
        if tips is not None:
            combo.setItemData(combo.count() - 1, tips.get(key, key), Qt.ItemDataRole.ToolTipRole)
    return combo


class AnalysisPanel(QScrollArea):
    """The side panel, in a scroll area never narrower than its content."""

    save_requested = Signal(str)  # "mask", "heatmap", "overlay" or "json"
    ground_truth_requested = Signal()  # the "Load ground-truth mask…" button

    def __init__(self, jobs: JobManager, state: AnalysisState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self._worded: Analysis | None = None  # the analysis whose finding is shown
        self._settings: dict = {}
        self.content = QWidget()
        layout = QVBoxLayout(self.content)
        # The finding and score first: at 1280 x 800 they are in sight without scrolling.
        self.result_box = self._build_result_box()
        layout.addWidget(self.result_box)
        layout.addWidget(self._build_display_box())
        self.forensic = ForensicViews(jobs)
        layout.addWidget(self.forensic)
        self._watch_metadata_table()
        self.forensic.changed.connect(self._name_panes)
        self.forensic.changed.connect(self._show_combined)
        layout.addWidget(self._build_patch_box())
        layout.addWidget(self._build_file_box())
        layout.addWidget(self._build_save_box())
        layout.addStretch(1)
        self.setWidget(self.content)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Re-fitted once the panel's layout has taken new text in (the next event loop turn).
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit)
        self.guard_controls()
        self._fit()
        self._show_overlay(frozenset())
        self._name_panes()
        state.overlay_changed.connect(self._show_overlay)

    def guard_controls(self) -> None:
        """The panel's texts wrap instead of widening it, and its combo boxes, spin boxes and
        sliders take the wheel only when focused (the wheel scrolls the panel). Called again
        when a box is added to the panel."""
        for label in self.content.findChildren(QLabel):
            if label.wordWrap():
                label.setMinimumWidth(1)  # a long word is broken, never widens the panel
        # The hash is two lines of 32 hex digits, which never break: room for them.
        self.sha_label.ensurePolished()
        self.sha_label.setMinimumWidth(self.sha_label.fontMetrics().horizontalAdvance("0" * 33))
        wheel_only_when_focused(
            *self.content.findChildren(QComboBox),
            *self.content.findChildren(QAbstractSpinBox),
            *self.content.findChildren(QSlider),
        )
        self._fit()

    def _fit(self) -> None:
        """Keep the scroll area as wide as the panel's controls need: with the horizontal
        scroll bar off, a narrower one would cut the panel's right edge off. Texts wrap
        (``guard_controls``), so the width is the same from image to image."""
        extra = self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        self.setMinimumWidth(max(PANEL_MIN_WIDTH, self.content.minimumSizeHint().width() + extra))

    def _watch_metadata_table(self) -> None:
        """The forensic views' metadata table is shown only while it has rows: empty, it
        would push everything below it out of sight."""
        table = self.forensic.table
        model = table.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal.connect(self._show_metadata_table)
        self._show_metadata_table()

    @Slot()
    def _show_metadata_table(self) -> None:
        table = self.forensic.table
        form = self.forensic.layout()
        has_rows = table.rowCount() > 0
        if isinstance(form, QFormLayout):
            form.setRowVisible(table, has_rows)
        else:
            table.setVisible(has_rows)

    # -- building -----------------------------------------------------------------------------
    def _build_display_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        update = self.state.update_overlay
        self.mode_combo = _combo([(m, m) for m in MODES], MODE_TIPS)
        self.mode_combo.setToolTip("Analysis mode; changing it analyzes the image again")
        self.mode_combo.currentIndexChanged.connect(
            lambda: update(mode=self.mode_combo.currentData())
        )
        form.addRow("Analysis mode", self.mode_combo)

        self.overlay_combo = _combo(OVERLAY_MODES)
        self.overlay_combo.setToolTip("How the result is drawn over the image (Space: on / off)")
        self.overlay_combo.currentIndexChanged.connect(
            lambda: update(overlay=self.overlay_combo.currentData())
        )
        form.addRow("Overlay", self.overlay_combo)

        self.cmap_combo = _combo([(name, name) for name in COLORMAPS])
        self.cmap_combo.setToolTip("Colour map of the heatmap (perceptual maps first)")
        self.cmap_combo.currentIndexChanged.connect(
            lambda: update(colormap=self.cmap_combo.currentData())
        )
        form.addRow("Colour map", self.cmap_combo)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Opacity of the heatmap or mask over the image")
        self.opacity_slider.valueChanged.connect(lambda v: update(opacity=v / 100.0))
        self.opacity_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.opacity_label)
        form.addRow("Opacity", row)

        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setToolTip(
            "Probability at or above which a pixel counts as tampered; re-draws the mask, "
            "outline, area and patches without running the model again"
        )
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setDecimals(2)
        # The value is taken when typing ends (Enter, Tab, focus elsewhere): taken at every
        # keystroke, "0.35" was 0.00 after the "0", written back into the box mid-typing.
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_slider.valueChanged.connect(lambda v: update(threshold=v / 100.0))
        self.threshold_spin.valueChanged.connect(lambda v: update(threshold=v))
        row = QHBoxLayout()
        row.addWidget(self.threshold_slider, 1)
        row.addWidget(self.threshold_spin)
        form.addRow("Threshold", row)

        self.side_check = QCheckBox("Side by side")
        self.side_check.setToolTip(
            "Two panes that move together: the map shown (Forensic views ▸ Show) in a pane of "
            "its own beside the original, or, with a second map (Beside it), that one beside "
            "the first"
        )
        self.side_check.toggled.connect(lambda on: update(side_by_side=on))
        form.addRow(self.side_check)
        self.panes_label = _selectable()
        self.panes_label.setStyleSheet("color:#9a9aa2;")
        form.addRow(self.panes_label)
        return box

    def _build_patch_box(self) -> QGroupBox:
        box = QGroupBox("Contour patches")
        form = QFormLayout(box)
        self.patch_check = QCheckBox("Show the patch grid")
        self.patch_check.setToolTip(
            "Colour each patch of the model's grid tampered / authentic / contour, as NCL "
            "labels them for training"
        )
        self.patch_check.toggled.connect(lambda on: self.state.update_overlay(show_patches=on))
        form.addRow(self.patch_check)
        self.patch_source = _combo(
            [("prediction", "predicted mask (threshold)"), ("ground_truth", "ground-truth mask")]
        )
        self.patch_source.setToolTip("Which mask the patch labels come from")
        self.patch_source.currentIndexChanged.connect(
            lambda: self.state.update_overlay(patch_source=self.patch_source.currentData())
        )
        form.addRow("From", self.patch_source)
        self.gt_button = QPushButton("Load ground-truth mask…")
        self.gt_button.setToolTip("A mask of this image (white = tampered), any bit depth")
        self.gt_button.clicked.connect(self.ground_truth_requested)
        form.addRow(self.gt_button)
        self.gt_label = _selectable("no ground-truth mask")
        form.addRow(self.gt_label)
        self.patch_counts_label = _selectable("–")
        form.addRow("Patches", self.patch_counts_label)
        return box

    def _build_result_box(self) -> QGroupBox:
        box = QGroupBox("Result")
        form = QFormLayout(box)
        self.score_label = _selectable("–")
        self.score_label.setToolTip("Image-level tampering score in [0, 1]")
        self.finding_label = _selectable("–")
        self.area_label = _selectable("–")
        self.area_label.setToolTip("Share of pixels at or above the threshold")
        self.model_label = _selectable("–")
        self.device_label = _selectable("–")
        self.time_label = _selectable("–")
        self.warnings_label = _selectable("")
        self.warnings_label.setStyleSheet("color:#d9a53b;")
        self.finding_label.setWordWrap(True)
        self.combined_label = _selectable("–")
        self.combined_label.setWordWrap(True)
        self.combined_label.setToolTip(f"{COMBINED_ABOUT} Its map: Forensic views ▸ Show.")
        form.addRow("Finding", self.finding_label)
        form.addRow("Combined evidence", self.combined_label)
        form.addRow("Score", self.score_label)
        form.addRow("Tampered area", self.area_label)
        form.addRow("Model", self.model_label)
        form.addRow("Device", self.device_label)
        form.addRow("Time", self.time_label)
        form.addRow(self.warnings_label)
        form.setRowVisible(self.warnings_label, False)  # shown when there is a warning
        self._result_form = form
        return box

    def _build_file_box(self) -> QGroupBox:
        box = QGroupBox("File")
        form = QFormLayout(box)
        self.file_label = _selectable("–")
        self.size_label = _selectable("–")
        self.sha_label = _selectable("–")
        self.sha_label.setStyleSheet("font-family: monospace; font-size: 9pt;")
        self.meta_label = _selectable("–")
        form.addRow("Name", self.file_label)
        form.addRow("Image", self.size_label)
        form.addRow("SHA-256", self.sha_label)
        form.addRow("Metadata", self.meta_label)
        return box

    def _build_save_box(self) -> QGroupBox:
        box = QGroupBox("Save")
        grid = QGridLayout(box)  # two by two: four in a row would widen the side panel
        self.save_buttons: dict[str, QPushButton] = {}
        for kind, label, tip in SAVE_KINDS:
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, k=kind: self.save_requested.emit(k))
            grid.addWidget(button, len(self.save_buttons) // 2, len(self.save_buttons) % 2)
            self.save_buttons[kind] = button
        return box

    # -- the overlay settings -----------------------------------------------------------------
    @Slot(object)
    def _show_overlay(self, _changed: frozenset[str]) -> None:
        """Show the state's settings in the controls (without echoing them back)."""
        s = self.state.overlay
        for combo, value in (
            (self.mode_combo, s.mode),
            (self.overlay_combo, s.overlay),
            (self.cmap_combo, s.colormap),
            (self.patch_source, s.patch_source),
        ):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(value)))
            combo.blockSignals(False)
        for widget, value in (
            (self.opacity_slider, round(100 * s.opacity)),
            (self.threshold_slider, round(100 * s.threshold)),
            (self.threshold_spin, s.threshold),
            (self.side_check, s.side_by_side),
            (self.patch_check, s.show_patches),
        ):
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(value)
            else:
                widget.setValue(value)
            widget.blockSignals(False)
        self.opacity_label.setText(f"{round(100 * s.opacity)} %")
        self._name_panes()

    def pane_names(self) -> tuple[str, str]:
        """What the left and right panes show side by side (the right one "" when alone)."""
        shown = self.forensic.show_combo.currentText()
        beside = self.forensic.beside_combo.currentText() if self.forensic.beside() else ""
        if not self.state.overlay.side_by_side:
            return "", ""
        if beside:
            return f"image with {shown}", beside
        return "original", shown

    @Slot()
    def _name_panes(self) -> None:
        left, right = self.pane_names()
        self.panes_label.setText(f"left: {left} · right: {right}" if right else "")
        self.panes_label.setVisible(bool(right))

    # -- what the view shows ------------------------------------------------------------------
    def show_file(self, evidence: Evidence, sha256: str | None) -> None:
        """The file's name, size, header and hash, as read (nothing is read again here)."""
        path, info = evidence.path or Path(evidence.name), evidence.info
        if info is None:  # pixels without a file header
            h, w = evidence.image.shape[:2]
            info = ImageInfo(format="pixels", width=w, height=h, mode="RGB")
        self.file_label.setText(path.name)
        self.file_label.setToolTip(str(path))
        size = evidence.size_bytes or 0
        self.size_label.setText(
            f"{info.width} × {info.height} px, {info.format}, {info.mode}, {format_bytes(size)}"
        )
        meta = [f"{k}: {v}" for k, v in info.exif.items()]
        if info.orientation != 1:
            meta.append(f"EXIF orientation {info.orientation} (applied)")
        if info.n_frames > 1:
            meta.append(f"{info.n_frames} frames (first analyzed)")
        meta.append("GPS data present" if info.has_gps else "no GPS data")
        self.meta_label.setText("\n".join(breakable(m) for m in meta))
        if sha256:
            self.show_sha(sha256)
        else:
            self.sha_label.setText("–")
            self.sha_label.setToolTip("")

    def show_unreadable_file(self, path: Path) -> None:
        """Only the name of a file that could not be opened."""
        self.file_label.setText(path.name)
        self.file_label.setToolTip(str(path))
        for label in (self.size_label, self.sha_label, self.meta_label):
            label.setText("–")
            label.setToolTip("")

    def show_sha(self, sha256: str) -> None:
        # Two lines of 32: a 64-character word would make the side panel scroll sideways.
        self.sha_label.setText(f"{sha256[:32]}\n{sha256[32:]}")
        self.sha_label.setToolTip(sha256)

    def show_ground_truth(self, path: Path | None, tampered: float = 0.0) -> None:
        if path is None:
            self.gt_label.setText("no ground-truth mask")
        else:
            self.gt_label.setText(f"{path.name} ({100 * tampered:.1f} % tampered)")

    def show_patch_counts(
        self,
        grid: tuple[int, int] | None,
        counts: dict[str, int] | None,
        patch_px: int,
        source: str | None,
    ) -> None:
        """The patch labels of a ``grid`` (rows, cols) drawn from ``source``, else why none."""
        if grid is not None and counts is not None:
            rows, cols = grid
            c = counts
            text = (
                f"{c['tampered']} tampered, {c['contour']} contour, {c['authentic']} authentic "
                f"({cols} × {rows} patches of {patch_px} px)"
            )
        elif source == "ground_truth":
            text = "load a ground-truth mask"
        elif source:
            text = "waiting for an analysis"
        else:
            text = "–"
        self.patch_counts_label.setText(text)

    def show_area(self, fraction: float, threshold: float) -> None:
        """The tampered area at ``threshold``, and the finding worded at it (its regions)."""
        a = self._worded
        found = None
        if a is not None:
            found = image_finding(a.score, a.probability, threshold, self._settings)
            self._show_finding(found)
        regions = "" if found is None else f" in {found.regions} region(s)"
        self.area_label.setText(f"{100 * fraction:.2f} %{regions} at threshold {threshold:.2f}")

    @Slot()
    def _show_combined(self) -> None:
        """The combined evidence's finding (the first part of its summary), once it has been
        made with the model's map of the image shown."""
        result = self.forensic.result("combined")
        if self.forensic.model_map is None:  # no analysis of the image shown (yet)
            result = None
        if result is not None and result.details.get("with_model"):
            self.combined_label.setText(result.summary.split(";")[0])
        elif result is not None and not result.applicable:
            self.combined_label.setText(result.summary)
        elif self.forensic.evidence is not None and self.forensic.model_map is not None:
            self.combined_label.setText("computing…")
        else:
            self.combined_label.setText("–")

    def show_result(
        self, analysis: Analysis | None, models: ModelState, note: str, has_image: bool
    ) -> None:
        """The Result box: the analysis, else why there is none (``note``, or no model)."""
        self._fit_timer.start()
        a = analysis
        self._worded = a
        self._settings = {} if a is None else _with_origin(a, models)
        if a is None:
            no_model = models.info is None and not models.loading
            text = "no model: " + (models.error or "") if no_model else "–"
            if note:
                text = note
            shown = has_image or note == "could not be opened"
            self.score_label.setText(text if shown else "–")
            alarm = no_model or note in ("analysis failed", "could not be opened")
            self.score_label.setStyleSheet("color:#e07070;" if alarm else "")
            for label in (self.area_label, self.time_label, self.model_label, self.finding_label):
                label.setText("–")
            self._show_combined()
            self.finding_label.setStyleSheet("")
            self.finding_label.setToolTip("")
            self.device_label.setText(models.loaded_device or "–")
            self._show_warnings([])
            return
        self.score_label.setStyleSheet("")
        self.score_label.setText(f"{a.score:.3f}")
        threshold = self.state.overlay.threshold
        self.show_area(float((a.probability >= threshold).mean()), threshold)
        self.model_label.setText(f"{a.model_id} ({a.model_sha256[:12]})")
        self.model_label.setToolTip(f"model file SHA-256 {a.model_sha256}")
        self.device_label.setText(a.device)
        started = a.started_utc[:19].replace("T", " ")
        mode = a.settings.get("mode", "")
        self.time_label.setText(f"{a.duration_s:.2f} s ({mode}), started {started} UTC")
        self._show_warnings(a.warnings)
        self._show_combined()
        if a.sha256:
            self.show_sha(a.sha256)

    def _show_warnings(self, warnings: list[str]) -> None:
        self.warnings_label.setText("\n".join(breakable(f"⚠ {w}") for w in warnings))
        self._result_form.setRowVisible(self.warnings_label, bool(warnings))

    def _show_finding(self, found) -> None:
        """The finding the reports and the command line give (``ncl_core.inference.finding``), worded at
        the shown threshold: against the model's calibrated threshold, or said to be
        uncalibrated (a fine-tuned model does not inherit its base's calibration)."""
        self.finding_label.setText(found.text)
        tips = []
        if found.calibrated:
            self.finding_label.setStyleSheet("")
            tips.append(
                "The model's image-score threshold was measured on labeled manipulated and "
                "authentic images (ncl-forensics calibrate)."
            )
        else:
            self.finding_label.setStyleSheet("color:#d9a53b;")
            tips.append(
                "This model is not calibrated on labeled images (a fine-tuned model does not "
                "inherit its base model's calibration: fine-tuning changes the scores). The "
                "score is compared with 0.5, which may not suit it. Calibrate it on manipulated "
                "and authentic images of yours: ncl-forensics calibrate --model M --data "
                "FORGERIES AUTHENTIC --out FILE"
            )
        tips.append(
            "Localized means concentrated: at most 15 % of the image in at most 3 regions; "
            "a larger or scattered response is no localisation."
        )
        if found.hint:
            tips.append(
                "The model's measured F1 on real forgeries is near the all-manipulated floor "
                "(the F1 of marking every pixel): read its map as a hint and check it against "
                "the forensic views."
            )
        self.finding_label.setToolTip("\n\n".join(tips))

    def set_savable(self, savable: bool) -> None:
        for button in self.save_buttons.values():
            button.setEnabled(savable)


def _with_origin(a: Analysis, models: ModelState) -> dict:
    """``a.settings``, saying the model is fine-tuned where the active model file (the one
    that analyzed ``a``) names a base model and the analysis did not record it."""
    info = models.info
    quality = dict(a.settings.get("model_quality") or {})
    if info is not None and info.sha256 == a.model_sha256 and info.parent:
        quality["fine_tuned"] = True
    return {**a.settings, "model_quality": quality}
