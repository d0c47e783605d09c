"""The Analysis view's overlay layers: drawn in jobs from the shown map, put in the viewers.

A change of threshold, colour map, overlay style or patch grid asks for a re-draw; requests
made within one event-loop turn, or while a re-draw runs, collapse into one re-draw of the
latest state. The drawing itself (``app.overlay.render_layers``) runs off the GUI thread;
the GUI thread only swaps pixmaps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from app.analysis.state import AnalysisState
from app.jobs import Job, JobManager
from app.overlay import LayerRequest, RenderedLayers, render_layers
from app.viewer import ImageViewer

OVERLAY_LAYERS = ("heatmap", "mask", "outline", "patches")


def _pixmap(image: QImage | None) -> QPixmap | None:
    return None if image is None else QPixmap.fromImage(image)


class OverlayLayers(QObject):
    """The layers of the main viewer and the side viewer's picture."""

    drawn = Signal(object)  # the RenderedLayers just put in the viewers
    failed = Signal(str)

    def __init__(
        self,
        jobs: JobManager,
        state: AnalysisState,
        viewer: ImageViewer,
        side_viewer: ImageViewer,
        maps: Callable[[], tuple[np.ndarray | None, np.ndarray | None]],
        parent: QObject | None = None,
    ) -> None:
        """``maps`` gives the map drawn over the image and the one beside it (or None)."""
        super().__init__(parent)
        self.jobs, self.state = jobs, state
        self.viewer, self.side_viewer = viewer, side_viewer
        self._maps = maps
        self.mask: np.ndarray | None = None  # the binary mask as drawn now
        self.patch_grid: np.ndarray | None = None
        self.mask_renders = 0  # how often the binary mask was re-drawn (tests read it)
        self.hidden = False  # Space: the original without the overlay
        # The heatmap picture, kept while its map and colour map stay the same.
        self.heat_key: tuple[int, str] | None = None
        self.heat_pixmap: QPixmap | None = None
        self._job: Job | None = None
        self._again = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)  # coalesce a burst of changes into one re-draw
        self._timer.timeout.connect(self.render)

    def redraw(self) -> None:
        """Re-draw on the next event-loop turn (once, however often it is asked for)."""
        self._timer.start()

    def forget(self) -> None:
        """Drop the cached heatmap (its map is gone)."""
        self.heat_key = None
        self.heat_pixmap = None

    def set_hidden(self, hidden: bool) -> None:
        self.hidden = hidden
        for layer in OVERLAY_LAYERS:
            self.viewer.set_layer_visible(layer, not hidden)
        self.viewer.set_grid_visible(not hidden)

    def set_opacity(self, alpha: float) -> None:
        for layer in ("heatmap", "mask"):
            self.viewer.set_layer_opacity(layer, alpha)

    @Slot()
    def render(self) -> None:
        """Re-draw the layers from the cached maps (no inference), in a job."""
        self._timer.stop()
        if self._job is not None and self._job.is_running():
            self._again = True
            return
        self._again = False
        request = self._request()
        job = Job("overlay", lambda ctx: render_layers(request), visible=False)
        job.succeeded.connect(self._apply)
        job.failed.connect(self.failed)
        job.ended.connect(self._on_ended)
        self._job = job
        self.jobs.start(job)

    def _request(self) -> LayerRequest:
        # The map drawn is the model's or a forensic view's: the same settings apply to both.
        prob, beside = self._maps()
        s = self.state.overlay
        heat_key = (id(prob), s.colormap) if prob is not None else None
        needs_heat = s.overlay == "heatmap" or s.side_by_side
        config = self.state.models.model_config()
        return LayerRequest(
            probability=prob,
            threshold=s.threshold,
            mode=s.overlay,
            cmap=s.colormap,
            want_heatmap=prob is not None and needs_heat and heat_key != self.heat_key,
            heat_key=heat_key,
            patch_mask=s.patch_source if s.show_patches else None,
            ground_truth=self.state.ground_truth,
            patch_px=config.patch_px,
            patch_eps=config.patch_eps,
            side_probability=beside if s.side_by_side else None,
        )

    @Slot()
    def _on_ended(self) -> None:
        self._job = None
        if self._again:
            self.render()

    @Slot(object)
    def _apply(self, out: RenderedLayers) -> None:
        req = out.request
        if req.probability is not self._maps()[0]:
            self._again = True  # drawn for another analysis or view: draw again
            return
        if out.heatmap is not None:
            self.heat_key = req.heat_key
            self.heat_pixmap = QPixmap.fromImage(out.heatmap)
        drawn = req.probability is not None
        heat = self.heat_pixmap if drawn and self.heat_key == req.heat_key else None
        viewer = self.viewer
        s = self.state.overlay
        # Side by side, the heatmap has its own view: the left one shows the original.
        # With a second map beside it, the left view keeps the first map's overlay.
        beside = out.side_heatmap is not None
        show_heat = req.mode == "heatmap" and (beside or not s.side_by_side) and heat is not None
        # Layers of a large map are drawn reduced (see app.overlay): the viewer scales them up.
        scale = req.scale
        viewer.set_layer("heatmap", heat if show_heat else None, s.opacity, scale=scale)
        self.mask = out.mask
        if out.mask is not None:
            self.mask_renders += 1
        viewer.set_layer("mask", _pixmap(out.mask_image), s.opacity, scale=scale)
        viewer.set_layer("outline", _pixmap(out.outline_image), scale=scale)

        self.patch_grid = out.patch_grid
        if out.patch_grid is not None:
            rows, cols = out.patch_grid.shape
            viewer.set_layer("patches", _pixmap(out.patch_image), 1.0, scale=req.patch_px)
            viewer.set_grid(req.patch_px, cols, rows)
        else:
            viewer.set_layer("patches", None)
            viewer.set_grid(0, 0, 0)
        self.set_hidden(self.hidden)

        right = _pixmap(out.side_heatmap) if beside else heat
        right_map = req.side_probability if beside else req.probability
        if s.side_by_side and right is not None:
            right_scale = req.side_scale if beside else scale
            size = (right_map.shape[1], right_map.shape[0])
            if self.side_viewer.image_size() != size:
                self.side_viewer.set_image_pixmap(right, right_scale, size)
                self.side_viewer.follow(self.viewer)
            else:
                self.side_viewer.set_layer("image", right, scale=right_scale)
        elif not drawn:
            self.side_viewer.set_image(None)
        self.drawn.emit(out)
