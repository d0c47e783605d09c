"""The batch job's work, in its thread: find the new files under the inputs, analyze them
one after another (``Predictor.analyze_stream``: each file read once) and send each row's
result, with a thumbnail drawn from the pixels the model analyzed, to the Batch view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.batch.table import thumbnail
from app.jobs import DeviceUsed, FileResult, FilesFound, JobContext, Running
from app.model_state import SharedPredictor
from app.qtimage import qimage_rgb
from ncl_core.analysis import Analysis
from ncl_core.data.io import is_image_file
from ncl_core.evidence.scan import scan_inputs
from ncl_core.report.forensic_views import view_as_reported
from ncl_core.settings import InferenceSettings


def analyze_batch(
    ctx: JobContext,
    inputs: list[Path],
    known: set[str],
    model: tuple[Any, str],
    mode: str,
    threshold: float,
    load: Callable[[Any, str], SharedPredictor],
    combined: bool = False,
) -> None:
    """The batch job: find the files under ``inputs`` not ``known`` yet and analyze them
    (``load``: ``ModelState.predictor``, the window's one predictor); with ``combined``, each
    analyzed image's combined evidence too, as a batch report makes it."""
    info, device = model
    scan = scan_inputs(inputs)
    new = [p for p in scan.files if str(p) not in known]
    files = [p for p in new if is_image_file(p)]
    ctx.emit(
        FilesFound(
            inputs=inputs,
            files=files,
            skipped=[p for p in new if not is_image_file(p)],
            problems=list(scan.problems),
            n_found=len(scan.files),
        )
    )
    if not files:
        return
    if info is None:
        for path in files:
            ctx.emit(FileResult(path, None))
        return
    predictor = load(info, device)
    ctx.emit(DeviceUsed(predictor.device))
    # Each file is read once, a few ahead of the model; of its pixels, a row keeps only the
    # thumbnail (the full images go as the stream moves on).
    stream = predictor.analyze_stream(files, InferenceSettings(mode=mode), cancel=ctx.cancelled)
    try:
        ctx.emit(Running(files[0]))
        for i, (path, (evidence, result)) in enumerate(zip(files, stream)):
            thumb = None
            if isinstance(result, Analysis):
                result = result.at(threshold)  # the batch's threshold, shown in its rows
            found = None
            if evidence is not None and isinstance(result, Analysis):
                thumb = qimage_rgb(thumbnail(evidence.image, result))
                if combined:  # its finding for the row; the map is the report's to draw
                    params = {"model_map": result.probability}
                    found = view_as_reported("combined", evidence, params, keep_map=False)
            ctx.emit(FileResult(path, result, thumb, found))
            if ctx.cancelled():
                break
            if i + 1 < len(files):
                ctx.emit(Running(files[i + 1]))
    finally:
        stream.close()  # stops the predictor's read-ahead thread at once
