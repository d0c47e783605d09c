"""Which model and device the window uses, the registry's models, and the loaded predictors.

``ModelState`` lives on the GUI thread and is the GUI's one reader of the model registry: it
lists the models (``models``, announced by ``list_changed``), says which one is active
(``info``, announced by ``changed``) and runs the registry's changes (import, registering a
trained model, activate, export, remove) in jobs, listing the registry again after each. A
``PredictorSlot`` holds one loaded ``Predictor`` and is used by one job at a time (the
predictor is thread-confined), so the analysis view and the batch view each own a slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.jobs import Job, JobContext, JobManager
from ncl_core.config import ModelConfig
from ncl_core.infer import Predictor
from ncl_core.modelfile import ModelFileError, ModelInfo, ModelRegistry


class ModelState(QObject):
    """The active model (or why there is none), the chosen device, and the registry's list."""

    changed = Signal()  # the active model, the device or the loading state changed
    list_changed = Signal(object)  # list[ModelInfo]: the registry was listed again

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

    # -- the active model ---------------------------------------------------------------------
    def set_model(self, info: ModelInfo | None, error: str | None = None) -> None:
        self.info, self.error, self.loading = info, error, False
        self.changed.emit()

    def set_device(self, device: str) -> None:
        self.device = device
        self.loaded_device = None
        self.changed.emit()

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


class PredictorSlot:
    """One predictor, reloaded when the model file or the device changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._predictor: Predictor | None = None

    def get(self, info: ModelInfo, device: str) -> Predictor:
        """The predictor for ``info`` on ``device`` (called in the job's thread)."""
        key = (info.sha256, device)
        with self._lock:
            if self._key != key or self._predictor is None:
                self._predictor = None  # free the old weights before loading new ones
                self._predictor = Predictor.load(info.path, device=device)
                self._key = key
            return self._predictor
