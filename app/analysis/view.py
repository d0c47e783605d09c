"""The Analysis view: one image, its tampering map as a live overlay, and the facts about it.

The model runs once per image (in a job, ``AnalysisState``); threshold, opacity, colour map,
overlay style and the contour-patch grid are re-drawn from the cached probability map
(``OverlayLayers``). The view composes the viewers, the side panel (``AnalysisPanel``) and
that state, and is what the window talks to.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QByteArray, Qt, Signal, Slot
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.analysis.labeling import LabelBox, Labeler
from app.analysis.layers import OverlayLayers
from app.analysis.panel import AnalysisPanel
from app.analysis.saving import SaveActions
from app.analysis.state import AnalysisState
from app.display import OverlaySettings
from app.forensic_views import NCL
from app.jobs import JobManager
from app.model_state import ModelState
from app.overlay import RenderedLayers
from app.session import Session
from app.settings import Settings
from app.viewer import ImageViewer
from app.widgets import BusyRow, Legend, MapScale
from ncl_core.analysis import Analysis
from ncl_core.network.patches import label_counts
from ncl_core.views import MAP_VIEWS, VIEWS

PLACEHOLDER = (
    "<h2>Open an image to analyze it</h2>"
    "<p>File ▸ Open… (Ctrl+O), a recent file, or drop images here.<br>"
    "Drop several files or a folder to analyze them as a batch.</p>"
)
# The settings the overlay layers depend on (opacity is the layers' own, and costs nothing).
REDRAWN_BY = frozenset(
    ("threshold", "colormap", "overlay", "side_by_side", "show_patches", "patch_source")
)
MASK_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.gif *.webp);;All files (*)"


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AnalysisView(SaveActions, QWidget):
    """Viewer, overlay controls, contour-patch view and the side panel of one analysis."""

    message = Signal(str, str)  # text, level ("info" | "warning" | "error" | "success")
    pixel_info = Signal(str)  # for the status bar
    opened = Signal(str)  # an image was read (for recent files)
    savable_changed = Signal(bool)  # whether the shown result belongs to the shown image
    side_by_side_changed = Signal(bool)

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """``session``: the window's one session (by default a new one)."""
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self.state = AnalysisState(jobs, models, settings, self, session=session)
        self._savable = False
        self._legend_counts: dict[str, int] | None = None
        self._build()
        self.layers = OverlayLayers(
            jobs, self.state, self.viewer, self.side_viewer, self._maps, self
        )
        self.layers.drawn.connect(self._on_drawn)
        self.layers.failed.connect(lambda text: self.message.emit(text, "error"))
        self.layers.set_opacity(self.state.overlay.opacity)
        self._show_side_viewer(self.state.overlay.side_by_side)
        state = self.state
        state.overlay_changed.connect(self._on_overlay_changed)
        state.busy.connect(self.busy_box.show_busy)
        state.idle.connect(lambda: self.busy_box.setVisible(False))
        state.image_shown.connect(self._on_image_shown)
        state.result_changed.connect(self._on_result_changed)
        state.unreadable.connect(self._on_unreadable)
        state.ground_truth_changed.connect(self._on_ground_truth)
        state.message.connect(self.message)
        self.models.changed.connect(self._update_result_panel)

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
        self.legend.reserve(ALL_SCALES)
        self.busy_box = BusyRow("Stop the running analysis (Esc)")
        self.busy_box.cancel_clicked.connect(self.cancel)

        center = QVBoxLayout()
        center.setContentsMargins(0, 0, 0, 0)
        center.addWidget(self.stack, 1)
        center.addWidget(self.legend)
        center.addWidget(self.busy_box)
        center_widget = QWidget()
        center_widget.setLayout(center)

        self.panel = AnalysisPanel(self.jobs, self.state)
        self.labeler = Labeler(self.viewer, self)
        self.label_box = LabelBox(self.jobs, self.labeler)
        self.label_box.set_source(self._label_source)
        self.label_box.install_shortcuts(self)
        # Below the Result box: mark what the model missed or wrongly flagged.
        results = self.panel.content.layout().indexOf(self.panel.result_box)
        self.panel.content.layout().insertWidget(results + 1, self.label_box)
        self.panel.guard_controls()
        self.panel.save_requested.connect(self.save_dialog)
        self.panel.ground_truth_requested.connect(self.choose_ground_truth)
        self.forensic = self.panel.forensic
        self.forensic.changed.connect(self._on_forensic_changed)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(center_widget)
        self.splitter.addWidget(self.panel)
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

    # -- what is shown ------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.state.path

    @property
    def image(self) -> np.ndarray | None:
        return self.state.image

    @property
    def analysis(self) -> Analysis | None:
        return self.state.analysis

    @property
    def ground_truth(self) -> np.ndarray | None:
        return self.state.ground_truth

    @property
    def mask(self) -> np.ndarray | None:
        """The binary mask as drawn now (at the layers' resolution)."""
        return self.layers.mask

    def _label_source(self) -> tuple[Path | None, np.ndarray | None, tuple[int, int] | None]:
        """What a new label starts from: the shown file, the model's mask of it at the current
        threshold at full resolution (None without a result of this image), the image's shape."""
        image = self.state.image
        if self.path is None or image is None:
            return None, None, None
        shape = image.shape[:2]
        a = self.analysis
        if a is None or not self.is_savable():
            return self.path, None, shape
        mask = a.probability >= self.threshold()
        if mask.shape != shape:
            mask = cv2.resize(
                mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST
            ).astype(bool)
        return self.path, mask, shape

    @property
    def mask_renders(self) -> int:
        return self.layers.mask_renders

    def patch_counts(self) -> dict[str, int] | None:
        grid = self.layers.patch_grid
        return None if grid is None else label_counts(grid)

    def is_busy(self) -> bool:
        return self.state.is_busy()

    # -- settings -----------------------------------------------------------------------------
    def overlay_settings(self) -> OverlaySettings:
        """How results are analyzed and drawn (the Batch view reads mode and threshold)."""
        return self.state.overlay

    def store_settings(self) -> None:
        """Write changed settings now (the window calls it before it closes)."""
        self.state.store_settings()

    def threshold(self) -> float:
        return self.state.overlay.threshold

    def set_threshold(self, value: float) -> None:
        self.state.update_overlay(threshold=value)

    def overlay_mode(self) -> str:
        return self.state.overlay.overlay

    def set_overlay_mode(self, mode: str) -> None:
        self.state.update_overlay(overlay=mode)

    def analysis_mode(self) -> str:
        return self.state.overlay.mode

    def set_analysis_mode(self, mode: str) -> None:
        self.state.update_overlay(mode=mode)

    def set_opacity(self, alpha: float) -> None:
        self.state.update_overlay(opacity=alpha)

    def set_show_patches(self, on: bool) -> None:
        self.state.update_overlay(show_patches=on)

    def side_by_side(self) -> bool:
        return self.state.overlay.side_by_side

    def set_side_by_side(self, on: bool) -> None:
        self.state.update_overlay(side_by_side=on)

    @Slot(object)
    def _on_overlay_changed(self, changed: frozenset[str]) -> None:
        s = self.state.overlay
        if "opacity" in changed:
            self.layers.set_opacity(s.opacity)
        if "side_by_side" in changed:
            self._show_side_viewer(s.side_by_side)
            self.side_by_side_changed.emit(s.side_by_side)
            self._update_legend()  # the panes' names
        if "threshold" in changed:
            self._update_legend()
        if changed & REDRAWN_BY:
            self.layers.redraw()
        if "mode" in changed and self.path is not None:
            self.reanalyze()

    def _show_side_viewer(self, on: bool) -> None:
        self.side_viewer.setVisible(on)
        if on:
            self.views.setSizes([1, 1])

    # -- requests -----------------------------------------------------------------------------
    def open_image(
        self,
        path: str | Path,
        analysis: Analysis | None = None,
        ground_truth: str | Path | None = None,
    ) -> None:
        """Show ``path`` and analyze it in a job (or show ``analysis`` if one is given).

        ``ground_truth``: a mask of the image to load for the contour-patch view.
        """
        self.state.open_image(path, analysis, ground_truth)

    def reanalyze(self) -> None:
        self.state.reanalyze()

    def cancel(self) -> None:
        self.state.cancel()

    def toggle_overlay(self) -> None:
        """Space: flip between the original and the overlay."""
        self.layers.set_hidden(not self.layers.hidden)
        self._update_legend()

    def load_ground_truth(self, path: str | Path) -> None:
        """Read a ground-truth mask for the open image (in a job) and use it for the patches."""
        self.state.load_ground_truth(path)

    def choose_ground_truth(self) -> None:
        """Ask for a ground-truth mask of the open image and load it."""
        start = str(self.path.parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Ground-truth mask", start, MASK_FILTER)
        if path:
            self.load_ground_truth(path)

    # -- the viewers --------------------------------------------------------------------------
    def zoom_in(self) -> None:
        self.viewer.zoom_in()

    def zoom_out(self) -> None:
        self.viewer.zoom_out()

    def fit(self) -> None:
        self.viewer.fit()

    def actual_size(self) -> None:
        self.viewer.actual_size()

    def splitter_state(self) -> QByteArray:
        """The split between the viewers and the side panel (stored by the window)."""
        return self.splitter.saveState()

    def restore_splitter_state(self, state: QByteArray) -> None:
        self.splitter.restoreState(state)

    # -- what the state announces -------------------------------------------------------------
    @Slot(object, bool)
    def _on_image_shown(self, pixels: QImage, new: bool) -> None:
        state = self.state
        if new:
            self.label_box.image_changed()
            self.panel.show_ground_truth(None)
            self.layers.forget()
            # On raster platforms the pixmap shares the pixels of ``pixels`` (no copy).
            self.viewer.set_image_pixmap(QPixmap.fromImage(pixels))
            self.side_viewer.set_image(None)
        else:
            self.viewer.set_layer("image", QPixmap.fromImage(pixels))
        self.placeholder.setText(PLACEHOLDER)
        self.stack.setCurrentIndex(1)
        self.opened.emit(str(state.path))
        self.panel.show_file(state.evidence, state.sha256)
        self._update_result_panel()
        self.forensic.model_map = self.analysis.probability if self.analysis is not None else None
        self.forensic.set_image(state.evidence, state.sha256)
        if new:
            self.layers.render()

    @Slot(bool)
    def _on_result_changed(self, redraw: bool) -> None:
        self.forensic.set_model_map(self.analysis.probability if self.analysis else None)
        self.layers.forget()
        self._update_result_panel()
        if redraw:
            self.layers.render()

    @Slot(object, str)
    def _on_unreadable(self, path: Path, text: str) -> None:
        """Empty the viewer and the panels; name the file that failed and why."""
        self.panel.show_ground_truth(None)
        self.layers.forget()
        self.viewer.set_image(None)
        self.side_viewer.set_image(None)
        self.placeholder.setText(
            f"<h3>Could not open {_html_escape(path.name)}</h3>"
            f"<p>{_html_escape(text)}</p>" + PLACEHOLDER
        )
        self.stack.setCurrentIndex(0)
        self.panel.show_unreadable_file(path)
        self.forensic.set_image(None)
        self._update_result_panel()
        self.layers.render()

    @Slot()
    def _on_ground_truth(self) -> None:
        mask = self.state.ground_truth
        self.panel.show_ground_truth(self.state.ground_truth_path, float(mask.mean()))
        self.layers.render()

    @Slot()
    def _update_result_panel(self) -> None:
        savable = self.is_savable()
        self.panel.set_savable(savable)
        if savable != self._savable:
            self._savable = savable
            self.savable_changed.emit(savable)
        state = self.state
        self.panel.show_result(
            state.analysis, self.models, state.result_note, state.image is not None
        )

    # -- drawing ------------------------------------------------------------------------------
    def _maps(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The map drawn over the image, and the one beside it (None: none)."""
        return self.forensic.shown_map(self.analysis), self.forensic.beside_map(self.analysis)

    def _on_forensic_changed(self) -> None:
        if self.forensic.beside() and not self.side_by_side():
            self.set_side_by_side(True)  # a map beside the first needs its pane
        self.layers.redraw()

    @Slot(object)
    def _on_drawn(self, out: RenderedLayers) -> None:
        req = out.request
        grid = out.patch_grid
        self.panel.show_patch_counts(
            None if grid is None else grid.shape, out.patch_counts, req.patch_px, req.patch_mask
        )
        a = self.analysis
        if a is not None and req.probability is a.probability and out.area_fraction is not None:
            self.panel.show_area(out.area_fraction, req.threshold)
        self._legend_counts = out.patch_counts
        self._update_legend()

    def _update_legend(self) -> None:
        hidden = self.layers.hidden
        drawn = self.forensic.shown_map(self.analysis)
        shown = "off" if hidden or drawn is None else self.overlay_mode()
        counts = None if hidden else self._legend_counts
        s = self.state.overlay
        self.legend.set_state(shown, s.colormap, s.threshold, counts, self.map_scale())
        left, right = self.panel.pane_names()
        self.viewer.set_caption(left)
        self.side_viewer.set_caption(right)

    def map_scale(self) -> MapScale:
        """What the map drawn over the image is, for the legend: the model's probability or
        the forensic view shown, with what brighter means there."""
        name = self.forensic.shown()
        result = self.forensic.result(name) if name != NCL else None
        return map_scale(name, result.details if result is not None else {})

    @Slot(int, int)
    def _on_hover(self, x: int, y: int) -> None:
        image = self.image
        if x < 0 or image is None:
            self.pixel_info.emit("")
            return
        r, g, b = (int(v) for v in image[y, x])
        text = f"x {x}, y {y} · RGB {r} {g} {b}"
        if self.analysis is not None and self.analysis.probability.shape == image.shape[:2]:
            p = float(self.analysis.probability[y, x])
            text += f" · p {p:.3f}" if math.isfinite(p) else " · p –"
        view, drawn = self.forensic.shown(), self.forensic.shown_map(self.analysis)
        if view != NCL and drawn is not None and drawn.shape == image.shape[:2]:
            text += f" · {view} {float(drawn[y, x]):.3f}"
        self.pixel_info.emit(text)


def map_scale(name: str, details: dict) -> MapScale:
    """The legend's words for map ``name`` (``NCL`` or a view) with its result's ``details``."""
    if name == NCL:
        return MapScale()
    view = VIEWS.get(name)
    title = view.title if view is not None else name
    if name == "ela" and details.get("scale"):
        # ELA's map is its error in grey levels, full brightness at the scale.
        return MapScale(
            f"{title}: brighter = larger error on re-saving",
            "0",
            f"{float(details['scale']):.1f} grey levels",
            "ELA",
        )
    if name == "noise" and details.get("map") == "level":
        return MapScale(
            f"{title}: brighter = more noise (departures not judged in this image)",
            "low",
            "high",
            "noise",
        )
    brighter = view.brighter if view is not None else "more suspicious"
    return MapScale(f"{title}: brighter = {brighter}", "0", "1", "value")


# Every map the legend may name: it keeps the height the longest of them needs.
ALL_SCALES = [
    map_scale(NCL, {}),
    *(map_scale(name, {}) for name in MAP_VIEWS),
    map_scale("ela", {"scale": 88.8}),
    map_scale("noise", {"map": "level"}),
]
