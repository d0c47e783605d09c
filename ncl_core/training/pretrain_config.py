"""``PretrainConfig``: the settings of the self-supervised stage (ncl_core/training/pretrain.py),
torch-free so that the command line checks them before anything heavy loads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ncl_core.jsonconfig import JsonConfig
from ncl_core.network.net_config import ModelConfig


@dataclass
class PretrainConfig(JsonConfig):
    """Every setting of a self-supervised run; stored in the run folder for ``resume``."""

    photos: tuple[str, ...] = ()  # folders of authentic photos
    out: str = "encoder.safetensors"
    run_dir: str = "pretrain-run"
    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(backbone="resnet18", output_stride=16)
    )
    crop: int = 128  # px a side of each view
    batch_size: int = 16  # items (regions) per step; each gives VIEWS crops
    steps: int = 20000
    time_limit_min: float | None = None  # stop (and write the encoder) after this long
    lr: float = 0.05  # SGD with momentum, cosine decay over the steps or the time limit
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    tau: float = 0.1
    hard_weight: float = 1.0  # weight of the pair-against-the-other-chain term of the loss
    dim: int = 128  # embedding size of the projection head
    seed: int = 0
    workers: int = 1
    device: str = "auto"
    amp: bool = True
    checkpoint_every: int = 200
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.crop < 32 or self.crop % 32:
            raise ValueError(f"crop must be a multiple of 32 px, at least 32, got {self.crop}")
        for name in ("batch_size", "steps", "checkpoint_every", "log_every", "dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2: the other items are the negatives")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau must be a positive number, got {self.tau}")
        if not (math.isfinite(self.hard_weight) and self.hard_weight >= 0):
            raise ValueError(f"hard_weight must be a number >= 0, got {self.hard_weight}")
        if self.time_limit_min is not None and not self.time_limit_min > 0:
            raise ValueError(f"time_limit_min must be positive, got {self.time_limit_min}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        data = dict(data)
        if isinstance(data.get("model"), dict):
            data["model"] = ModelConfig.from_dict(data["model"])
        return super().from_dict(data)
