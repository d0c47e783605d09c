"""The forensic views of the Analysis view: which map is shown, the background jobs, the cache.

The maps come from ``ncl_core.views`` (the GUI computes nothing itself), computed on the
``Evidence`` the Analysis view read and analyzed: the file is not opened again. A view is
computed in a job when it is first asked for, then kept per image, keyed by the file's SHA-256,
so going back to an image or a view shows it at once (``ncl_core.views.cache.ViewCache``: the
maps as 8-bit levels, within ``CACHE_BYTES``; the maps shown of the image on screen as
computed). The metadata table and the Content Credentials (C2PA) are filled for every image,
and the combined evidence is made for every analysed image (its finding beside the model's).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.jobs import Computing, Job, JobContext, JobEvent, JobManager
from ncl_core.analysis import Analysis
from ncl_core.evidence.image import Evidence
from ncl_core.inference.predictor import Cancelled
from ncl_core.report.forensic_views import view_as_reported
from ncl_core.views import MAP_VIEWS, VIEWS, ViewResult, compute_view, ela
from ncl_core.views.cache import ViewCache

NCL = "ncl"  # the model's probability map, shown like any other map
# What the combined evidence is and costs, for the controls that show or make it.
COMBINED_ABOUT = (
    "The combined evidence: the model's map weighed with ELA, double quantisation, texture and "
    "clone detection, its finding's threshold calibrated to call at most a tenth of authentic "
    "photos manipulated. It catches far more real forgeries than the model's own finding, for "
    "more false alarms."
)
COMBINED_COST = "On a CPU it adds about 0.7 s an image of 2 MP, 2 to 3 s at 12 MP."
# Views of the images seen, kept as 8-bit maps (a 12 MP map: 12 MB; float32 48 MB): about
# ten 12 MP images with two views each; the image shown is kept whatever its size.
CACHE_BYTES = 256 * 2**20
_GPS_KEY = "metadata+gps"


def _fingerprint(model_map: np.ndarray) -> tuple:
    """Enough of a map to tell another analysis's (another model or mode) from the same one
    made again: its shape, its sum and a sparse sample's."""
    sample = model_map[::97, ::89]
    return model_map.shape, float(model_map.sum(dtype=np.float64)), sample.tobytes()


class ForensicViews(QGroupBox):
    """Selector (shown map, map beside it), the views' findings and the metadata table."""

    changed = Signal()  # a map to draw changed: the Analysis view re-draws its layers
    computing = Signal(bool)

    def __init__(self, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__("Forensic views", parent)
        self.jobs = jobs
        self.evidence: Evidence | None = None  # the image shown
        self.sha256: str | None = None  # its file's SHA-256: the key of its views in the cache
        self._cache = ViewCache(CACHE_BYTES)
        self._job: Job | None = None
        self._job_sha: str | None = None  # the image the running job computes views of
        self._job_map: np.ndarray | None = None  # the model's map it makes "combined" with
        self._made_with: dict[str, tuple] = {}  # image -> the map its "combined" was made with
        self.computed_in: list[str] = []  # thread names the views ran in (tests read it)
        # The model's map of the image shown (None before its analysis): a cue of "combined".
        self.model_map: np.ndarray | None = None

        form = QFormLayout(self)
        self.show_combo = QComboBox()
        self.beside_combo = QComboBox()
        self.beside_combo.addItem("nothing", "")
        for combo in (self.show_combo, self.beside_combo):
            combo.addItem("NCL map (the model)", NCL)
            for name in MAP_VIEWS:
                view = VIEWS[name]
                combo.addItem(view.title, name)
                combo.setItemData(
                    combo.count() - 1,
                    f"{view.about} Brighter: {view.brighter}.",
                    Qt.ItemDataRole.ToolTipRole,
                )
        self.show_combo.setToolTip(
            "Map drawn over the image; opacity, colour map and threshold apply to it"
        )
        self.beside_combo.setToolTip("A second map in its own pane, moving with the first")
        self.show_combo.currentIndexChanged.connect(self._on_selection)
        self.beside_combo.currentIndexChanged.connect(self._on_selection)
        form.addRow("Show", self.show_combo)
        form.addRow("Beside it", self.beside_combo)
        self.ela_quality_combo = QComboBox()
        self.ela_quality_combo.addItem("Auto: the file's own, or its JPEG past", ela.AUTO)
        for quality in range(100, 45, -5):
            self.ela_quality_combo.addItem(str(quality), quality)
        self.ela_quality_combo.setToolTip(
            "The JPEG quality ELA re-saves at. Auto: a JPEG's own quality (its quantisation "
            "tables); for a lossless file with a JPEG past, the quality of that past; else 90. "
            "The quality used is in the line below."
        )
        self.ela_quality_combo.currentIndexChanged.connect(self._on_ela_quality)
        form.addRow("ELA quality", self.ela_quality_combo)
        self.status_label = QLabel("–")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.status_label)

        self.meta_summary = QLabel("–")
        self.meta_summary.setWordWrap(True)
        self.meta_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Metadata", self.meta_summary)
        # Plain text: a manifest's strings come from the file and must not be read as HTML.
        self.c2pa_label = QLabel("–")
        self.c2pa_label.setTextFormat(Qt.TextFormat.PlainText)
        self.c2pa_label.setWordWrap(True)
        self.c2pa_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.c2pa_label.setToolTip(VIEWS["c2pa"].about)
        form.addRow("Content Credentials", self.c2pa_label)
        self.gps_check = QCheckBox("Show GPS positions")
        self.gps_check.setToolTip("GPS tags are listed but their values hidden until asked for")
        self.gps_check.toggled.connect(self._on_gps)
        form.addRow(self.gps_check)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Group", "Tag", "Value"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(160)
        form.addRow(self.table)

    # -- what the Analysis view asks --------------------------------------------------------
    def shown(self) -> str:
        return str(self.show_combo.currentData())

    def beside(self) -> str:
        return str(self.beside_combo.currentData() or "")

    def select(self, shown: str | None = None, beside: str | None = None) -> None:
        for combo, value in ((self.show_combo, shown), (self.beside_combo, beside)):
            if value is not None and combo.findData(value) >= 0:
                combo.setCurrentIndex(combo.findData(value))

    def result(self, name: str) -> ViewResult | None:
        """The current image's result of view ``name``, if computed."""
        if self.sha256 is None:
            return None
        return self._cache.get(self.sha256, name)

    def computed(self) -> dict[str, ViewResult]:
        """The current image's views computed so far, by name, without their maps (their
        summaries and details, for records); ``result`` gives one with its map."""
        return self._cache.results(self.sha256)

    def map_for(self, name: str, analysis: Analysis | None) -> np.ndarray | None:
        if name == NCL:
            return analysis.probability if analysis is not None else None
        result = self.result(name) if name else None
        return None if result is None else result.map

    def shown_map(self, analysis: Analysis | None) -> np.ndarray | None:
        return self.map_for(self.shown(), analysis)

    def beside_map(self, analysis: Analysis | None) -> np.ndarray | None:
        return self.map_for(self.beside(), analysis) if self.beside() else None

    def set_model_map(self, probability: np.ndarray | None) -> None:
        """The model's map of the image shown, when its analysis arrives (or None; another
        model's, after a change of model or mode): a combined view made with another map, or
        none, is made again with this one; it is made for every analysed image (its finding
        is in the Result panel)."""
        if probability is self.model_map:
            return
        self.model_map = probability
        made = self._cache.peek(self.sha256, "combined")
        if (
            made is not None
            and probability is not None
            and self._made_with.get(self.sha256) != _fingerprint(probability)
        ):
            self._cache.discard("combined", [self.sha256])  # made with another map
            self.changed.emit()
        self._request()  # with the model's map, the combined evidence is made for every image

    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    # -- images -----------------------------------------------------------------------------
    def set_image(self, evidence: Evidence | None, sha256: str | None = None) -> None:
        """A new image is shown (None: none); its views come from the cache or a job.

        ``sha256``: of the evidence's bytes when already known (default: hashed here).
        """
        self.evidence = evidence
        self.sha256 = None if evidence is None else sha256 or evidence.sha256
        self._cache.focus(self.sha256)
        if self._job is not None and self._job_sha != self.sha256:
            self._job.cancel()
        self._show_metadata()
        self._show_status()
        self._request()
        self.changed.emit()

    def _wanted(self) -> list[str]:
        names = [n for n in (self.shown(), self.beside()) if n and n != NCL]
        names.append(_GPS_KEY if self.gps_check.isChecked() else "metadata")
        names.append("c2pa")
        if self.model_map is not None:  # its finding, beside the model's, for every image
            names.append("combined")
        done = self._cache.names(self.sha256)
        return [n for n in dict.fromkeys(names) if n not in done]

    def _request(self) -> None:
        if self.evidence is None or self.sha256 is None or self.is_busy():
            return
        names = self._wanted()
        if not names:
            return
        # A copy of the fields (no pixels or bytes copied): what the views cache on it, such as
        # the grey levels (4 bytes a pixel), goes when the job ends.
        evidence, sha = replace(self.evidence), self.sha256
        computed_in = self.computed_in
        params = {"ela": {"quality": self.ela_quality()}, "combined": {"model_map": self.model_map}}

        def work(ctx: JobContext) -> tuple[str, dict[str, ViewResult]]:
            import threading

            out: dict[str, ViewResult] = {}
            for key in names:
                if ctx.cancelled():
                    raise Cancelled()
                ctx.emit(Computing(key))
                computed_in.append(threading.current_thread().name)
                name = "metadata" if key == _GPS_KEY else key
                kwargs = {"show_gps": True} if key == _GPS_KEY else params.get(key, {})
                try:
                    if key == "combined":  # as a report makes it: the report's finding
                        out[key] = view_as_reported("combined", evidence, kwargs)
                    else:
                        out[key] = compute_view(name, evidence, **kwargs)
                except Exception as exc:  # a bug or a hostile file: this view's, not the others'
                    text = f"{type(exc).__name__}: {exc}"
                    out[key] = ViewResult(name, None, f"failed: {text}", False, {"error": text})
            return sha, out

        job = Job("forensic views", work)
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_results)
        job.failed.connect(self._on_failed)
        job.ended.connect(self._on_ended)
        self._job, self._job_sha = job, sha
        self._job_map = self.model_map  # the map its combined view is made with
        self.computing.emit(True)
        self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: JobEvent) -> None:
        if isinstance(event, Computing) and self._job_sha == self.sha256:
            if event.name == "combined" and "combined" not in (self.shown(), self.beside()):
                return  # made for the Result panel's finding; this line is the maps'
            title = VIEWS.get(event.name.split("+")[0])
            self.status_label.setText(f"computing {title.title if title else event.name}…")

    @Slot(object)
    def _on_results(self, payload: tuple[str, dict[str, ViewResult]]) -> None:
        sha, results = payload
        if "combined" in results and sha == self.sha256 and self._job_map is not self.model_map:
            del results["combined"]  # the model's map changed while it ran: made again
        elif "combined" in results and self._job_map is not None:
            self._made_with[sha] = _fingerprint(self._job_map)
        ela_result = results.get("ela")
        if ela_result is not None and ela_result.details.get("quality_requested") not in (
            None,
            self.ela_quality(),
        ):
            del results["ela"]  # the quality was changed while it ran: computed again
        self._cache.put(sha, results)
        if sha == self.sha256:
            self._show_metadata()
            self._show_status()
            self.changed.emit()

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.status_label.setText(f"views failed: {text}")

    @Slot()
    def _on_ended(self) -> None:
        self._job = None
        self.computing.emit(False)
        self._request()  # the image or the selection changed meanwhile

    # -- controls ---------------------------------------------------------------------------
    @Slot()
    def _on_selection(self) -> None:
        self._show_status()
        self._request()
        self.changed.emit()

    def ela_quality(self) -> int | str:
        """The quality ELA re-saves at: a number, or ``auto``."""
        return self.ela_quality_combo.currentData()

    @Slot()
    def _on_ela_quality(self) -> None:
        self._cache.discard("ela")
        self._show_status()
        self._request()
        self.changed.emit()

    @Slot(bool)
    def _on_gps(self, on: bool) -> None:
        self._show_metadata()
        self._request()

    def _show_status(self) -> None:
        lines = []
        for name in dict.fromkeys(n for n in (self.shown(), self.beside()) if n and n != NCL):
            result = self.result(name)
            title = VIEWS[name].title
            if result is None:
                lines.append(f"{title}: computing…" if self.evidence else f"{title}: no image")
            else:
                lines.append(f"{title}: {result.summary}")
        self.status_label.setText("\n".join(lines) or "the model's probability map")

    def _show_metadata(self) -> None:
        self._show_credentials()
        key = _GPS_KEY if self.gps_check.isChecked() else "metadata"
        result = self.result(key) or self.result("metadata")
        self.table.setRowCount(0)
        if result is None:
            self.meta_summary.setText("reading…" if self.evidence else "–")
            return
        self.meta_summary.setText(result.summary)
        rows = result.details.get("table", [])
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                item = QTableWidgetItem(str(value))
                item.setToolTip(str(value))
                self.table.setItem(i, j, item)
        self.table.resizeRowsToContents()

    def _show_credentials(self) -> None:
        result = self.result("c2pa")
        if result is None:
            self.c2pa_label.setText("reading…" if self.evidence else "–")
            return
        lines = result.details.get("lines") or [result.summary]
        self.c2pa_label.setText("\n".join(str(line) for line in lines))
