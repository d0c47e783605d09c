"""The Analysis view: one image, its tampering map as a live overlay, and the facts about it.

The model runs once per image (in a job); threshold, opacity, colour map, display mode and the
contour-patch grid are re-drawn on the GUI thread from the cached probability map.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.forensic_views import NCL, ForensicViews
from app.jobs import Job, JobContext, JobManager
from app.model_state import ModelState, PredictorSlot
from app.overlay import LayerRequest, RenderedLayers, render_layers
from app.qtimage import rgb32_image, rgb_view
from app.settings import Settings
from app.viewer import ImageViewer
from app.widgets import Legend
from ncl_core import __version__
from ncl_core.analysis import Analysis
from ncl_core.data.io import ImageInfo, ImageReadError, read_image, read_image_info, read_mask
from ncl_core.fsutil import atomic_write_bytes
from ncl_core.hashing import sha256_file
from ncl_core.infer import MODES
from ncl_core.outputs import (
    EvidenceFolderError,
    check_outside_evidence,
    default_output_folder,
    output_name,
)
from ncl_core.patches import label_counts
from ncl_core.render import (
    COLORMAPS,
    mask_png,
    overlay_rgb,
    save_heatmap_png,
    save_png,
)

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


PLACEHOLDER = (
    "<h2>Open an image to analyse it</h2>"
    "<p>File ▸ Open… (Ctrl+O), a recent file, or drop images here.<br>"
    "Drop several files or a folder to analyse them as a batch.</p>"
)


@dataclass
class _Request:
    path: Path
    analysis: Analysis | None = None  # a result to show instead of running the model again
    ground_truth: Path | None = None  # a mask to load with the image


def _pixmap(image: QImage | None) -> QPixmap | None:
    return None if image is None else QPixmap.fromImage(image)


def _format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _breakable(text: str, every: int = 20) -> str:
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


class AnalysisView(QWidget):
    """Viewer, overlay controls, contour-patch view and the side panel of one analysis."""

    message = Signal(str, str)  # text, level ("info" | "warning" | "error")
    pixel_info = Signal(str)  # for the status bar
    opened = Signal(str)  # an image was read (for recent files)
    savable_changed = Signal(bool)  # whether the shown result belongs to the shown image

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self.slot = PredictorSlot()
        self.path: Path | None = None
        self.image: np.ndarray | None = None
        self.image_info: ImageInfo | None = None
        self.analysis: Analysis | None = None
        self.ground_truth: np.ndarray | None = None
        self.ground_truth_path: Path | None = None
        self.mask: np.ndarray | None = None  # the binary mask as drawn now
        self.patch_grid: np.ndarray | None = None
        self.mask_renders = 0  # how often the binary mask was re-drawn (tests read it)
        # Other evidence the window holds (the batch's inputs): saves never go into it either.
        self.evidence: Callable[[], list[Path]] = list
        self._job: Job | None = None
        self._job_path: Path | None = None  # the file the running job opens
        self._job_showed_image = False  # whether that file's image has been shown yet
        self._job_warned = False  # a warning was shown for the running job: keep it up
        self._result_note = ""  # why there is no result: "analysis failed", "cancelled"
        self._savable = False
        self._pending: _Request | None = None
        self._waiting: _Request | None = None  # for the model to be resolved
        self._heat_key: tuple[int, str] | None = None
        self._heat_pixmap: QPixmap | None = None
        self._render_job: Job | None = None
        self._render_again = False
        self._legend_counts: dict[str, int] | None = None
        self._overlay_hidden = False
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(0)  # coalesce a burst of slider moves into one re-draw
        self._redraw.timeout.connect(self._render_overlays)
        self._build()
        self._restore_settings()
        self.models.changed.connect(self._on_models_changed)

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.viewer = ImageViewer()
        self.side_viewer = ImageViewer()
        self.side_viewer.setVisible(False)
        self.viewer.view_changed.connect(lambda: self.side_viewer.follow(self.viewer))
        self.side_viewer.view_changed.connect(lambda: self.viewer.follow(self.side_viewer))
        self.viewer.hovered.connect(self._on_hover)
        self.side_viewer.hovered.connect(self._on_hover)
        self.views = QSplitter(Qt.Orientation.Horizontal)
        self.views.addWidget(self.viewer)
        self.views.addWidget(self.side_viewer)

        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color:#9a9aa2;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.views)

        self.legend = Legend()
        self.stage_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running analysis (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.stage_label, 1)
        busy_row.addWidget(self.progress)
        busy_row.addWidget(self.cancel_button)
        self.busy_box = QWidget()
        self.busy_box.setLayout(busy_row)
        self.busy_box.setVisible(False)

        center = QVBoxLayout()
        center.setContentsMargins(0, 0, 0, 0)
        center.addWidget(self.stack, 1)
        center.addWidget(self.legend)
        center.addWidget(self.busy_box)
        center_widget = QWidget()
        center_widget.setLayout(center)

        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        panel_layout.addWidget(self._build_display_box())
        self.forensic = ForensicViews(self.jobs)
        self.forensic.changed.connect(self._on_forensic_changed)
        panel_layout.addWidget(self.forensic)
        panel_layout.addWidget(self._build_patch_box())
        panel_layout.addWidget(self._build_result_box())
        panel_layout.addWidget(self._build_file_box())
        panel_layout.addWidget(self._build_save_box())
        panel_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel, self.panel_scroll = panel, scroll
        # Re-fitted once the panel's layout has taken new text in (the next event loop turn).
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit_panel)
        self._fit_panel()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(center_widget)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1000, 360])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        toggle = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        toggle.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        toggle.activated.connect(self.toggle_overlay)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.cancel)

    def _fit_panel(self) -> None:
        """Keep the side panel's scroll area at least as wide as the panel needs: with the
        horizontal scroll bar off, a narrower one would cut the panel's right edge off."""
        scroll = self.panel_scroll
        extra = scroll.verticalScrollBar().sizeHint().width() + 2 * scroll.frameWidth()
        scroll.setMinimumWidth(max(300, self.panel.minimumSizeHint().width() + extra))

    def _build_display_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        self.mode_combo = QComboBox()
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
            self.mode_combo.setItemData(
                self.mode_combo.count() - 1, MODE_TIPS.get(mode, mode), Qt.ItemDataRole.ToolTipRole
            )
        self.mode_combo.setToolTip("Analysis mode; changing it analyses the image again")
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        form.addRow("Analysis mode", self.mode_combo)

        self.overlay_combo = QComboBox()
        for key, label in OVERLAY_MODES:
            self.overlay_combo.addItem(label, key)
        self.overlay_combo.setToolTip("How the result is drawn over the image (Space: on / off)")
        self.overlay_combo.currentIndexChanged.connect(self._on_display_changed)
        form.addRow("Overlay", self.overlay_combo)

        self.cmap_combo = QComboBox()
        for name in COLORMAPS:
            self.cmap_combo.addItem(name, name)
        self.cmap_combo.setToolTip("Colour map of the heatmap (perceptual maps first)")
        self.cmap_combo.currentIndexChanged.connect(self._on_display_changed)
        form.addRow("Colour map", self.cmap_combo)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Opacity of the heatmap or mask over the image")
        self.opacity_slider.valueChanged.connect(self._on_opacity_changed)
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
        self.threshold_slider.valueChanged.connect(
            lambda v: self.threshold_spin.setValue(v / 100.0)
        )
        self.threshold_spin.valueChanged.connect(self._on_threshold_changed)
        row = QHBoxLayout()
        row.addWidget(self.threshold_slider, 1)
        row.addWidget(self.threshold_spin)
        form.addRow("Threshold", row)

        self.side_check = QCheckBox("Side by side: original | heatmap")
        self.side_check.setToolTip(
            "Show the heatmap next to the original; both views move together"
        )
        self.side_check.toggled.connect(self._on_side_by_side)
        form.addRow(self.side_check)
        return box

    def _build_patch_box(self) -> QGroupBox:
        box = QGroupBox("Contour patches")
        form = QFormLayout(box)
        self.patch_check = QCheckBox("Show the patch grid")
        self.patch_check.setToolTip(
            "Colour each patch of the model's grid tampered / authentic / contour, as NCL "
            "labels them for training"
        )
        self.patch_check.toggled.connect(self._on_display_changed)
        form.addRow(self.patch_check)
        self.patch_source = QComboBox()
        self.patch_source.addItem("predicted mask (threshold)", "prediction")
        self.patch_source.addItem("ground-truth mask", "ground_truth")
        self.patch_source.setToolTip("Which mask the patch labels come from")
        self.patch_source.currentIndexChanged.connect(self._on_display_changed)
        form.addRow("From", self.patch_source)
        self.gt_button = QPushButton("Load ground-truth mask…")
        self.gt_button.setToolTip("A mask of this image (white = tampered), any bit depth")
        self.gt_button.clicked.connect(self._choose_ground_truth)
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
        self.area_label = _selectable("–")
        self.area_label.setToolTip("Share of pixels at or above the threshold")
        self.model_label = _selectable("–")
        self.device_label = _selectable("–")
        self.time_label = _selectable("–")
        self.warnings_label = _selectable("")
        self.warnings_label.setStyleSheet("color:#d9a53b;")
        form.addRow("Score", self.score_label)
        form.addRow("Tampered area", self.area_label)
        form.addRow("Model", self.model_label)
        form.addRow("Device", self.device_label)
        form.addRow("Time", self.time_label)
        form.addRow(self.warnings_label)
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
        for kind, label, tip in (
            ("mask", "Mask", "Binary mask at the threshold, PNG (white = flagged)"),
            ("heatmap", "Heatmap", "Coloured probability map, PNG"),
            ("overlay", "Overlay", "The image with the overlay as displayed, PNG"),
            ("json", "JSON", "All facts of this analysis (hashes, model, settings), JSON"),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, k=kind: self.save_dialog(k))
            grid.addWidget(button, len(self.save_buttons) // 2, len(self.save_buttons) % 2)
            self.save_buttons[kind] = button
        return box

    def _restore_settings(self) -> None:
        s = self.settings
        self._select(self.mode_combo, s.get("analysis/mode"))
        self._select(self.overlay_combo, s.get("analysis/overlay"))
        self._select(self.cmap_combo, s.get("analysis/colormap"))
        self.opacity_slider.setValue(round(100 * s.get("analysis/opacity")))
        self.threshold_spin.setValue(s.get("analysis/threshold"))
        self.threshold_slider.setValue(round(100 * s.get("analysis/threshold")))
        self.side_check.setChecked(s.get("analysis/side_by_side"))
        self.patch_check.setChecked(s.get("analysis/show_patches"))
        self._on_opacity_changed(self.opacity_slider.value())

    @staticmethod
    def _select(combo: QComboBox, data: Any) -> None:
        index = combo.findData(data)
        if index >= 0:
            combo.setCurrentIndex(index)

    # -- public -------------------------------------------------------------------------------
    def threshold(self) -> float:
        return float(self.threshold_spin.value())

    def set_threshold(self, value: float) -> None:
        self.threshold_spin.setValue(value)

    def overlay_mode(self) -> str:
        return str(self.overlay_combo.currentData())

    def set_overlay_mode(self, mode: str) -> None:
        self._select(self.overlay_combo, mode)

    def analysis_mode(self) -> str:
        return str(self.mode_combo.currentData())

    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    def open_image(
        self,
        path: str | Path,
        analysis: Analysis | None = None,
        ground_truth: str | Path | None = None,
    ) -> None:
        """Show ``path`` and analyse it in a job (or show ``analysis`` if one is given).

        ``ground_truth``: a mask of the image to load for the contour-patch view.
        """
        gt = Path(ground_truth) if ground_truth is not None else None
        request = _Request(Path(path), analysis, gt)
        if self.is_busy():
            self._pending = request
            self._job.cancel()
            return
        self._start(request)

    def reanalyse(self) -> None:
        if self.path is not None:
            self.open_image(self.path)

    def cancel(self) -> None:
        self._pending = None
        self._waiting = None
        if self._job is not None:
            self._job.cancel()

    def toggle_overlay(self) -> None:
        """Space: flip between the original and the overlay."""
        self._overlay_hidden = not self._overlay_hidden
        self._apply_visibility()

    def load_ground_truth(self, path: str | Path) -> None:
        """Read a ground-truth mask for the open image (in a job) and use it for the patches."""
        if self.image is None or self.path is None:
            self.message.emit("Open an image before loading its ground-truth mask.", "warning")
            return
        h, w = self.image.shape[:2]
        image_path = self.path

        def read(ctx: JobContext) -> tuple[Path, np.ndarray, list[str]]:
            mask, warnings = read_mask(path, expected_hw=(h, w), image_path=image_path)
            return Path(path), mask, warnings

        job = Job("ground-truth mask", read)
        job.succeeded.connect(self._on_ground_truth)
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        self.jobs.start(job)

    def patch_counts(self) -> dict[str, int] | None:
        return None if self.patch_grid is None else label_counts(self.patch_grid)

    # -- jobs ---------------------------------------------------------------------------------
    def _start(self, request: _Request) -> None:
        if self.models.loading and request.analysis is None:
            self._waiting = request
            self._show_busy("Waiting for the model to load…", None)
            return
        info = self.models.info
        device = self.models.device
        mode, threshold = self.analysis_mode(), self.threshold()
        slot = self.slot

        def analyse(ctx: JobContext) -> Analysis | None:
            ctx.emit({"type": "stage", "text": f"Reading {request.path.name}…"})
            image, warnings = read_image(request.path)
            hw = image.shape[:2]
            # The view keeps one copy of the pixels: this image, shared by the viewer's pixmap.
            pixels = rgb32_image(image)
            del image
            info_ = read_image_info(request.path)
            # The File panel shows this file's hash at once, with its name and size.
            sha = request.analysis.sha256 if request.analysis else None
            sha = sha or sha256_file(request.path)
            ctx.emit(
                {
                    "type": "image",
                    "path": request.path,
                    "image": pixels,
                    "info": info_,
                    "sha256": sha,
                }
            )
            if request.ground_truth is not None:
                try:
                    mask, mask_warnings = read_mask(
                        request.ground_truth, expected_hw=hw, image_path=request.path
                    )
                except ImageReadError as exc:  # the image is still worth analysing
                    ctx.emit({"type": "warning", "text": str(exc)})
                else:
                    gt = (request.ground_truth, mask, mask_warnings)
                    ctx.emit({"type": "ground_truth", "result": gt})
            if request.analysis is not None:
                return request.analysis
            if info is None:
                return None
            ctx.emit({"type": "stage", "text": f"Loading model {info.name}…"})
            predictor = slot.get(info, device)
            ctx.emit({"type": "device", "device": predictor.device})
            ctx.emit({"type": "stage", "text": f"Analysing ({mode}) on {predictor.device}…"})
            return predictor.analyze(
                request.path,
                mode=mode,
                threshold=threshold,
                progress=lambda f: ctx.emit({"type": "progress", "fraction": f}),
                cancel=ctx.cancelled,
            )

        job = Job("analysis", analyse)
        job.event.connect(self._on_job_event)
        job.succeeded.connect(self._on_analysis)
        job.failed.connect(self._on_failed)
        job.was_cancelled.connect(self._on_cancelled)
        job.ended.connect(self._on_job_ended)
        self._job = job
        self._job_path, self._job_showed_image = request.path, False
        self._job_warned = False
        self._show_busy(f"Opening {request.path.name}…", None)
        self.jobs.start(job)

    def _show_busy(self, text: str, fraction: float | None) -> None:
        self.busy_box.setVisible(True)
        self.stage_label.setText(text)
        if fraction is None:
            self.progress.setRange(0, 0)  # busy indicator: resize mode has no steps
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * fraction))

    @Slot(object)
    def _on_job_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "stage":
            self._show_busy(event["text"], None)
        elif kind == "progress":
            self._show_busy(self.stage_label.text(), event["fraction"])
        elif kind == "device":
            self.models.set_loaded_device(event["device"])
        elif kind == "image":
            self._show_image(event["path"], event["image"], event["info"], event["sha256"])
        elif kind == "ground_truth":
            self._on_ground_truth(event["result"], show_patches=False)
        elif kind == "warning":
            self._job_warned = True
            self.message.emit(event["text"], "warning")

    def _show_image(
        self, path: Path, pixels: QImage | np.ndarray, info: ImageInfo, sha256: str | None
    ) -> None:
        if isinstance(pixels, np.ndarray):
            pixels = rgb32_image(pixels)
        image = rgb_view(pixels)  # no copy: the pixels stay in ``pixels``
        same = self.path == path and self.image is not None and self.image.shape == image.shape
        self.path, self.image, self.image_info = path, image, info
        self._job_showed_image = path == self._job_path
        self._result_note = ""
        if not same:
            self.analysis = None
            self.ground_truth = None
            self.ground_truth_path = None
            self.gt_label.setText("no ground-truth mask")
            self._heat_key = None
            self._heat_pixmap = None
            # On raster platforms the pixmap shares the pixels of ``pixels`` (no copy).
            self.viewer.set_image_pixmap(QPixmap.fromImage(pixels))
            self.side_viewer.set_image(None)
        else:
            self.viewer.set_layer("image", QPixmap.fromImage(pixels))
        self.placeholder.setText(PLACEHOLDER)
        self.stack.setCurrentIndex(1)
        self.opened.emit(str(path))
        self.file_label.setText(path.name)
        self.file_label.setToolTip(str(path))
        size = path.stat().st_size if path.exists() else 0
        self.size_label.setText(
            f"{info.width} × {info.height} px, {info.format}, {info.mode}, {_format_bytes(size)}"
        )
        meta = [f"{k}: {v}" for k, v in info.exif.items()]
        if info.orientation != 1:
            meta.append(f"EXIF orientation {info.orientation} (applied)")
        if info.n_frames > 1:
            meta.append(f"{info.n_frames} frames (first analysed)")
        meta.append("GPS data present" if info.has_gps else "no GPS data")
        self.meta_label.setText("\n".join(_breakable(m) for m in meta))
        if sha256:
            self._show_sha(sha256)
        else:
            self.sha_label.setText("–")
            self.sha_label.setToolTip("")
        self._update_result_panel()
        self.forensic.set_image(path, sha256)
        if not same:
            self._render_overlays()

    @Slot(object)
    def _on_analysis(self, analysis: Analysis | None) -> None:
        if analysis is None:
            self._update_result_panel()
            self._render_overlays()
            return
        self.analysis = analysis
        self._heat_key = None
        self.models.set_loaded_device(analysis.device)
        self._update_result_panel()
        self._render_overlays()
        self.message.emit(
            f"Analysed {Path(analysis.source or '').name} in {analysis.duration_s:.1f} s "
            f"({analysis.settings.get('mode', '')}, {analysis.device}).",
            # A success retracts an earlier error of this view, unless this job warned.
            "info" if self._job_warned else "success",
        )

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.message.emit(text, "error")
        if self._job_path is not None and not self._job_showed_image:
            # The file could not be read: nothing of the previous file stays on screen.
            self._show_unreadable(self._job_path, text)
            return
        self.analysis = None
        self._heat_key = None
        self._result_note = "analysis failed"
        self._update_result_panel()
        self._render_overlays()

    def _show_unreadable(self, path: Path, text: str) -> None:
        """Empty the viewer and the panels; name the file that failed and why."""
        self.path, self.image, self.image_info, self.analysis = None, None, None, None
        self.ground_truth = self.ground_truth_path = None
        self.gt_label.setText("no ground-truth mask")
        self._heat_key = None
        self.viewer.set_image(None)
        self.side_viewer.set_image(None)
        self.placeholder.setText(
            f"<h3>Could not open {_html_escape(path.name)}</h3>"
            f"<p>{_html_escape(text)}</p>" + PLACEHOLDER
        )
        self.stack.setCurrentIndex(0)
        self.file_label.setText(path.name)
        self.file_label.setToolTip(str(path))
        for label in (self.size_label, self.sha_label, self.meta_label):
            label.setText("–")
            label.setToolTip("")
        self._result_note = "could not be opened"
        self.forensic.set_image(None)
        self._update_result_panel()
        self._render_overlays()

    @Slot()
    def _on_cancelled(self) -> None:
        if self._pending is None:
            self.message.emit("Analysis cancelled.", "info")
            if self.analysis is None and self.image is not None:
                self._result_note = "cancelled"
                self._update_result_panel()

    @Slot()
    def _on_job_ended(self) -> None:
        self._job = None
        self.busy_box.setVisible(False)
        pending, self._pending = self._pending, None
        if pending is not None:
            self._start(pending)

    @Slot()
    def _on_models_changed(self) -> None:
        self._update_result_panel()
        if not self.models.loading and self._waiting is not None:
            request, self._waiting = self._waiting, None
            self.busy_box.setVisible(False)
            self._start(request)

    @Slot(object)
    def _on_ground_truth(
        self, result: tuple[Path, np.ndarray, list[str]], show_patches: bool = True
    ) -> None:
        """Use a loaded mask for the patches; shown at once when the user asked for it."""
        path, mask, warnings = result
        if self.image is None or mask.shape != self.image.shape[:2]:
            return  # another image was opened meanwhile
        self.ground_truth, self.ground_truth_path = mask, path
        self.gt_label.setText(f"{path.name} ({100 * mask.mean():.1f} % tampered)")
        for warning in warnings:
            self._job_warned = True
            self.message.emit(f"{path.name}: {warning}", "warning")
        self._select(self.patch_source, "ground_truth")
        if show_patches:
            self.patch_check.setChecked(True)
        self._render_overlays()

    def _choose_ground_truth(self) -> None:
        start = str(self.path.parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Ground-truth mask",
            start,
            "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.gif *.webp);;All files (*)",
        )
        if path:
            self.load_ground_truth(path)

    # -- panel --------------------------------------------------------------------------------
    def is_savable(self) -> bool:
        """True when the result on screen belongs to the image on screen."""
        a = self.analysis
        return (
            a is not None
            and self.image is not None
            and self.path is not None
            and Path(a.source or "") == self.path
        )

    def _update_result_panel(self) -> None:
        self._fit_timer.start()
        a = self.analysis
        savable = self.is_savable()
        for button in self.save_buttons.values():
            button.setEnabled(savable)
        if savable != self._savable:
            self._savable = savable
            self.savable_changed.emit(savable)
        if a is None:
            no_model = self.models.info is None and not self.models.loading
            text = "no model: " + (self.models.error or "") if no_model else "–"
            if self._result_note:
                text = self._result_note
            shown = self.image is not None or self._result_note == "could not be opened"
            self.score_label.setText(text if shown else "–")
            alarm = no_model or self._result_note in ("analysis failed", "could not be opened")
            self.score_label.setStyleSheet("color:#e07070;" if alarm else "")
            for label in (self.area_label, self.time_label, self.model_label):
                label.setText("–")
            self.device_label.setText(self.models.loaded_device or "–")
            self.warnings_label.setText("")
            return
        self.score_label.setStyleSheet("")
        self.score_label.setText(f"{a.score:.3f}")
        self.area_label.setText(
            f"{100 * self.current_area():.2f} % at threshold {self.threshold():.2f}"
        )
        self.model_label.setText(f"{a.model_id} ({a.model_sha256[:12]})")
        self.model_label.setToolTip(f"model file SHA-256 {a.model_sha256}")
        self.device_label.setText(a.device)
        started = a.started_utc[:19].replace("T", " ")
        mode = a.settings.get("mode", "")
        self.time_label.setText(f"{a.duration_s:.2f} s ({mode}), started {started} UTC")
        self.warnings_label.setText("\n".join(_breakable(f"⚠ {w}") for w in a.warnings))
        if a.sha256:
            self._show_sha(a.sha256)

    def _show_sha(self, sha256: str) -> None:
        # Two lines of 32: a 64-character word would make the side panel scroll sideways.
        self.sha_label.setText(f"{sha256[:32]}\n{sha256[32:]}")
        self.sha_label.setToolTip(sha256)

    def current_area(self) -> float:
        if self.analysis is None:
            return 0.0
        return float((self.analysis.probability >= self.threshold()).mean())

    # -- controls -----------------------------------------------------------------------------
    def _on_mode_changed(self) -> None:
        self.settings.set("analysis/mode", self.analysis_mode())
        if self.path is not None:
            self.reanalyse()

    def _on_display_changed(self) -> None:
        self.settings.set("analysis/overlay", self.overlay_mode())
        self.settings.set("analysis/colormap", self.cmap_combo.currentData())
        self.settings.set("analysis/show_patches", self.patch_check.isChecked())
        self._redraw.start()

    def _on_opacity_changed(self, value: int) -> None:
        alpha = value / 100.0
        self.opacity_label.setText(f"{value} %")
        self.settings.set("analysis/opacity", alpha)
        for layer in ("heatmap", "mask"):
            self.viewer.set_layer_opacity(layer, alpha)

    def _on_threshold_changed(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        self.settings.set("analysis/threshold", float(value))
        self._update_legend()
        self._redraw.start()

    def _on_side_by_side(self, on: bool) -> None:
        self.settings.set("analysis/side_by_side", on)
        self.side_viewer.setVisible(on)
        if on:
            self.views.setSizes([1, 1])
        self._redraw.start()

    # -- drawing ------------------------------------------------------------------------------
    @Slot()
    def _render_overlays(self) -> None:
        """Re-draw the layers from the cached probability map (no inference), in a job.

        Requests made while a render runs collapse into one render of the latest state.
        """
        self._redraw.stop()
        if self._render_job is not None and self._render_job.is_running():
            self._render_again = True
            return
        self._render_again = False
        request = self._layer_request()
        job = Job("overlay", lambda ctx: render_layers(request), visible=False)
        job.succeeded.connect(self._apply_layers)
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        job.ended.connect(self._on_render_ended)
        self._render_job = job
        self.jobs.start(job)

    def _on_forensic_changed(self) -> None:
        if self.forensic.beside() and not self.side_check.isChecked():
            self.side_check.setChecked(True)  # a map beside the first needs its pane
        self._redraw.start()

    def _layer_request(self) -> LayerRequest:
        # The map drawn is the model's or a forensic view's: the same controls apply to both.
        prob = self.forensic.shown_map(self.analysis)
        cmap = str(self.cmap_combo.currentData())
        mode = self.overlay_mode()
        heat_key = (id(prob), cmap) if prob is not None else None
        needs_heat = mode == "heatmap" or self.side_check.isChecked()
        config = self.models.model_config()
        return LayerRequest(
            probability=prob,
            threshold=self.threshold(),
            mode=mode,
            cmap=cmap,
            want_heatmap=prob is not None and needs_heat and heat_key != self._heat_key,
            heat_key=heat_key,
            patch_mask=self.patch_source.currentData() if self.patch_check.isChecked() else None,
            ground_truth=self.ground_truth,
            patch_px=config.patch_px,
            patch_eps=config.patch_eps,
            side_probability=(
                self.forensic.beside_map(self.analysis) if self.side_check.isChecked() else None
            ),
        )

    @Slot()
    def _on_render_ended(self) -> None:
        self._render_job = None
        if self._render_again:
            self._render_overlays()

    @Slot(object)
    def _apply_layers(self, out: RenderedLayers) -> None:
        req = out.request
        a = self.analysis
        if req.probability is not self.forensic.shown_map(a):
            self._render_again = True  # drawn for another analysis or view: draw again
            return
        if out.heatmap is not None:
            self._heat_key = req.heat_key
            self._heat_pixmap = QPixmap.fromImage(out.heatmap)
        drawn = req.probability is not None
        heat = self._heat_pixmap if drawn and self._heat_key == req.heat_key else None
        viewer = self.viewer
        alpha = self.opacity_slider.value() / 100.0
        side_by_side = self.side_check.isChecked()
        # Side by side, the heatmap has its own view: the left one shows the original.
        # With a second map beside it, the left view keeps the first map's overlay.
        beside = out.side_heatmap is not None
        show_heat = req.mode == "heatmap" and (beside or not side_by_side) and heat is not None
        # Layers of a large map are drawn reduced (see app.overlay): the viewer scales them up.
        scale = req.scale
        viewer.set_layer("heatmap", heat if show_heat else None, alpha, scale=scale)
        self.mask = out.mask
        if out.mask is not None:
            self.mask_renders += 1
        viewer.set_layer("mask", _pixmap(out.mask_image), alpha, scale=scale)
        viewer.set_layer("outline", _pixmap(out.outline_image), scale=scale)

        self.patch_grid = out.patch_grid
        if out.patch_grid is not None:
            rows, cols = out.patch_grid.shape
            viewer.set_layer("patches", _pixmap(out.patch_image), 1.0, scale=req.patch_px)
            viewer.set_grid(req.patch_px, cols, rows)
            c = out.patch_counts
            self.patch_counts_label.setText(
                f"{c['tampered']} tampered, {c['contour']} contour, {c['authentic']} authentic "
                f"({cols} × {rows} patches of {req.patch_px} px)"
            )
        else:
            viewer.set_layer("patches", None)
            viewer.set_grid(0, 0, 0)
            self.patch_counts_label.setText(self._patch_hint() if req.patch_mask else "–")
        self._apply_visibility()

        right = _pixmap(out.side_heatmap) if beside else heat
        right_map = req.side_probability if beside else req.probability
        if side_by_side and right is not None:
            right_scale = req.side_scale if beside else scale
            size = (right_map.shape[1], right_map.shape[0])
            if self.side_viewer.image_size() != size:
                self.side_viewer.set_image_pixmap(right, right_scale, size)
                self.side_viewer.follow(self.viewer)
            else:
                self.side_viewer.set_layer("image", right, scale=right_scale)
        elif not drawn:
            self.side_viewer.set_image(None)
        ncl_shown = a is not None and req.probability is a.probability
        if ncl_shown and out.area_fraction is not None:
            self.area_label.setText(
                f"{100 * out.area_fraction:.2f} % at threshold {req.threshold:.2f}"
            )
        self._legend_counts = out.patch_counts
        self._update_legend()

    def _apply_visibility(self) -> None:
        for layer in ("heatmap", "mask", "outline", "patches"):
            self.viewer.set_layer_visible(layer, not self._overlay_hidden)
        self.viewer.set_grid_visible(not self._overlay_hidden)
        self._update_legend()

    def _update_legend(self) -> None:
        drawn = self.forensic.shown_map(self.analysis)
        shown = "off" if self._overlay_hidden or drawn is None else self.overlay_mode()
        counts = None if self._overlay_hidden else self._legend_counts
        self.legend.set_state(shown, str(self.cmap_combo.currentData()), self.threshold(), counts)

    def _patch_hint(self) -> str:
        if self.patch_source.currentData() == "ground_truth":
            return "load a ground-truth mask"
        return "waiting for an analysis"

    @Slot(int, int)
    def _on_hover(self, x: int, y: int) -> None:
        if x < 0 or self.image is None:
            self.pixel_info.emit("")
            return
        r, g, b = (int(v) for v in self.image[y, x])
        text = f"x {x}, y {y} · RGB {r} {g} {b}"
        if self.analysis is not None and self.analysis.probability.shape == self.image.shape[:2]:
            p = float(self.analysis.probability[y, x])
            text += f" · p {p:.3f}" if math.isfinite(p) else " · p –"
        view, drawn = self.forensic.shown(), self.forensic.shown_map(self.analysis)
        if view != NCL and drawn is not None and drawn.shape == self.image.shape[:2]:
            text += f" · {view} {float(drawn[y, x]):.3f}"
        self.pixel_info.emit(text)

    # -- saving -------------------------------------------------------------------------------
    def evidence_inputs(self) -> list[Path]:
        """Files and folders no save may write into: the open image (and the one opening)
        and the batch's inputs."""
        own = {p for p in (self.path, self._job_path) if p is not None}
        return sorted(own) + list(self.evidence())

    def default_save_path(self, kind: str) -> Path:
        """Where the save dialog starts: the remembered folder (never an evidence folder), else
        the user's documents; named like ``photo.mask.png``."""
        folder = default_output_folder(
            self.settings.get("dirs/save"),
            self.evidence_inputs(),
            platformdirs.user_documents_dir(),
        )
        return folder / output_name(self.path or "analysis", kind)

    def ask_save_path(self, kind: str, suggested: Path) -> str:
        """The save dialog (tests replace this)."""
        filt = "JSON (*.json)" if kind == "json" else "PNG image (*.png)"
        target, _ = QFileDialog.getSaveFileName(self, f"Save {kind}", str(suggested), filt)
        return target

    def save_dialog(self, kind: str) -> Job | None:
        if not self.is_savable():
            return None
        target = self.ask_save_path(kind, self.default_save_path(kind))
        if not target:
            return None
        job = self.save(kind, Path(target))
        if job is not None:
            self.settings.set("dirs/save", str(Path(target).parent))
        return job

    def save(self, kind: str, target: Path) -> Job | None:
        """Write the mask, heatmap, overlay or JSON of the current analysis (in a job).

        Refused, with a message, when the result is not the shown image's or when ``target``
        lies in an evidence folder.
        """
        if not self.is_savable():
            return None
        try:
            check_outside_evidence(Path(target).parent, self.evidence_inputs(), what="folder")
        except EvidenceFolderError as exc:
            self.message.emit(f"Not saved: {exc}", "error")
            return None
        analysis = self.analysis.with_threshold(self.threshold())
        image = self.image
        mode = self.overlay_mode()
        alpha = self.opacity_slider.value() / 100.0
        cmap = str(self.cmap_combo.currentData())

        def write(ctx: JobContext) -> Path:
            if kind == "mask":
                save_png(target, mask_png(analysis.mask))
            elif kind == "heatmap":
                save_heatmap_png(target, analysis.probability, cmap)
            elif kind == "overlay":
                pixels = np.ascontiguousarray(image)  # the view's pixels are a strided view
                if mode == "off":
                    save_png(target, pixels)
                else:
                    save_png(
                        target,
                        overlay_rgb(
                            pixels, analysis.probability, analysis.threshold, alpha, cmap, mode
                        ),
                    )
            else:
                data = {"app_version": __version__, **analysis.summary()}
                atomic_write_bytes(target, json.dumps(data, indent=2).encode("utf-8"))
            return target

        job = Job(f"save {kind}", write)
        job.succeeded.connect(lambda p: self.message.emit(f"Saved {p}", "success"))
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        return self.jobs.start(job)
