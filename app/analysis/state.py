"""The Analysis view's state: the overlay settings, the image and result shown, the requests.

``OverlaySettings`` (``app.display``) is how results are analyzed and drawn; the Batch view and
its report read the same values. The settings are stored in the GUI settings file a moment after
the last change (not on every step of a slider drag: each write re-writes the ini file) and at
once by ``store_settings``.

``AnalysisState`` runs one analysis job at a time: a new request cancels the running one and
waits for it (the latest request wins), and a request made while the model is still being
looked up waits for it. The job reads the file once (``ncl_core.evidence.image.load_evidence``):
the same ``Evidence`` is shown, analyzed, and kept for the File panel and the forensic views.
What the job finds (the evidence, a ground-truth mask, the result, an error) is kept here and
announced by signals; the view only draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from app.display import SETTING_KEYS, OverlaySettings, load_overlay_settings
from app.jobs import (
    DeviceUsed,
    GroundTruthRead,
    ImageRead,
    Job,
    JobContext,
    JobEvent,
    JobManager,
    Progress,
    Stage,
    Warned,
)
from app.model_state import ModelState, SharedPredictor
from app.qtimage import rgb32_image, rgb_view
from app.session import Session
from app.settings import Settings
from ncl_core.analysis import Analysis
from ncl_core.data.io import ImageInfo, ImageReadError, read_mask
from ncl_core.evidence.image import Evidence, load_evidence
from ncl_core.models.modelfile import ModelInfo
from ncl_core.settings import InferenceSettings

STORE_DELAY_MS = 500  # the settings are written this long after the last change


@dataclass
class Request:
    path: Path
    analysis: Analysis | None = None  # a result to show instead of running the model again
    ground_truth: Path | None = None  # a mask to load with the image


def _analyze(
    ctx: JobContext,
    request: Request,
    models: tuple[Any, str],
    mode: str,
    threshold: float,
    load: Callable[[ModelInfo, str], SharedPredictor],
) -> Analysis | None:
    """The analysis job: read the file once (``load_evidence``), show it, load its mask, run
    the model on the same evidence (``load``: ``ModelState.predictor``, the window's one
    predictor)."""
    info, device = models
    ctx.emit(Stage(f"Reading {request.path.name}…"))
    evidence = load_evidence(request.path)
    # The view keeps one copy of the pixels: this image, shared by the viewer's pixmap. The
    # evidence it keeps (for the File panel and the forensic views) reads them through a view.
    pixels = rgb32_image(evidence.image)
    shown = replace(evidence, image=rgb_view(pixels))
    sha = evidence.sha256  # hashed while reading; the File panel shows it at once
    ctx.emit(ImageRead(shown, sha, pixels))
    if request.ground_truth is not None:
        try:
            mask, mask_warnings = read_mask(
                request.ground_truth, expected_hw=evidence.image.shape[:2], image_path=request.path
            )
        except ImageReadError as exc:  # the image is still worth analyzing
            ctx.emit(Warned(str(exc)))
        else:
            ctx.emit(GroundTruthRead(request.ground_truth, mask, mask_warnings))
    given = request.analysis
    if given is not None and given.sha256 not in (None, sha):
        ctx.emit(Warned(f"{request.path.name} changed since it was analyzed: analyzing it again."))
        given = None
    if given is not None:
        return given
    if info is None:
        return None
    ctx.emit(Stage(f"Loading model {info.name}…"))
    predictor = load(info, device)
    ctx.emit(DeviceUsed(predictor.device))
    ctx.emit(Stage(f"Analyzing ({mode}) on {predictor.device}…"))
    result = predictor.analyze(
        evidence,
        InferenceSettings(mode=mode),
        progress=lambda f: ctx.emit(Progress(f)),
        cancel=ctx.cancelled,
    )
    return result.at(threshold)  # as shown, until the threshold moves


class AnalysisState(QObject):
    """Overlay settings, the shown image and its result, and the analysis job."""

    overlay_changed = Signal(object)  # frozenset[str]: the OverlaySettings fields that changed
    busy = Signal(str, object)  # what the job does now, and the fraction done (None: unknown)
    idle = Signal()  # no job runs or waits any more
    image_shown = Signal(object, bool)  # the QImage shown; True when it is another image
    result_changed = Signal(bool)  # the result (or why there is none); True: draw again
    unreadable = Signal(object, str)  # a file could not be opened: its path, and why
    ground_truth_changed = Signal()  # a ground-truth mask of the shown image was loaded
    message = Signal(str, str)  # text, level

    def __init__(
        self,
        jobs: JobManager,
        models: ModelState,
        settings: Settings,
        parent: QObject | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """``session``: the display settings and what is shown; by default a new one with the
        stored settings."""
        super().__init__(parent)
        self.jobs, self.models, self.settings = jobs, models, settings
        self._unstored: set[str] = set()
        self._store_timer = QTimer(self)
        self._store_timer.setSingleShot(True)
        self._store_timer.setInterval(STORE_DELAY_MS)
        self._store_timer.timeout.connect(self.store_settings)
        # The settings and what is shown live in the Qt-free session; this object runs the jobs
        # that change it and announces its changes to the widgets.
        self.session = session or Session(load_overlay_settings(settings))
        self.session.on("overlay", self._on_overlay_changed)

        self._job: Job | None = None
        self._job_path: Path | None = None  # the file the running job opens
        self._job_showed_image = False  # whether that file's image has been shown yet
        self._job_warned = False  # a warning was shown for the running job: keep it up
        self._stage = ""
        self._pending: Request | None = None  # starts when the running job has ended
        self._waiting: Request | None = None  # starts when the model is known
        self.models.changed.connect(self._on_models_changed)

    # -- what is shown (the session's) --------------------------------------------------------
    @property
    def evidence(self) -> Evidence | None:
        """The shown file, read once (its pixels: ``image``)."""
        return self.session.shown.evidence

    @property
    def path(self) -> Path | None:
        return self.session.shown.path

    @property
    def image(self) -> np.ndarray | None:
        """RGB, a read-only view of the shown pixels."""
        return self.session.shown.image

    @property
    def image_info(self) -> ImageInfo | None:
        return self.session.shown.image_info

    @property
    def sha256(self) -> str | None:
        """Of the shown file's bytes."""
        return self.session.shown.sha256

    @property
    def analysis(self) -> Analysis | None:
        return self.session.shown.analysis

    @property
    def ground_truth(self) -> np.ndarray | None:
        return self.session.shown.ground_truth

    @property
    def ground_truth_path(self) -> Path | None:
        return self.session.shown.ground_truth_path

    @property
    def result_note(self) -> str:
        """Why there is no result: "analysis failed", "cancelled", …"""
        return self.session.shown.note

    # -- overlay settings -----------------------------------------------------------------
    @property
    def overlay(self) -> OverlaySettings:
        return self.session.overlay

    def update_overlay(self, **changes: Any) -> None:
        """Change some settings (invalid values are ignored); ``overlay_changed`` names the
        fields whose value changed."""
        self.session.update_overlay(**changes)

    def _on_overlay_changed(self, values: frozenset[str]) -> None:
        stored = set(values) & set(SETTING_KEYS)
        if stored:
            self._unstored |= stored
            self._store_timer.start()
        self.overlay_changed.emit(values)

    def store_settings(self) -> None:
        """Write the changed settings to the GUI settings now."""
        self._store_timer.stop()
        for name in sorted(self._unstored):
            self.settings.set(SETTING_KEYS[name], getattr(self.overlay, name))
        self._unstored.clear()

    # -- requests -------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    def open_image(
        self,
        path: str | Path,
        analysis: Analysis | None = None,
        ground_truth: str | Path | None = None,
    ) -> None:
        """Show ``path`` and analyze it in a job (or show ``analysis`` if one is given)."""
        gt = Path(ground_truth) if ground_truth is not None else None
        request = Request(Path(path), analysis, gt)
        if self.is_busy():
            self._pending = request
            self._job.cancel()
            return
        self._start(request)

    def reanalyze(self) -> None:
        if self.path is not None:
            self.open_image(self.path)

    def cancel(self) -> None:
        self._pending = None
        self._waiting = None
        if self._job is not None:
            self._job.cancel()

    def load_ground_truth(self, path: str | Path) -> None:
        """Read a ground-truth mask for the shown image (in a job) and use it for the patches."""
        if self.image is None or self.path is None:
            self.message.emit("Open an image before loading its ground-truth mask.", "warning")
            return
        h, w = self.image.shape[:2]
        image_path = self.path

        def read(ctx: JobContext) -> GroundTruthRead:
            mask, warnings = read_mask(path, expected_hw=(h, w), image_path=image_path)
            return GroundTruthRead(Path(path), mask, warnings)

        job = Job("ground-truth mask", read)
        job.succeeded.connect(self._on_ground_truth)
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        self.jobs.start(job)

    # -- the job --------------------------------------------------------------------------
    def _start(self, request: Request) -> None:
        if self.models.loading and request.analysis is None:
            self._waiting = request
            self._show_busy("Waiting for the model to load…", None)
            return
        models = (self.models.info, self.models.device)
        mode, threshold, load = self.overlay.mode, self.overlay.threshold, self.models.predictor
        job = Job("analysis", lambda ctx: _analyze(ctx, request, models, mode, threshold, load))
        job.event.connect(self._on_job_event)
        job.succeeded.connect(self._on_analysis)
        job.failed.connect(self._on_failed)
        job.was_cancelled.connect(self._on_cancelled)
        job.ended.connect(self._on_job_ended)
        self._job = job
        self._job_path, self._job_showed_image = request.path, False
        self.session.hold_evidence("opening", [request.path])
        self._job_warned = False
        self._show_busy(f"Opening {request.path.name}…", None)
        self.jobs.start(job)

    def _show_busy(self, text: str, fraction: float | None) -> None:
        self._stage = text
        self.busy.emit(text, fraction)

    @Slot(object)
    def _on_job_event(self, event: JobEvent) -> None:
        if isinstance(event, Stage):
            self._show_busy(event.text, None)
        elif isinstance(event, Progress):
            self._show_busy(self._stage, event.fraction)
        elif isinstance(event, DeviceUsed):
            self.models.set_loaded_device(event.device)
        elif isinstance(event, ImageRead):
            self.show_image(event.evidence, event.sha256, event.pixels)
        elif isinstance(event, GroundTruthRead):
            self._on_ground_truth(event, show_patches=False)
        elif isinstance(event, Warned):
            self._job_warned = True
            self.message.emit(event.text, "warning")

    def show_image(
        self, evidence: Evidence, sha256: str | None, pixels: QImage | None = None
    ) -> None:
        """Show an image read from a file (``evidence.path``; ``sha256``: of its bytes); the
        result of another image goes.

        ``pixels``: the image as a ``Format_RGB32`` QImage, which the view then shares, with
        ``evidence.image`` a view of it (the analysis job makes both); None: made here.
        """
        if pixels is None:
            pixels = rgb32_image(evidence.image)
            evidence = replace(evidence, image=rgb_view(pixels))
        new = self.session.show_evidence(evidence, sha256)
        self._job_showed_image = evidence.path == self._job_path
        self.image_shown.emit(pixels, new)

    @Slot(object)
    def _on_analysis(self, analysis: Analysis | None) -> None:
        if analysis is None:
            self.result_changed.emit(True)
            return
        self.session.set_analysis(analysis)
        self.models.set_loaded_device(analysis.device)
        self.result_changed.emit(True)
        self.message.emit(
            f"Analyzed {Path(analysis.source or '').name} in {analysis.duration_s:.1f} s "
            f"({analysis.settings.get('mode', '')}, {analysis.device}).",
            # A success retracts an earlier error of this view, unless this job warned.
            "info" if self._job_warned else "success",
        )

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.message.emit(text, "error")
        if self._job_path is not None and not self._job_showed_image:
            # The file could not be read: nothing of the previous file stays on screen.
            path = self._job_path
            self.session.show_nothing("could not be opened")
            self.unreadable.emit(path, text)
            return
        self.session.set_analysis(None, "analysis failed")
        self.result_changed.emit(True)

    @Slot()
    def _on_cancelled(self) -> None:
        if self._pending is None:
            self.message.emit("Analysis cancelled.", "info")
            if self.analysis is None and self.image is not None:
                self.session.set_note("cancelled")
                self.result_changed.emit(False)

    @Slot()
    def _on_job_ended(self) -> None:
        self._job = None
        self.session.hold_evidence("opening", [])
        self.idle.emit()
        pending, self._pending = self._pending, None
        if pending is not None:
            self._start(pending)

    @Slot()
    def _on_models_changed(self) -> None:
        if not self.models.loading and self._waiting is not None:
            request, self._waiting = self._waiting, None
            self.idle.emit()
            self._start(request)

    @Slot(object)
    def _on_ground_truth(self, result: GroundTruthRead, show_patches: bool = True) -> None:
        """Use a loaded mask for the patches; shown at once when the user asked for it."""
        path, mask, warnings = result.path, result.mask, result.warnings
        if not self.session.set_ground_truth(path, mask):
            return  # another image was opened meanwhile
        for warning in warnings:
            self._job_warned = True
            self.message.emit(f"{path.name}: {warning}", "warning")
        self.update_overlay(patch_source="ground_truth")
        if show_patches:
            self.update_overlay(show_patches=True)
        self.ground_truth_changed.emit()
