"""The training engine: fit, validate, checkpoint, resume, cancel, fine-tune.

The ``Trainer`` speaks only through events (plain dicts); the CLI
prints them with a progress bar, the GUI plots them. Every step is reproducible from
(seed, step) alone, so a resumed run follows the same loss trajectory as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ncl_core.config import JsonConfig, LossConfig, ModelConfig
from ncl_core.data.datasets import Sample, SegmentationDataset, scan_dataset, split_samples
from ncl_core.data.synth import SynthConfig, SynthDataset, scan_photos
from ncl_core.data.transforms import AugmentConfig
from ncl_core.device import amp_dtype, describe, pick_device
from ncl_core.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    destroy_process_group,
    init_process_group,
    is_peer_failure,
)
from ncl_core.errors import TrainingError
from ncl_core.fsutil import atomic_path, atomic_write_text
from ncl_core.infer import image_score
from ncl_core.losses import total_loss
from ncl_core.metrics import MetricAccumulator
from ncl_core.model import NCLNet, apply_constraints
from ncl_core.modelfile import load_model, save_model
from ncl_core.paths import runs_dir

Event = dict[str, Any]
CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOT_NAME = "snapshot.safetensors"
_CHECKPOINT_FORMAT = "ncl-forensics-checkpoint"
_NESTED = {"model": ModelConfig, "loss": LossConfig, "augment": AugmentConfig}


@dataclass
class TrainConfig(JsonConfig):
    """Every training setting; the CLI and the GUI both fill this one dataclass."""

    data: tuple[str, ...] = ()  # dataset folders or IMDL-BenCo JSON lists
    val: tuple[str, ...] = ()  # validation sets; empty = a hash split of ``data``
    synthetic: str | None = None  # folder of authentic photos: forgeries made on the fly
    synthetic_length: int = 2000  # synthetic items per epoch
    synthetic_authentic: float = 0.25  # share of untouched photos, so "nothing forged" is learned
    out: str = "ncl-model.safetensors"  # model file written (best by validation F1)
    name: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    base_model: str | None = None  # fine-tune from this model file (its config wins)
    size: int = 512  # [paper] training input side
    epochs: int = 30
    steps: int | None = None  # total optimizer steps; overrides epochs when set
    batch_size: int = 4
    lr: float | None = None  # None: 0.007 * batch / 4, and x0.1 when fine-tuning
    head_lr_mult: float = 10.0  # [paper, DeepLabV3+] ASPP / decoder / heads learn 10x faster
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    warmup_steps: int = 0  # linear learning-rate ramp before the poly decay (large batches)
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # CUDA only: bf16 where supported, else fp16 with a grad scaler
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
        if self.val_mode not in ("native", "resize"):
            raise ValueError("val_mode must be 'native' or 'resize'")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError("ema_decay must lie in (0, 1)")
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

    def base_lr(self, world_size: int = 1) -> float:
        """The given rate, else 0.007 per 4 images of the global batch (``batch_size`` in each
        of ``world_size`` processes)."""
        if self.lr is not None:
            return self.lr
        lr = 0.007 * self.batch_size * world_size / 4
        return lr * 0.1 if self.base_model else lr


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


@contextlib.contextmanager
def _no_scheduler_order_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler"))
        yield


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.stack([i["image"] for i in items]),
        "mask": torch.stack([i["mask"] for i in items]),
        "path": [i["path"] for i in items],
    }


class _EpochBatches:
    """Batches of one epoch: a permutation seeded by (seed, epoch), optionally skipping ahead.

    With several processes, a global batch of ``batch_size * world_size`` items is cut into
    disjoint per-process slices; ``rank`` gets its own, and ``skip`` counts global batches.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        skip: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        size = batch_size * world_size
        batches = [order[i : i + size].tolist() for i in range(0, n, size)]
        if len(batches) > 1 and len(batches[-1]) < size:
            batches.pop()  # a short last batch would change BN statistics between epochs
        if world_size > 1 and len(batches[-1]) < size:
            raise TrainingError(
                f"{n} training items cannot fill one global batch of {size} "
                f"({world_size} processes x batch size {batch_size}): lower --batch-size"
            )
        self.batches = [b[rank * batch_size : (rank + 1) * batch_size] for b in batches[skip:]]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Trainer:
    """Trains an ``NCLNet``; ``fit()`` blocks (run it in a worker thread), ``cancel()`` is safe
    to call from any thread."""

    def __init__(self, config: TrainConfig, on_event: Callable[[Event], None] | None = None):
        self.config = config
        self.on_event = on_event
        self._cancel = threading.Event()
        self._checkpoint: dict[str, Any] | None = None
        self.run_dir = Path(config.run_dir) if config.run_dir else None
        self._elapsed_s = 0.0  # training time of this run, resumes included
        self._ema: dict[str, torch.Tensor] | None = None
        # Under torchrun: this process's place in the run. Rank 0 alone writes (checkpoints,
        # events, snapshots, the model file) and validates; every rank trains.
        self.dist = DistEnv.from_environ()
        self._agreed_cancel = False  # several processes: the cancel all of them agreed on
        self._own_group = False  # this trainer created the process group (and destroys it)

    # -- public -------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop after the current step, leaving a resumable checkpoint."""
        self._cancel.set()

    @classmethod
    def resume(
        cls, run_dir: str | Path, on_event: Callable[[Event], None] | None = None
    ) -> Trainer:
        """A trainer that continues the run in ``run_dir`` from its last checkpoint."""
        run_dir = Path(run_dir)
        ckpt_path = run_dir / CHECKPOINT_NAME
        if not ckpt_path.is_file():
            raise TrainingError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_NAME})")
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # Not torch's message: it runs to many lines and suggests weights_only=False, which
            # would run whatever code a foreign file carries.
            raise TrainingError(
                f"{ckpt_path}: refused: not a checkpoint that can be loaded safely (it holds "
                "objects other than tensors and settings, or is damaged); resume only runs "
                "NCL Forensics wrote"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets one message
            raise TrainingError(f"{ckpt_path}: the checkpoint cannot be read ({exc})") from exc
        if checkpoint.get("format") != _CHECKPOINT_FORMAT:
            raise TrainingError(f"{ckpt_path}: not an NCL Forensics checkpoint")
        config = TrainConfig.from_json(checkpoint["config"])
        config.run_dir = str(run_dir)
        trainer = cls(config, on_event)
        trainer._checkpoint = checkpoint
        return trainer

    def fit(self) -> Path | None:
        """Train; returns the model file written, or None when cancelled."""
        try:
            path = self._fit()
        except TrainingError as exc:
            self._emit_failed(str(exc))
            raise
        except Exception as exc:
            if self.dist.active and is_peer_failure(exc):
                # A collective broke because another process went away: it reports the cause.
                message = (
                    f"lost contact with another training process (it failed or was stopped: "
                    f"see its error); {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
                self._emit_failed(f"training failed: {message}")
                raise TrainingError(message) from exc
            clean = _without_worker_traceback(exc)
            self._emit_failed(f"training failed: {clean}")
            if clean is exc:
                raise
            raise clean from exc
        if self._own_group:
            destroy_process_group()
        return path

    # -- setup --------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if not self.dist.is_main:  # one voice per run: rank 0's
            return
        event.setdefault("time", _now())
        try:
            if self.run_dir is not None:
                with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(event, default=str) + "\n")
        finally:
            if self.on_event is not None:
                self.on_event(event)

    def _emit_failed(self, message: str) -> None:
        # The event log may be what failed (a read-only or full disk): the listener still
        # hears why, and the original error, not the log's, reaches the caller.
        with contextlib.suppress(OSError):
            self._emit({"type": "failed", "message": message})

    def _log(self, message: str, level: str = "info") -> None:
        self._emit({"type": "log", "level": level, "message": message})

    def _datasets(self) -> tuple[Dataset, Dataset | None, dict[str, Any]]:
        cfg = self.config
        train_samples: list[Sample] = []
        val_samples: list[Sample] = []
        trained_on: dict[str, Any] = {"datasets": [], "validation": []}
        for root in cfg.data:
            index = scan_dataset(root)
            summary = index.summary()
            trained_on["datasets"].append(
                {
                    k: summary[k]
                    for k in ("root", "layout", "n_tampered", "n_authentic", "n_unpaired")
                }
            )
            self._emit({"type": "dataset", "summary": summary})
            if index.unpaired:
                self._log(f"{root}: {len(index.unpaired)} unpaired file(s) ignored", "warning")
            train_samples.extend(index.samples)
        for root in cfg.val:
            index = scan_dataset(root)
            trained_on["validation"].append(str(root))
            val_samples.extend(index.samples)
        if cfg.data and not cfg.val and cfg.val_fraction > 0:
            train_samples, val_samples = split_samples(train_samples, cfg.val_fraction)
            trained_on["validation"].append(f"{cfg.val_fraction:.0%} hash split of the data")
        if cfg.val_limit and len(val_samples) > cfg.val_limit:
            stride = len(val_samples) / cfg.val_limit
            val_samples = [val_samples[int(i * stride)] for i in range(cfg.val_limit)]
            trained_on["validation"].append(f"{cfg.val_limit} images of it, evenly spread")
        parts: list[Dataset] = []
        val_parts: list[Dataset] = []
        if train_samples:
            parts.append(SegmentationDataset(train_samples, cfg.size, True, cfg.augment, cfg.seed))
        if val_samples:
            # As the inference mode the model will be used in sees them.
            native = cfg.val_mode == "native"
            val_parts.append(SegmentationDataset(val_samples, cfg.size, train=False, native=native))
        if cfg.synthetic:
            photos, problems = scan_photos(cfg.synthetic)
            for line in problems:
                self._log(line, "warning")
            if len(photos) < 2:
                raise TrainingError(
                    f"{cfg.synthetic}: needs at least 2 authentic photos for synthesis"
                )
            photo_samples = [Sample(p) for p in photos]
            if cfg.val:  # a given validation set: every photo can train
                train_photos, val_photos = photo_samples, []
            else:
                # By source photo: a pool holds one folder per photo (``<id>/photo.jpg``).
                train_photos, val_photos = split_samples(
                    photo_samples,
                    max(cfg.val_fraction, 0.05),
                    key=lambda s: s.image.relative_to(cfg.synthetic).as_posix(),
                )
            synth = SynthConfig(
                size=cfg.size, seed=cfg.seed, authentic_fraction=cfg.synthetic_authentic
            )
            parts.append(
                SynthDataset(
                    [s.image for s in train_photos],
                    synth,
                    cfg.synthetic_length,
                    cfg.augment.hflip_p,
                )
            )
            if val_photos:
                val_synth = SynthConfig(
                    size=cfg.size, seed=cfg.seed + 1, authentic_fraction=cfg.synthetic_authentic
                )
                val_parts.append(
                    # Validation items are not augmented: no flips.
                    SynthDataset(
                        [s.image for s in val_photos], val_synth, cfg.val_synthetic_length, 0.0
                    )
                )
            trained_on["synthetic"] = {
                "photos": str(cfg.synthetic),
                "n_train_photos": len(train_photos),
                "n_val_photos": len(val_photos),
            }
        if not parts:
            raise TrainingError(
                "no training data: give --data DIR (labeled) or --synthetic DIR (photos)"
            )
        train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        val = (
            None
            if not val_parts
            else val_parts[0]
            if len(val_parts) == 1
            else ConcatDataset(val_parts)
        )
        trained_on["n_train"] = len(train)
        trained_on["n_val"] = len(val) if val is not None else 0
        return train, val, trained_on

    def _model(self) -> tuple[NCLNet, str | None]:
        cfg = self.config
        if not cfg.base_model:
            torch.manual_seed(cfg.seed)  # the initial weights are part of the run's recipe
            return NCLNet(cfg.model), None
        model, info = load_model(cfg.base_model)
        if not info.config.pivot and cfg.loss.contour_mode == "pivot":
            raise TrainingError(f"{cfg.base_model}: has no pivot branches; use --contour-mode drop")
        cfg.model = info.config
        return model, info.sha256

    def _optimizer(self, model: NCLNet, total_steps: int):
        cfg = self.config
        base = cfg.base_lr(self.dist.world_size)
        backbone = list(model.backbone.parameters())
        if model.noise_stem is not None:  # learned filters before conv1: the backbone's rate
            backbone += list(model.noise_stem.parameters())
        backbone_ids = {id(p) for p in backbone}
        heads = [p for p in model.parameters() if id(p) not in backbone_ids]
        optimizer = torch.optim.SGD(
            [{"params": backbone, "lr": base}, {"params": heads, "lr": base * cfg.head_lr_mult}],
            lr=base,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )

        def poly(step: int) -> float:
            progress = step / max(1, total_steps)
            if cfg.schedule_by_time:  # elapsed training time, kept across resumes
                progress = max(progress, self._elapsed_s / (60.0 * cfg.time_limit_min))
            decay = max(0.0, 1.0 - progress) ** cfg.poly_power
            if step < cfg.warmup_steps:
                return decay * (step + 1) / cfg.warmup_steps
            return decay

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, poly)

    # -- the loop -----------------------------------------------------------------------------
    def _fit(self) -> Path | None:
        cfg = self.config
        if self.run_dir is None:
            self.run_dir = runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
            cfg.run_dir = str(self.run_dir)
        dist = self.dist
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        device = self._device()
        self._own_group = init_process_group(dist, device)
        model, parent = self._model()
        train_set, val_set, trained_on = self._datasets()
        if dist.is_main:
            atomic_write_text(self.run_dir / "config.json", cfg.to_json())
        steps_per_epoch = len(
            _EpochBatches(len(train_set), cfg.batch_size, cfg.seed, 0, 0, 0, dist.world_size)
        )
        total_steps = cfg.steps or cfg.epochs * steps_per_epoch
        epochs = math.ceil(total_steps / steps_per_epoch)
        model.to(device)
        amp = amp_dtype(device) if cfg.amp else None
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        if cfg.sync_bn and dist.active:
            if device.type != "cuda":
                raise TrainingError(
                    "--sync-bn needs CUDA GPUs (PyTorch synchronises batch norm only there); "
                    "leave it off on the CPU"
                )
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer, scheduler = self._optimizer(model, total_steps)
        scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
        state = {
            "step": 0,
            "epoch": 0,
            "batch_in_epoch": 0,
            "best_f1": -1.0,
            "best_metrics": {},
            "nonfinite": 0,
            "elapsed_s": 0.0,
        }
        if cfg.ema_decay is not None and dist.is_main:  # only rank 0 validates and saves
            self._ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self._checkpoint is not None:
            ckpt = self._checkpoint
            if ckpt.get("world_size", 1) != dist.world_size:
                raise TrainingError(
                    f"this run was trained by {ckpt.get('world_size', 1)} process(es) and is "
                    f"resumed by {dist.world_size}: resume it with as many (--nproc), so that "
                    "its batches and schedule stay the same"
                )
            model.load_state_dict(ckpt["model"])
            if self._ema is not None and ckpt.get("ema"):
                self._ema = {k: v.to(device) for k, v in ckpt["ema"].items()}
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            state.update({k: ckpt[k] for k in state if k in ckpt})
            self._log(f"resumed from step {state['step']} (epoch {state['epoch'] + 1})")
        if cfg.sync_bn and not dist.active:
            self._log("--sync-bn has no effect in a single process", "warning")
        # The model every process runs forward and backward through; ``model`` itself (the
        # module DDP wraps) is what is validated, averaged, checkpointed and saved.
        train_model = model
        if dist.active:
            train_model = torch.nn.parallel.DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                # The pivot branches see only batches with contour patches.
                find_unused_parameters=model.config.pivot,
            )
        self._emit(
            {
                "type": "start",
                "total_steps": total_steps,
                "epochs": epochs,
                "steps_per_epoch": steps_per_epoch,
                "device": describe(device),
                "processes": dist.world_size,
                "amp": str(amp).replace("torch.", "") if amp else "off",
                "n_train": trained_on["n_train"],
                "n_val": trained_on["n_val"],
                "run_dir": str(self.run_dir),
            }
        )
        model_path = Path(cfg.out)
        meta = {"trained_on": trained_on, "parent": parent}
        recent: list[float] = []
        t_start = time.perf_counter()
        last_snapshot = t_start
        elapsed_before = state["elapsed_s"]
        deadline = None
        if cfg.time_limit_min is not None:
            # A clock-driven schedule spans the whole run, resumes included; otherwise each
            # invocation gets the full limit.
            deadline = t_start + 60.0 * cfg.time_limit_min
            if cfg.schedule_by_time:
                deadline -= elapsed_before
        out_of_time = False
        while state["step"] < total_steps:
            epoch = state["epoch"]
            for ds in _leaf_datasets(train_set):
                ds.set_epoch(epoch)
            batches = _EpochBatches(
                len(train_set),
                cfg.batch_size,
                cfg.seed,
                epoch,
                state["batch_in_epoch"],
                dist.rank,
                dist.world_size,
            )
            loader = DataLoader(
                train_set,
                batch_sampler=batches,
                num_workers=cfg.workers,
                collate_fn=_collate,
                pin_memory=device.type == "cuda",
                persistent_workers=False,
            )
            train_model.train()
            for batch in loader:
                t0 = time.perf_counter()
                losses = self._train_step(train_model, batch, optimizer, scaler, device, amp, state)
                state["elapsed_s"] = elapsed_before + time.perf_counter() - t_start
                if not dist.active:  # else rank 0's, as agreed after each step (below)
                    self._elapsed_s = state["elapsed_s"]
                if losses is not None and self._ema is not None:
                    self._update_ema(model, state["step"])
                # A skipped (non-finite) step still advances the schedule, so that a resumed run
                # stays on it. Only then is PyTorch's "no optimizer step came first" warning
                # silenced: warning filters are process-wide, and this loop runs in a thread.
                with _no_scheduler_order_warning() if losses is None else contextlib.nullcontext():
                    scheduler.step()
                state["step"] += 1
                state["batch_in_epoch"] += 1
                recent = (recent + [time.perf_counter() - t0])[-20:]
                per_step = sum(recent) / len(recent)
                if losses is not None:
                    self._emit(
                        {
                            "type": "step",
                            "step": state["step"],
                            "total_steps": total_steps,
                            "epoch": epoch + 1,
                            "losses": losses,
                            "lr": optimizer.param_groups[0]["lr"],
                            "images_per_s": len(batch["path"])
                            * dist.world_size
                            / max(per_step, 1e-9),
                            "eta_s": per_step * (total_steps - state["step"]),
                        }
                    )
                if state["step"] % cfg.checkpoint_every == 0:
                    self._save_checkpoint(model, optimizer, scheduler, scaler, state)
                if (
                    cfg.snapshot_every_s
                    and time.perf_counter() - last_snapshot >= cfg.snapshot_every_s
                ):
                    self._save_snapshot(model, meta, state)
                    last_snapshot = time.perf_counter()
                if dist.active:
                    out_of_time = self._agree(state, device, deadline)
                else:
                    out_of_time = deadline is not None and time.perf_counter() >= deadline
                if self._stopping() or state["step"] >= total_steps or out_of_time:
                    break
            epoch_done = state["step"] >= total_steps or not (self._stopping() or out_of_time)
            if epoch_done:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                self._emit({"type": "epoch", "epoch": state["epoch"], "step": state["step"]})
                last = state["step"] >= total_steps
                if val_set is not None and (state["epoch"] % cfg.val_every == 0 or last):
                    self._validate_and_keep(model, val_set, device, amp, state, model_path, meta)
            elif out_of_time and not self._stopping() and val_set is not None:
                self._validate_and_keep(model, val_set, device, amp, state, model_path, meta)
            self._save_checkpoint(model, optimizer, scheduler, scaler, state)
            if self._stopping() and state["step"] < total_steps:
                self._emit(
                    {
                        "type": "cancelled",
                        "step": state["step"],
                        "checkpoint": str(self.run_dir / CHECKPOINT_NAME),
                    }
                )
                return None
            if out_of_time and state["step"] < total_steps:
                self._log(
                    f"time limit ({cfg.time_limit_min:g} min) reached at step {state['step']} of "
                    f"{total_steps}; continue with --resume {self.run_dir}",
                    "warning",
                )
                break
        if val_set is None or state["best_f1"] < 0:
            self._save_model(model, model_path, meta, state["best_metrics"])
            if val_set is None:
                self._log("no validation set: the final weights were saved", "warning")
        self._emit(
            {
                "type": "finished",
                "model_path": str(model_path),
                "metrics": state["best_metrics"],
                "steps": state["step"],
                "total_steps": total_steps,
                "stopped_by_time_limit": state["step"] < total_steps,
                "duration_s": time.perf_counter() - t_start,
            }
        )
        barrier(dist)  # every process returns once the model file is there
        return model_path

    def _stopping(self) -> bool:
        """Cancelled: with several processes, as all of them agreed at the last step."""
        return self._agreed_cancel if self.dist.active else self._cancel.is_set()

    def _agree(self, state: dict, device: torch.device, deadline: float | None) -> bool:
        """Several processes: one decision for all after each step (a process that stopped
        alone would leave the others waiting in a collective). A cancel anywhere cancels all;
        rank 0's clock decides the time limit and is the elapsed time the next step's schedule
        reads (each process's own would give each its own learning rate). Returns whether the
        time is up."""
        main = self.dist.is_main
        out_of_time = main and deadline is not None and time.perf_counter() >= deadline
        flags = torch.tensor(
            [float(self._cancel.is_set()), float(out_of_time), state["elapsed_s"] if main else 0],
            dtype=torch.float64,
            device=device,
        )
        cancel, out_of_time, elapsed = all_reduce_sum(self.dist, flags).tolist()
        self._agreed_cancel = cancel > 0
        state["elapsed_s"] = self._elapsed_s = elapsed
        return out_of_time > 0

    def _device(self) -> torch.device:
        device = pick_device(self.config.device)
        if not self.dist.active:
            return device
        if device.type == "mps":
            raise TrainingError(
                "several processes train on CUDA GPUs or on the CPU, not on MPS: --device cpu"
            )
        if device.type == "cuda":
            if device.index is not None:
                raise TrainingError(
                    f"--device {self.config.device}: with several processes each one uses the "
                    "GPU of its local rank; give --device cuda (or auto) and choose the GPUs "
                    "with CUDA_VISIBLE_DEVICES"
                )
            if self.dist.local_rank >= torch.cuda.device_count():
                raise TrainingError(
                    f"local rank {self.dist.local_rank} has no GPU: this machine has "
                    f"{torch.cuda.device_count()}; start at most that many processes per node"
                )
            device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(device)
        return device

    def _train_step(
        self, model, batch, optimizer, scaler, device, amp, state
    ) -> dict[str, float] | None:
        cfg = self.config
        step_seed = _step_seed(cfg.seed, state["step"])
        if self.dist.rank:  # other processes draw for other images (ASPP's dropout and the rest)
            step_seed = _step_seed(step_seed, self.dist.rank)
        torch.manual_seed(step_seed)  # dropout and any other global randomness, per step
        generator = torch.Generator().manual_seed(step_seed)  # negative sampling in the loss
        images = batch["image"].to(device, non_blocking=True)
        masks = batch["mask"].to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            outputs = model(images, masks)
            parts = total_loss(outputs, masks, cfg.loss, generator)
        optimizer.zero_grad(set_to_none=True)
        # One transfer for every logged part (one host-device sync per step, not one per part);
        # with several processes, their mean, so that all of them skip a non-finite step.
        values = torch.stack([value.detach().float() for value in parts.values()])
        if self.dist.active:
            values = all_reduce_sum(self.dist, values) / self.dist.world_size
        values = values.tolist()
        if not math.isfinite(values[list(parts).index("total")]):
            state["nonfinite"] += 1
            self._log(f"step {state['step'] + 1}: non-finite loss, step skipped", "warning")
            if state["nonfinite"] >= cfg.max_nonfinite:
                raise TrainingError(
                    f"{state['nonfinite']} non-finite losses in a row: lower the learning rate "
                    "(--lr) or check the data for broken masks"
                )
            return None
        state["nonfinite"] = 0
        scaler.scale(parts["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        apply_constraints(model.module if self.dist.active else model)
        return dict(zip(parts, values))

    @torch.no_grad()
    def _update_ema(self, model: NCLNet, step: int) -> None:
        # The usual warm-up: early on the average follows the weights closely.
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for key, value in model.state_dict().items():
            target = self._ema[key]
            if value.is_floating_point():
                target.mul_(decay).add_(value.detach(), alpha=1 - decay)
            else:
                target.copy_(value)

    def _validate_and_keep(self, model, val_set, device, amp, state, model_path, meta) -> None:
        """Validate, report, and write the model file when validation F1 is the best so far.
        With an EMA of the weights, both are validated and the better one is kept.

        With several processes rank 0 validates alone (the whole set, so the metrics are those
        of one process) while the others wait at a barrier.
        """
        if self.dist.is_main:
            self._validate_and_keep_here(model, val_set, device, amp, state, model_path, meta)
        barrier(self.dist)

    def _validate_and_keep_here(self, model, val_set, device, amp, state, model_path, meta):
        metrics = self._validate(model, val_set, device, amp)
        if self._ema is not None:
            with self._ema_weights(model):
                ema_metrics = self._validate(model, val_set, device, amp)
            self._emit(
                {
                    "type": "log",
                    "level": "info",
                    "message": (
                        f"step {state['step']}: EMA weights F1 {ema_metrics.get('f1', math.nan):.3f}"
                        f" AUC {ema_metrics.get('auc', math.nan):.3f}; raw weights F1 "
                        f"{metrics.get('f1', math.nan):.3f} AUC {metrics.get('auc', math.nan):.3f}"
                    ),
                    "ema_metrics": ema_metrics,
                    "raw_metrics": metrics,
                }
            )
            if _ranks_higher(ema_metrics, metrics):
                with self._ema_weights(model):
                    self._keep_if_best(model, state, model_path, meta, {**ema_metrics, "ema": 1.0})
                return
        self._keep_if_best(model, state, model_path, meta, metrics)

    @contextlib.contextmanager
    def _ema_weights(self, model: NCLNet):
        """The moving average in ``model`` for the ``with`` block; the raw weights after it,
        whatever happens inside."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self._ema)
        try:
            yield
        finally:
            model.load_state_dict(raw)

    def _keep_if_best(self, model, state, model_path, meta, metrics) -> None:
        self._emit(
            {
                "type": "validation",
                "epoch": state["epoch"],
                "step": state["step"],
                "metrics": metrics,
            }
        )
        f1 = metrics.get("f1", float("nan"))
        if not math.isnan(f1) and _ranks_higher(
            metrics, {**state["best_metrics"], "f1": state["best_f1"]}
        ):
            state["best_f1"], state["best_metrics"] = f1, metrics
            self._save_model(model, model_path, meta, metrics)
            self._log(f"best model so far (F1 {f1:.3f}) written to {model_path}")

    @torch.inference_mode()
    def _validate(self, model: NCLNet, val_set: Dataset, device, amp) -> dict[str, float]:
        model.eval()
        accumulator = MetricAccumulator()
        loader = DataLoader(
            val_set,
            batch_size=1,  # native-resolution images differ in size
            num_workers=self.config.workers,
            collate_fn=_collate,
        )
        for batch in loader:
            images = batch["image"].to(device)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                probs = torch.sigmoid(model(images).float())[:, 0].cpu().numpy()
            gts = batch["mask"][:, 0].numpy() > 0.5
            for prob, gt in zip(probs, gts):
                accumulator.add(prob, gt, score=image_score(prob), tampered=bool(gt.any()))
        model.train()
        result = accumulator.result()
        return {k: float(v) for k, v in result.items() if isinstance(v, (int, float, np.floating))}

    def _save_checkpoint(self, model, optimizer, scheduler, scaler, state) -> None:
        if not self.dist.is_main:
            return
        checkpoint = {
            "format": _CHECKPOINT_FORMAT,
            "version": 1,
            "config": self.config.to_json(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "ema": self._ema or {},
            "world_size": self.dist.world_size,  # a global batch is this many processes' batches
            **state,
        }
        path = self.run_dir / CHECKPOINT_NAME
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
        except (OSError, RuntimeError) as exc:
            # torch reports a full disk as "RuntimeError: ... unexpected pos"; the OSError it
            # ran into says why.
            reason = exc.__context__ if isinstance(exc.__context__, OSError) else exc
            raise TrainingError(
                f"cannot write the checkpoint {path} ({reason}); the previous checkpoint is "
                f"kept: free disk space, then continue with --resume {self.run_dir}"
            ) from exc
        self._emit({"type": "checkpoint", "path": str(path), "step": state["step"]})

    def _save_snapshot(self, model: NCLNet, meta: dict, state: dict) -> None:
        """fp16 weights of now (the moving average when kept), beside the checkpoint."""
        if not self.dist.is_main:
            return
        path = self.run_dir / SNAPSHOT_NAME
        with self._ema_weights(model) if self._ema is not None else contextlib.nullcontext():
            save_model(
                path,
                model,
                name=self.config.name or Path(self.config.out).stem,
                trained_on=meta["trained_on"],
                metrics={"snapshot_step": state["step"]},
                parent=meta["parent"],
                train_config=self.config.to_dict(),
                half=True,
            )
        self._emit({"type": "snapshot", "path": str(path), "step": state["step"]})

    def _save_model(self, model: NCLNet, path: Path, meta: dict, metrics: dict) -> None:
        if not self.dist.is_main:
            return
        save_model(
            path,
            model,
            name=self.config.name or path.stem,
            trained_on=meta["trained_on"],
            metrics=metrics,
            parent=meta["parent"],
            train_config=self.config.to_dict(),
            half=self.config.half_weights,
        )


def _ranks_higher(metrics: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether validation ``metrics`` beat ``other``: higher F1 at 0.5; ties (F1 0 early on,
    when nothing reaches the threshold yet) go to the better AUC."""
    f1, other_f1 = metrics.get("f1", -1.0), other.get("f1", -1.0)
    return f1 > other_f1 or (f1 == other_f1 and metrics.get("auc", -1.0) > other.get("auc", -1.0))


def _without_worker_traceback(exc: Exception) -> Exception:
    """The error a DataLoader worker raised, without the traceback torch puts in its message.

    A worker's ``MaskError`` comes back as ``MaskError("Caught MaskError in DataLoader worker
    process 0. Original Traceback ...")``: the user must see the original one-line message.
    """
    kind = type(exc)
    text = str(exc)
    if not text.startswith(f"Caught {kind.__name__} in DataLoader worker"):
        return exc
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    _, found, message = text.rpartition(f"\n{name}: ")
    if not found:
        return exc
    try:
        return kind(message.strip())
    except Exception:  # noqa: BLE001 - an exception type that needs other arguments
        return exc


def _leaf_datasets(dataset: Dataset) -> list[Dataset]:
    if isinstance(dataset, ConcatDataset):
        return [d for sub in dataset.datasets for d in _leaf_datasets(sub)]
    return [dataset]


def main(argv: list[str] | None = None) -> int:
    """``python -m ncl_core.train [train|finetune] FLAGS``: the flags of ``ncl-forensics train``
    (or ``finetune``), for torchrun to start once per process::

        torchrun --nproc-per-node 4 -m ncl_core.train --data DIR --batch-size 8
    """
    from ncl_core.cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = [a for a in argv if a == "--debug"]
    rest = [a for a in argv if a != "--debug"]
    if not rest or rest[0] not in ("train", "finetune"):
        rest = ["train", *rest]
    return cli_main([*debug, *rest])


if __name__ == "__main__":
    sys.exit(main())
