"""The Analysis view's saving: the mask, heatmap, overlay or JSON of the shown result.

``SaveActions`` (a part of ``AnalysisView``) checks that the result is the shown image's and
that the target lies outside every evidence folder (``refuse_inside_evidence``), then writes
the file in a job with ``write_output`` (both ``ncl_core.inference.outputs``): a saved file is the same
as the command line's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs
from PySide6.QtWidgets import QFileDialog

from app.analysis.state import AnalysisState
from app.display import OverlaySettings
from app.jobs import Job, JobContext, JobManager
from app.settings import Settings
from ncl_core.analysis import Analysis
from ncl_core.errors import EvidenceFolderError
from ncl_core.inference.outputs import (
    OUTPUT_KINDS,
    default_output_folder,
    output_name,
    refuse_inside_evidence,
    write_output,
)

KINDS = OUTPUT_KINDS  # mask, heatmap, overlay, json


def file_filter(kind: str) -> str:
    """The save dialog's file filter for ``kind``."""
    return "JSON (*.json)" if kind == "json" else "PNG image (*.png)"


def save_output(
    kind: str,
    target: Path,
    analysis: Analysis,
    image: np.ndarray,
    overlay: OverlaySettings,
    views: dict | None = None,
) -> Path:
    """Write ``kind`` of ``analysis`` at ``overlay.threshold`` to ``target``, drawn as
    ``overlay`` says (style, opacity, colour map); returns ``target``. The JSON carries the
    finding at that threshold and the summaries of ``views`` (the forensic views computed)."""
    extra = {"views": {n: r.record() for n, r in views.items()}} if views else None
    return write_output(
        kind,
        target,
        analysis.at(overlay.threshold),
        image,
        cmap=overlay.colormap,
        overlay=overlay.overlay,
        alpha=overlay.opacity,
        extra=extra,
    )


class SaveActions:
    """The Save buttons and menu entries of ``AnalysisView`` (which this is a part of)."""

    state: AnalysisState
    settings: Settings
    jobs: JobManager
    _evidence: Callable[[], list[Path]]

    # -- saving -------------------------------------------------------------------------------
    def evidence_inputs(self) -> list[Path]:
        """Files and folders no save may write into: the session's evidence (the open image,
        the one opening and the batch's inputs)."""
        return self.state.session.evidence_roots()

    def is_savable(self) -> bool:
        """True when the result on screen belongs to the image on screen."""
        state = self.state
        a = state.analysis
        return (
            a is not None
            and state.image is not None
            and state.path is not None
            and Path(a.source or "") == state.path
        )

    def default_save_path(self, kind: str) -> Path:
        """Where the save dialog starts: the remembered folder (never an evidence folder), else
        the user's documents; named like ``photo.mask.png``."""
        folder = default_output_folder(
            self.settings.get("dirs/save"),
            self.evidence_inputs(),
            platformdirs.user_documents_dir(),
        )
        return folder / output_name(self.state.path or "analysis", kind)

    def ask_save_path(self, kind: str, suggested: Path) -> str:
        """The save dialog (tests replace this)."""
        target, _ = QFileDialog.getSaveFileName(
            self, f"Save {kind}", str(suggested), file_filter(kind)
        )
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
            refuse_inside_evidence(Path(target).parent, self.evidence_inputs(), what="folder")
        except EvidenceFolderError as exc:
            self.message.emit(f"Not saved: {exc}", "error")
            return None
        state = self.state
        analysis, image, overlay = state.analysis, state.image, state.overlay
        forensic = getattr(getattr(self, "panel", None), "forensic", None)
        views = forensic.computed() if forensic is not None and kind == "json" else None

        def write(ctx: JobContext) -> Path:
            return save_output(kind, Path(target), analysis, image, overlay, views)

        job = Job(f"save {kind}", write)
        job.succeeded.connect(lambda p: self.message.emit(f"Saved {p}", "success"))
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        return self.jobs.start(job)
