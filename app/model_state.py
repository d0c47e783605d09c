"""Which model and device the window uses, the registry's models, and the loaded predictors.

``ModelState`` lives on the GUI thread and is the GUI's one reader of the model registry: it
lists the models (``models``, announced by ``list_changed``), says which one is active
(``info``, announced by ``changed``) and runs the registry's changes (import, registering a
trained model, activate, export, remove) in jobs, listing the registry again after each.

It also owns the window's one loaded ``Predictor``: every view's jobs get it from
``ModelState.predictor`` (in their thread), so the weights are in memory once. A ``Predictor``
is not safe for concurrent use, so jobs get it wrapped in a ``SharedPredictor``, which runs one
analysis at a time (first come, first served; a job waiting for its turn still notices being
cancelled). A change of the active model or of the device lets the loaded one go; the next
analysis, of any view, loads the new one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.jobs import Job, JobContext, JobManager
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.errors import Cancelled
from ncl_core.evidence.image import Evidence
from ncl_core.inference.predictor import InferenceSettings, Predictor
from ncl_core.models.modelfile import ModelFileError, ModelInfo, ModelRegistry
from ncl_core.network.net_config import ModelConfig


class ModelState(QObject):
    """The active model (or why there is none), the chosen device, and the registry's list."""

    changed = Signal()  # the active model, the device or the loading state changed
    list_changed = Signal(object)  # list[ModelInfo]: the registry was listed again
    # The lookup of the active model ended (``info`` or ``error`` says what it found); emitted
    # in the same slot that ends ``loading``, so nobody sees one without the other.
    resolved = Signal()

    def __init__(
        self, jobs: JobManager, device: str = "auto", parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.info: ModelInfo | None = None
        self.error: str | None = None
        self.device = device
        self.loaded_device: str | None = None  # as the predictor describes it, once loaded
        self.loading = True
        self.models: list[ModelInfo] = []  # the registry's models, bundled first
        self.predictors = PredictorHolder()  # the one loaded predictor, shared by the views

    # -- the active model ---------------------------------------------------------------------
    def set_model(self, info: ModelInfo | None, error: str | None = None) -> None:
        if (info and info.sha256) != (self.info and self.info.sha256):
            self.predictors.release()  # the next analysis loads the new model
        self.info, self.error, self.loading = info, error, False
        self.changed.emit()

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.predictors.release()
        self.device = device
        self.loaded_device = None
        self.changed.emit()

    def predictor(self, info: ModelInfo, device: str) -> SharedPredictor:
        """The loaded predictor of ``info`` on ``device``, loaded first if it is not (called
        in a job's thread: loading takes a while)."""
        return self.predictors.get(info, device)

    def set_loaded_device(self, device: str) -> None:
        if device != self.loaded_device:
            self.loaded_device = device
            self.changed.emit()

    def model_config(self) -> ModelConfig:
        """The active model's config; the default one when there is no model."""
        return self.info.config if self.info is not None else ModelConfig()

    def require(self) -> ModelInfo:
        """The active model, or ``ModelFileError`` saying why there is none."""
        if self.info is None:
            raise ModelFileError(self.error or "no model is loaded yet; wait a moment and retry")
        return self.info

    # -- the registry (every call reads or hashes model files: jobs) ---------------------------
    def resolve(self) -> Job:
        """Find the active model (the registry's default) and list the registry, in a job.

        Without any model, ``info`` stays None and ``error`` says why.
        """

        def resolve(ctx: JobContext) -> tuple[ModelInfo | None, str | None, list[ModelInfo]]:
            registry = ModelRegistry()
            infos = registry.list()
            try:
                return registry.default(), None, infos
            except ModelFileError as exc:
                return None, str(exc), infos

        job = Job("model lookup", resolve)
        job.succeeded.connect(self._on_resolved)
        job.failed.connect(lambda text: self.set_model(None, text))
        return self.jobs.start(job)

    @Slot(object)
    def _on_resolved(self, result: tuple[ModelInfo | None, str | None, list[ModelInfo]]) -> None:
        info, error, infos = result
        self.models = list(infos)
        self.set_model(info, error)
        self.list_changed.emit(self.models)
        self.resolved.emit()

    def refresh(self, failed: Callable[[str], Any] | None = None) -> Job:
        """List the registry again (a model was trained, or the folder changed by hand)."""
        return self._registry_job("model list", lambda registry: None, failed=failed)

    def import_model(
        self,
        path: str | Path,
        done: Callable[[ModelInfo], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Validate a model file and copy it into the registry."""
        return self._registry_job(
            "import model", lambda registry: registry.import_model(path), done, failed
        )

    def register_trained(
        self,
        path: str | Path,
        done: Callable[[ModelInfo], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Add a model file a training run wrote to the registry (validated as an import)."""
        return self._registry_job(
            "register model", lambda registry: registry.register_trained(path), done, failed
        )

    def activate(
        self,
        info: ModelInfo,
        done: Callable[[ModelInfo], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Make ``info`` the registry's default and the window's active model."""

        def chosen(model: ModelInfo) -> None:
            self.set_model(model)
            if done is not None:
                done(model)

        return self._registry_job(
            "activate model", lambda registry: registry.set_default(info.id), chosen, failed
        )

    def export_model(
        self,
        info: ModelInfo,
        dest: Path,
        done: Callable[[Path], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Copy a model file out of the registry (the caller checks where it goes)."""
        return self._registry_job(
            "export model", lambda registry: registry.export_model(info.id, dest), done, failed
        )

    def remove(
        self,
        info: ModelInfo,
        done: Callable[[None], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Delete a model from the registry."""
        return self._registry_job(
            "remove model", lambda registry: registry.remove(info.id), done, failed
        )

    def _registry_job(
        self,
        name: str,
        fn: Callable[[ModelRegistry], Any],
        done: Callable[[Any], Any] | None = None,
        failed: Callable[[str], Any] | None = None,
    ) -> Job:
        """Run ``fn`` on the registry, then list it, in a job; ``done`` gets ``fn``'s result
        once the new list is in ``models``."""

        def work(ctx: JobContext) -> tuple[Any, list[ModelInfo]]:
            registry = ModelRegistry()
            result = fn(registry)
            return result, registry.list()

        def listed(out: tuple[Any, list[ModelInfo]]) -> None:
            result, infos = out
            self.models = list(infos)
            self.list_changed.emit(self.models)
            if done is not None:
                done(result)

        job = Job(name, work)
        job.succeeded.connect(listed)
        if failed is not None:
            job.failed.connect(failed)
        return self.jobs.start(job)


class _Turns:
    """A lock that serves the threads waiting for it in the order they came, and lets a
    waiting thread give up when its job is cancelled."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._busy = False

    def acquire(self, cancel: Callable[[], bool] | None = None) -> bool:
        """Wait for the turn; False (without it) when ``cancel()`` says so meanwhile."""
        me = object()
        with self._cond:
            self._queue.append(me)
            try:
                while self._busy or self._queue[0] is not me:
                    if cancel is not None and cancel():
                        return False
                    self._cond.wait(0.05)
                self._busy = True
                return True
            finally:
                self._queue.remove(me)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


class SharedPredictor:
    """A loaded ``Predictor`` that the window's jobs share: one analysis at a time.

    ``analyze`` holds the turn for one image, ``analyze_stream`` for each step (one image);
    the other attributes (``device``, ``info``, ``model_sha256``, ``effective``, …) are the
    predictor's own.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self._turns = _Turns()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.predictor, name)

    def analyze(
        self,
        source: Evidence | str | Path | Any,
        settings: InferenceSettings | None = None,
        *,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Analysis:
        if not self._turns.acquire(cancel):
            raise Cancelled()
        try:
            return self.predictor.analyze(source, settings, progress=progress, cancel=cancel)
        finally:
            self._turns.release()

    def analyze_stream(
        self,
        sources: Iterable[str | Path | Evidence],
        settings: InferenceSettings | None = None,
        *,
        prefetch: int = 2,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[Evidence | None, Analysis | AnalysisError]]:
        stream = self.predictor.analyze_stream(sources, settings, prefetch=prefetch, cancel=cancel)
        try:
            while True:
                if not self._turns.acquire(cancel):
                    return
                try:
                    item = next(stream, None)
                finally:
                    self._turns.release()
                if item is None:
                    return
                yield item
        finally:
            stream.close()

    # The results of ``analyze_stream`` without the evidence: the Predictor's own, over the
    # turn-taking stream above.
    analyze_many = Predictor.analyze_many


class PredictorHolder:
    """The one loaded predictor, reloaded when the model file or the device changes.

    ``get`` is called in jobs' threads; ``release`` on the GUI thread, which it never blocks
    for a load. A job that holds a predictor keeps it while it runs, even after a release.
    """

    def __init__(self) -> None:
        self._load_lock = threading.Lock()  # one load at a time
        self._lock = threading.Lock()  # guards _key and _predictor, held briefly
        self._key: tuple[str, str] | None = None
        self._predictor: SharedPredictor | None = None

    @property
    def current(self) -> SharedPredictor | None:
        """The loaded predictor, if any."""
        with self._lock:
            return self._predictor

    def get(self, info: ModelInfo, device: str) -> SharedPredictor:
        """The predictor for ``info`` on ``device``, loaded if it is not the held one."""
        key = (info.sha256, device)
        with self._load_lock:
            with self._lock:
                if self._key == key and self._predictor is not None:
                    return self._predictor
                self._key = self._predictor = None  # free the old weights before loading
            predictor = SharedPredictor(Predictor.load(info.path, device=device))
            with self._lock:
                self._key, self._predictor = key, predictor
            return predictor

    def release(self) -> None:
        """Let the loaded predictor go (the active model or the device changed)."""
        with self._lock:
            self._key = self._predictor = None
