"""Where a run stands (``Progress``, checkpointed) and what one ``fit()`` works with
(``RunState``): the two dataclasses the trainer's setup, epochs and end-of-epoch share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ncl_core.network.model import NCLNet


@dataclass
class Progress:
    """Where a run stands. Checkpointed key by key, so that a resume continues from it."""

    step: int = 0  # optimizer steps done (skipped non-finite ones included)
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # global batches of the current epoch done
    best_f1: float = -1.0  # the best validation F1 so far (-1: none yet)
    best_metrics: dict[str, float] = field(default_factory=dict)
    nonfinite: int = 0  # non-finite losses in a row
    elapsed_s: float = 0.0  # training time, resumes included
    time_up: bool = False  # the run stopped at its time limit (a resume needs more time)
    baseline: dict[str, float] = field(default_factory=dict)  # a fine-tune's base model,
    # measured on the validation (held-out) images before the first step

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def update_from(self, checkpoint: dict[str, Any]) -> None:
        for key in vars(self):
            if key in checkpoint:
                setattr(self, key, checkpoint[key])


@dataclass
class RunState:
    """What one ``fit()`` works with: made by the trainer's setup, advanced by its epochs."""

    device: torch.device
    amp: torch.dtype | None
    model: NCLNet  # what is validated, averaged, checkpointed and saved
    train_model: torch.nn.Module  # what forward and backward run through (DDP's wrapper)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    train_set: Dataset
    val_set: Dataset | None
    total_steps: int
    model_path: Path
    meta: dict[str, Any]  # what the model file records: the data, the parent model
    progress: Progress = field(default_factory=Progress)
    ema: dict[str, torch.Tensor] | None = None  # the weights' moving average (rank 0), if kept
    t_start: float = 0.0  # the clock when this invocation's first step started
    elapsed_before: float = 0.0  # training time of the sessions before this one
    deadline: float | None = None  # the clock at which the time limit is up
    last_snapshot: float = 0.0
    recent: list[float] = field(default_factory=list)  # the last steps' durations
    out_of_time: bool = False
