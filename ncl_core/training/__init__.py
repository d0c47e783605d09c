"""Training: ``TrainConfig`` and the ``Trainer`` (fit, validate, checkpoint, resume, cancel,
fine-tune), its events and their text, and the run folder it writes.

- ``config``: ``TrainConfig``, every setting (the CLI and the GUI fill the same dataclass);
- ``datasets``: the training and validation data of a run, and the order of its batches;
- ``setup`` / ``steps`` / ``keeping``: device, network, optimizer and schedule; one step and
  the moving average of the weights; validation, the best model, checkpoints and snapshots;
- ``state`` / ``trainer``: where a run stands, and the ``Trainer`` that advances it;
- ``events``: the events it emits and ``format_event``, the one text of each;
- ``run_dir``: the run folder — checkpoint format, event log, ``describe_run`` / ``list_runs``.

``python -m ncl_core.training [train|finetune] FLAGS`` is the entry point torchrun starts once
per process. The names below are imported on first use, so that reading a run folder
(``ncl_core.training.run_dir``) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ncl_core.errors import TrainingError
    from ncl_core.training.events import Event, TrainingEvent, format_event
    from ncl_core.training.run_dir import (
        CHECKPOINT_NAME,
        SNAPSHOT_NAME,
        RunSummary,
        describe_run,
        list_runs,
        past_events,
    )
    from ncl_core.training.train_config import TrainConfig
    from ncl_core.training.trainer import Trainer

_WHERE = {
    "TrainingError": "ncl_core.errors",
    "TrainConfig": "ncl_core.training.train_config",
    "Event": "ncl_core.training.events",
    "TrainingEvent": "ncl_core.training.events",
    "format_event": "ncl_core.training.events",
    "CHECKPOINT_NAME": "ncl_core.training.run_dir",
    "SNAPSHOT_NAME": "ncl_core.training.run_dir",
    "RunSummary": "ncl_core.training.run_dir",
    "describe_run": "ncl_core.training.run_dir",
    "list_runs": "ncl_core.training.run_dir",
    "past_events": "ncl_core.training.run_dir",
    "Trainer": "ncl_core.training.trainer",
}
__all__ = [
    "CHECKPOINT_NAME",
    "SNAPSHOT_NAME",
    "Event",
    "RunSummary",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "TrainingEvent",
    "describe_run",
    "format_event",
    "list_runs",
    "past_events",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
