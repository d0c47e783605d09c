"""The rows of a report in input order, each image read once.

The model analyzes image *n+1* while a worker thread draws image *n* from the ``Evidence``
that came with its analysis (``Predictor.analyze_stream``): the file is read, hashed and
decoded once, ahead of the model, and never again for the pictures or the views. The drawing
threads run at the lowest priority (``ncl_core.cpu.yield_to_other_threads``), on what the
model leaves idle; when the model would have to wait for a row, its own thread draws it.

Finished analyses can be handed in (``Finished``) so that a report of work already done, such
as the app's batch export, does not run the model again: the file is still read once, for its
pictures, and an analysis is reused only when the file's bytes are the ones analyzed, with the
report's model and mode (its threshold is applied without inference).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # builtin from Python 3.11
from pathlib import Path
from typing import Any, Protocol

from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.cpu import yield_to_other_threads
from ncl_core.data.io import is_image_file
from ncl_core.evidence.image import Evidence, read_ahead
from ncl_core.report.artefacts import RowFiles, build_skipped_row, draw_row
from ncl_core.report.folder import ReportOptions, inference_settings
from ncl_core.settings import InferenceSettings

# Threads drawing pictures: half the cores, leaving the rest to decoding and the model.
RENDER_THREADS = max(1, min(6, (os.cpu_count() or 2) // 2))
_MAX_PENDING = 2 * RENDER_THREADS  # analyzed images waiting: bounds memory (one map each)
RESCUE_AFTER_S = 1.0  # how long the model waits for a row a drawing thread started

Drawn = tuple[dict[str, Any], RowFiles]  # a row and its picture files, not written yet


def drawing_pool() -> ThreadPoolExecutor:
    """The threads that draw rows: ``RENDER_THREADS``, each at the lowest priority."""
    return ThreadPoolExecutor(
        RENDER_THREADS, thread_name_prefix="ncl-report-draw", initializer=yield_to_other_threads
    )


class _Job:
    """One row to draw (``draw_row``, which only computes), by a drawing thread or by the
    model's thread.

    A drawing thread at the lowest priority may get no core while the machine is busy with
    other programs. The model's thread then draws the rows nobody started (``run``), and the
    oldest row, when a drawing thread started it but has not finished it within
    ``RESCUE_AFTER_S``, again (``settle``): the first drawing to finish is the row, and the
    other, having written nothing, is dropped.
    """

    def __init__(self, fn: Callable[..., Drawn], *args: Any) -> None:
        self.future: Future[Drawn] = Future()
        self._call: tuple[Callable[..., Drawn], tuple[Any, ...]] | None = (fn, args)
        self._claim = threading.Lock()
        self._finish = threading.Lock()

    def run(self) -> None:
        """Draw the row here, unless someone already is (or did)."""
        if self._claim.acquire(blocking=False):
            self._draw()

    def settle(self, patience_s: float) -> None:
        """Return once the row is drawn: drawn here if nobody started it, or if whoever did has
        not finished within ``patience_s``."""
        self.run()
        try:
            self.future.exception(timeout=patience_s)
        except FutureTimeout:
            self._draw()

    def _draw(self) -> None:
        call = self._call
        if call is None:
            return  # drawn already
        fn, args = call
        error: BaseException | None = None
        try:
            drawn = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the row
            drawn, error = None, exc
        with self._finish:
            if self.future.done():
                return
            self._call = None  # the evidence and its map are not kept once the row is drawn
            if error is None:
                self.future.set_result(drawn)
            else:
                self.future.set_exception(error)


Result = tuple[Evidence | None, Analysis | AnalysisError]


class BatchPredictor(Protocol):
    """The part of ``ncl_core.inference.predictor.Predictor`` a batch needs."""

    model_id: str
    model_sha256: str
    device: Any

    def analyze_stream(
        self, paths: Iterable[str | Path | Evidence], settings: InferenceSettings | None = ...
    ) -> Iterator[Result]: ...


class RowSink(Protocol):
    def write(self, job: Future[Drawn]) -> None: ...


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(path))


class Finished:
    """Analyses already made, by file: ``(Evidence or path, Analysis)`` pairs.

    Errors (``AnalysisError``) and analyses of bare arrays are left out: those files are
    analyzed again. ``take`` hands out an analysis only if it was made with ``model_sha256``
    in ``mode``.
    """

    def __init__(self, results: Iterable[tuple[Evidence | str | os.PathLike[str], Any]]) -> None:
        self._by_path: dict[str, tuple[Evidence | None, Analysis]] = {}
        for source, result in results:
            if not isinstance(result, Analysis):
                continue
            evidence = source if isinstance(source, Evidence) else None
            path = evidence.path if evidence is not None else source
            if path is not None:
                self._by_path[_key(path)] = (evidence, result)

    def take(
        self, path: Path, model_sha256: str, mode: str
    ) -> tuple[Evidence | None, Analysis] | None:
        found = self._by_path.get(_key(path))
        if found is None:
            return None
        analysis = found[1]
        if analysis.model_sha256 != model_sha256 or analysis.settings.get("mode") != mode:
            return None
        return found


def stream_rows(
    predictor: BatchPredictor,
    todo: list[Path],
    known: dict[Path, str | None],
    options: ReportOptions,
    mode: str,
    next_index: int,
    pool: ThreadPoolExecutor,
    writer: RowSink,
    cancel: Callable[[], bool] | None,
    finished: Finished | None = None,
) -> None:
    """Analyze ``todo`` in order; rows are drawn in ``pool`` (see ``drawing_pool``), or in this
    thread when the model would wait for them, and written in input order.

    A file that is not an image by its name gets a "skipped" row (hashed, never decoded).
    ``mode`` is the mode really used (``auto`` resolved), which finished analyses must share.
    """
    if not todo or (cancel is not None and cancel()):
        return
    images = [p for p in todo if is_image_file(p)]
    reuse: dict[Path, tuple[Evidence | None, Analysis]] = {}
    if finished is not None:
        for path in images:
            if (found := finished.take(path, predictor.model_sha256, mode)) is not None:
                reuse[path] = found
    fresh = [p for p in images if p not in reuse]
    analyzed = _analyze(predictor, fresh, options)
    # Files with a finished analysis are still read once, ahead, for their pictures.
    reread = read_ahead([reuse[p][0] or p for p in images if p in reuse]) if reuse else None
    pending: deque[_Job] = deque()
    try:
        for i, path in enumerate(todo):
            index = next_index + i
            if not is_image_file(path):
                job = _Job(_skipped, index, path, known.get(path))
            else:
                if path in reuse:
                    assert reread is not None
                    evidence, result = _reused(predictor, next(reread), reuse[path][1], options)
                else:
                    evidence, result = next(analyzed)
                if isinstance(result, Analysis):  # seen at the report's threshold
                    result = result.at(float(options.threshold))
                args = (index, path, evidence, result, options.thumbnails)
                job = _Job(draw_row, *args, known.get(path), options.views, options.pictures)
            pool.submit(job.run)
            pending.append(job)
            if len(pending) > _MAX_PENDING:
                # Bounds the images in memory: the rows nobody started are drawn here, and the
                # oldest is waited for (drawn here too if its drawing thread gets no core).
                for waiting in list(pending):
                    waiting.run()
                pending[0].settle(RESCUE_AFTER_S)
            while pending and pending[0].future.done():
                writer.write(pending.popleft().future)
            if is_image_file(path) and cancel is not None and cancel():
                break
    finally:
        # Stop the read-ahead threads at once when we leave early.
        for stream in (analyzed, reread):
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    for job in pending:  # the model is done: this thread draws too
        job.run()
    for job in pending:
        job.settle(RESCUE_AFTER_S)
    while pending:
        writer.write(pending.popleft().future)


def _skipped(index: int, path: Path, known_sha256: str | None) -> Drawn:
    return build_skipped_row(index, path, known_sha256), RowFiles()


def _analyze(predictor: BatchPredictor, paths: list[Path], options: ReportOptions):
    if not paths:
        return iter(())
    return predictor.analyze_stream(paths, inference_settings(options))


def _reused(
    predictor: BatchPredictor,
    loaded: Evidence | AnalysisError,
    analysis: Analysis,
    options: ReportOptions,
) -> Result:
    """A finished analysis with the evidence read for its pictures; the file unreadable now
    is an error row, a file whose bytes changed since is analyzed again."""
    if isinstance(loaded, AnalysisError):
        return None, loaded
    if loaded.file_sha256 != analysis.sha256:
        stream = predictor.analyze_stream([loaded], inference_settings(options))
        try:
            return next(iter(stream))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    return loaded, analysis
