"""Which model and device the window uses, and the predictors loaded for them.

``ModelState`` lives on the GUI thread and says what is active; a ``PredictorSlot`` holds one
loaded ``Predictor`` and is used by one job at a time (the predictor is thread-confined), so
the analysis view and the batch view each own a slot.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from ncl_core.config import ModelConfig
from ncl_core.infer import Predictor
from ncl_core.modelfile import ModelFileError, ModelInfo


class ModelState(QObject):
    """The active model (or why there is none) and the chosen device name."""

    changed = Signal()

    def __init__(self, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.info: ModelInfo | None = None
        self.error: str | None = None
        self.device = device
        self.loaded_device: str | None = None  # as the predictor describes it, once loaded
        self.loading = True

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
