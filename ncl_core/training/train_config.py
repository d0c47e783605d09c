"""``TrainConfig``: every training setting, filled alike by the CLI and the GUI.

Stored as ``config.json`` in the run folder and inside each checkpoint (so ``--resume`` needs
nothing else); the training recipe it encodes is described in docs/METHOD.md.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ncl_core.data.augment_config import AugmentConfig
from ncl_core.jsonconfig import JsonConfig
from ncl_core.network.net_config import LossConfig, ModelConfig
from ncl_core.settings import SELECT_BY
from ncl_core.training.recipes import SCRATCH

if TYPE_CHECKING:
    from ncl_core.data.synth.synth_config import SynthConfig

# Labeled validation images: whole at their own resolution (as tiled inference sees them) or
# resized to the crop side (as resize mode does).
VAL_MODES = ("native", "resize")
_NESTED = {"model": ModelConfig, "loss": LossConfig, "augment": AugmentConfig}


@dataclass
class TrainConfig(JsonConfig):
    """Every training setting; the CLI and the GUI both fill this one dataclass."""

    data: tuple[str, ...] = ()  # dataset folders or IMDL-BenCo JSON lists
    labeled_set: str | None = (
        None  # the name of the labeled set (ncl_core.training.labeled_sets) among ``data``
    )
    val: tuple[str, ...] = ()  # validation sets; empty = a hash split of ``data``
    synthetic: str | None = None  # folder of authentic photos: forgeries made on the fly
    synthetic_length: int = 2000  # synthetic items per epoch
    synthetic_authentic: float = 0.25  # share of untouched photos, so "nothing forged" is learned
    # The generator's other settings for the training forgeries (``SynthConfig`` fields; its
    # size, seed and authentic share come from above). Validation forgeries keep the defaults,
    # so that runs with different options are measured on the same items.
    synthetic_options: dict[str, Any] = field(default_factory=dict)
    out: str | None = None  # model file written (best by validation F1); None: in the run
    # folder, ``<run_dir>/<name>.safetensors`` (never the current folder)
    name: str | None = None  # None: "ncl-<run folder name>"
    register: bool = False  # the CLI adds the model to the registry when the run ends; kept
    # here so that a resumed run registers it too
    # Defaults: the from-scratch recipe (ncl_core/training/recipes.py), as the CLI and GUI use.
    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(
            backbone=SCRATCH.backbone, output_stride=SCRATCH.output_stride
        )
    )
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    base_model: str | None = None  # fine-tune from this model file (its config wins)
    # A new network whose encoder starts from this encoder file (``ncl-forensics pretrain``);
    # the encoder's backbone, output stride, ASPP width and noise stem win.
    init_encoder: str | None = None
    size: int = SCRATCH.size  # crop side ([paper] 512)
    epochs: int = SCRATCH.epochs
    steps: int | None = None  # total optimizer steps; overrides epochs when set
    batch_size: int = SCRATCH.batch_size
    lr: float | None = None  # None: 0.007 * batch / 4, and x0.1 when fine-tuning
    head_lr_mult: float = 10.0  # [paper, DeepLabV3+] ASPP / decoder / heads learn 10x faster
    freeze_bn: bool = False  # batch norms keep (and use) their running statistics while the
    # rest learns (ncl_core/training/steps.py: train_mode)
    freeze_backbone: bool = False  # fine-tuning: the backbone (and its batch norms) stays as
    # the base model has it; only the ASPP, decoder and heads learn, and nothing is computed
    # backwards through the backbone
    revive_dead: bool = False  # at the start (not on resume): give the decoder's dead narrow
    # channels fresh weights without changing the model's output (ncl_core/training/revive.py)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    warmup_steps: int = 0  # linear learning-rate ramp before the poly decay (large batches)
    workers: int = SCRATCH.workers
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # CUDA: bf16 where supported, else fp16; CPU: bf16 where it has the units
    val_every: int = 1  # epochs
    val_fraction: float = 0.1
    val_synthetic_length: int = 64
    val_limit: int | None = None  # validate on at most this many labeled images (spread evenly)
    val_mode: str = "native"  # labeled validation images: "native" (whole, at their own
    # resolution, as tiled inference sees them) or "resize" (to ``size``, as resize mode does)
    checkpoint_every: int = 200  # steps; a checkpoint is also written at every epoch end
    max_nonfinite: int = 5  # consecutive non-finite losses before giving up
    time_limit_min: float | None = None  # stop (validate, keep the best, checkpoint) after this
    schedule_by_time: bool = False  # with a time limit: the poly decay follows the clock, so
    # the learning rate reaches 0 when the time is up, whatever the speed of the machine
    select_by: str = "f1"  # which validation figure picks the model file's weights: "f1" (at
    # 0.5) or "quiet_f1" (F1 where the authentic validation images stay under 5 % flagged)
    ema_decay: float | None = None  # keep an exponential moving average of the weights too;
    # validation measures both, and the better one is what the model file gets
    snapshot_every_s: float | None = None  # also write fp16 weights (EMA if kept) to
    # <run_dir>/snapshot.safetensors this often, so a run cut off from outside leaves a model
    half_weights: bool = False  # store the model file's weights as fp16
    sync_bn: bool = False  # several processes on GPUs: batch norm over the global batch
    run_dir: str | None = None  # checkpoints and the event log; default: user data dir

    def __post_init__(self) -> None:
        if getattr(sys, "frozen", False):  # a PyInstaller bundle would re-launch itself per worker
            self.workers = 0
        self.data = tuple(str(d) for d in self.data)
        self.val = tuple(str(v) for v in self.val)
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must not be negative")
        if self.time_limit_min is not None and self.time_limit_min <= 0:
            raise ValueError("time_limit_min must be positive")
        if self.schedule_by_time and self.time_limit_min is None:
            raise ValueError("schedule_by_time needs a time limit")
        self.synthetic_options = dict(self.synthetic_options)
        check_synthetic_options(self.synthetic_options)
        if self.val_mode not in VAL_MODES:
            raise ValueError(f"val_mode must be one of {', '.join(VAL_MODES)}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {', '.join(SELECT_BY)}")
        if not (math.isfinite(self.head_lr_mult) and self.head_lr_mult > 0):
            raise ValueError("head_lr_mult must be a positive number")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError("ema_decay must lie in (0, 1)")
        if self.freeze_backbone and not (self.base_model or self.init_encoder):
            raise ValueError(
                "freeze_backbone keeps a trained backbone: fine-tune a model (base_model) or "
                "start from a pre-trained encoder (init_encoder)"
            )
        if self.init_encoder and self.base_model:
            raise ValueError(
                "init_encoder starts a new network and base_model fine-tunes a trained one: "
                "give one of them"
            )
        if self.loss.needs_pivot and not self.model.pivot and self.base_model is None:
            raise ValueError(
                "the NCL loss with contour_mode 'pivot' needs the pivot branches (model.pivot)"
            )
        if self.size % self.model.patch_px:
            raise ValueError(
                f"size must be a multiple of the patch size ({self.model.patch_px} px)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (
                getattr(self, f.name).to_dict()
                if f.name in _NESTED
                else list(getattr(self, f.name))
                if isinstance(getattr(self, f.name), tuple)
                else getattr(self, f.name)
            )
            for f in fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        for key, sub in _NESTED.items():
            if isinstance(data.get(key), dict):
                data[key] = sub.from_dict(data[key])
        return super().from_dict(data)

    def synth_config(self, seed_offset: int = 0, options: bool = True) -> SynthConfig:
        """The generator's settings for this run's forgeries: the crop side, the seed (plus
        ``seed_offset``), the authentic share and, with ``options``, ``synthetic_options``."""
        from ncl_core.data.synth.synth_config import SynthConfig  # the package loads torch

        return SynthConfig.from_dict(
            {
                **(self.synthetic_options if options else {}),
                "size": self.size,
                "seed": self.seed + seed_offset,
                "authentic_fraction": self.synthetic_authentic,
            }
        )

    def base_lr(self, world_size: int = 1) -> float:
        """The given rate, else 0.007 per 4 images of the global batch (``batch_size`` in each
        of ``world_size`` processes)."""
        if self.lr is not None:
            return self.lr
        lr = 0.007 * self.batch_size * world_size / 4
        return lr * 0.1 if self.base_model else lr


def check_synthetic_options(options: dict[str, Any]) -> None:
    """Refuse generator settings (``TrainConfig.synthetic_options``) that are no ``SynthConfig``
    field, out of range, or a training setting of their own: ValueError or TypeError."""
    if not options:
        return
    given = {"size", "seed", "authentic_fraction"} & set(options)
    if given:
        raise ValueError(
            f"synthetic_options cannot set {', '.join(sorted(given))}: the crop side, the seed "
            "and the authentic share are training settings (--size, --seed, "
            "--synthetic-authentic)"
        )
    from ncl_core.data.synth.synth_config import SynthConfig  # the package loads torch

    SynthConfig.from_dict(options)
