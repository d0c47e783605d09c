"""Background jobs: a function run by a QObject worker moved to its own QThread.

The worker talks to the window only through the job's signals; widgets are touched on the GUI
thread alone. Cancelling is cooperative: the function polls ``ctx.cancelled()`` (or registers
``ctx.on_cancel`` to forward the request, e.g. to ``Trainer.cancel``).

What a job reports while it runs (``ctx.emit``, delivered by ``Job.event``) is one of the event
classes below, which receivers tell apart with ``isinstance`` (or ``match``). The events of
``ncl_core``'s trainer and batch report, which those jobs pass on as they come, are the plain
dicts that ``ncl_core`` documents (``CoreEvent``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ncl_core.errors import NCLError, classify

if TYPE_CHECKING:
    import numpy as np
    from PySide6.QtGui import QImage

    from ncl_core.analysis import Analysis, AnalysisError
    from ncl_core.evidence.image import Evidence
    from ncl_core.evidence.scan import ScanProblem
    from ncl_core.views import ViewResult

log = logging.getLogger("ncl_forensics.gui")


# -- events: what a job reports while it runs -------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stage:
    """What the job does now (a line for the status)."""

    text: str


@dataclass(frozen=True, slots=True)
class Progress:
    """The fraction of the current stage done, 0 to 1."""

    fraction: float


@dataclass(frozen=True, slots=True)
class DeviceUsed:
    """Where the model runs, as the loaded predictor describes it."""

    device: str


@dataclass(frozen=True, slots=True)
class Warned:
    """A warning for the user; the job goes on."""

    text: str


@dataclass(frozen=True, slots=True)
class ImageRead:
    """The analysis job read its file: the evidence to show (its image a view of ``pixels``),
    the file's hash, and the pixels as a ``Format_RGB32`` QImage."""

    evidence: Evidence
    sha256: str | None
    pixels: QImage


@dataclass(frozen=True, slots=True)
class GroundTruthRead:
    """A ground-truth mask of the image being analyzed, and what its reading warned of."""

    path: Path
    mask: np.ndarray
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FilesFound:
    """The batch's inputs were searched: the new image files, the files that are not images,
    the paths that could not be searched, and how many files were found in all."""

    inputs: list[Path]
    files: list[Path]
    skipped: list[Path]
    problems: list[ScanProblem]
    n_found: int


@dataclass(frozen=True, slots=True)
class Running:
    """The batch analyzes this file now."""

    path: Path


@dataclass(frozen=True, slots=True)
class FileResult:
    """A batch file's result (None: there is no model), its thumbnail and, when asked for,
    its combined evidence (``ncl_core.views``, without its map)."""

    path: Path
    result: Analysis | AnalysisError | None
    thumb: QImage | None = None
    combined: ViewResult | None = None


@dataclass(frozen=True, slots=True)
class Computing:
    """The forensic-views job computes this view now."""

    name: str


@dataclass(frozen=True, slots=True)
class FeaturesFound:
    """The shared-regions job has the features of ``done`` of the ``total`` images it reads."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class History:
    """A resumed training run's events so far, from its event log."""

    events: list[dict[str, Any]]


CoreEvent: TypeAlias = dict[str, Any]  # an ncl_core event (trainer, batch report), passed on
JobEvent: TypeAlias = (
    Stage
    | Progress
    | DeviceUsed
    | Warned
    | ImageRead
    | GroundTruthRead
    | FilesFound
    | Running
    | FileResult
    | Computing
    | History
    | CoreEvent
)


class JobContext:
    """What a job's function gets in the worker thread: events out, cancel requests in."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._cancel = threading.Event()
        self._on_cancel: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def emit(self, event: JobEvent) -> None:
        """Send an event to the GUI thread."""
        self._job.event.emit(event)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the GUI thread) when the job is cancelled; now if it was."""
        with self._lock:
            self._on_cancel.append(callback)
            already = self._cancel.is_set()
        if already:
            callback()

    def request_cancel(self) -> None:
        with self._lock:
            self._cancel.set()
            callbacks = list(self._on_cancel)
        for callback in callbacks:
            callback()


class _Runner(QObject):
    """The worker object: lives in the job's thread and runs the function there."""

    def __init__(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        super().__init__()
        self._job = job
        self._fn = fn

    @Slot()
    def run(self) -> None:
        job, ctx = self._job, self._job.ctx
        try:
            result = self._fn(ctx)
        except Exception as exc:
            kind = classify(exc)
            if kind == "cancelled":
                job.was_cancelled.emit()
            elif kind == "bug":  # not the user's doing: log it, show one line
                log.exception("job %s failed", job.name)
                job.failed.emit(f"Unexpected error in {job.name}: {type(exc).__name__}: {exc}")
            else:  # the message already says which file and what to do
                if not isinstance(exc, NCLError):
                    log.exception("job %s failed", job.name)
                job.failed.emit(str(exc))
        else:
            if ctx.cancelled():
                job.was_cancelled.emit()
            else:
                job.succeeded.emit(result)
        finally:
            # quit() directly (thread-safe), not through a queued signal: a window waiting
            # for this thread on close blocks the GUI event loop that would deliver it.
            QThread.currentThread().quit()


class Job(QObject):
    """One background task. Signals arrive on the GUI thread, ``ended`` always last."""

    event = Signal(object)  # JobEvent
    succeeded = Signal(object)  # the function's return value
    failed = Signal(str)  # one clear line for the user
    was_cancelled = Signal()
    ended = Signal()

    def __init__(self, name: str, fn: Callable[[JobContext], Any], visible: bool = True) -> None:
        """``visible=False``: a quick job the user need not hear about (overlay drawing)."""
        super().__init__()
        self.name = name
        self.visible = visible
        self.ctx = JobContext(self)
        self._thread = QThread()
        self._thread.setObjectName(f"ncl-{name}")
        self._runner = _Runner(self, fn)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._thread.finished.connect(self._on_thread_finished)
        self._started = False
        self._ended = False

    def start(self) -> Job:
        self._started = True
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop at its next check (thread-safe, returns at once)."""
        self.ctx.request_cancel()

    def is_running(self) -> bool:
        return self._started and not self._ended

    def wait(self, timeout_s: float) -> bool:
        """Block until the worker thread has finished; False on timeout."""
        return self._thread.wait(max(0, int(timeout_s * 1000)))

    @Slot()
    def _on_thread_finished(self) -> None:
        if not self._ended:
            self._ended = True
            self.ended.emit()


class JobManager(QObject):
    """Keeps every running job alive and lets the window cancel and wait for all of them."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self.shutting_down = False  # set when the window closes: no new work starts

    def start(self, job: Job) -> Job:
        """Run ``job``; while shutting down it is returned without being started."""
        if self.shutting_down:
            log.info("not starting %s: the window is closing", job.name)
            return job
        self._jobs.append(job)
        job.ended.connect(self._on_ended)
        job.start()
        self.changed.emit()
        return job

    def running(self) -> list[Job]:
        return [job for job in self._jobs if job.is_running()]

    def cancel_all(self) -> None:
        for job in self.running():
            job.cancel()

    @Slot()
    def _on_ended(self) -> None:
        self._jobs = [job for job in self._jobs if job.is_running()]
        self.changed.emit()
