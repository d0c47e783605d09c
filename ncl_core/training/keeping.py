"""What a run keeps: validation, which decides the model file (the best weights so far), the
checkpoint a resume continues from, and snapshots of the weights.

Rank 0 alone validates and writes; with several processes the others wait at a barrier while it
validates. The metrics are those of ``ncl_core.evaluation.metrics``; the ranking rule (F1 at 0.5, or the quiet F1
with ``select_by``, then AUC) is ``ranks_higher``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ncl_core.analysis import image_score
from ncl_core.evaluation.metrics import MetricAccumulator
from ncl_core.models.modelfile import save_model
from ncl_core.network.model import NCLNet
from ncl_core.training.distributed import DistEnv, barrier
from ncl_core.training.events import (
    CheckpointEvent,
    Event,
    LogEvent,
    SnapshotEvent,
    ValidationEvent,
    log_event,
)
from ncl_core.training.progress import RunState
from ncl_core.training.run_data import collate
from ncl_core.training.run_dir import SNAPSHOT_NAME, make_checkpoint, write_checkpoint
from ncl_core.training.steps import ema_weights, evaluating
from ncl_core.training.train_config import TrainConfig


@torch.inference_mode()
def validate(
    model: NCLNet, val_set: Dataset, device: torch.device, amp: torch.dtype | None, workers: int
) -> dict[str, float]:
    """Pixel- and image-level metrics of ``model`` on ``val_set``, one image at a time; every
    layer is left in the mode it was found in (frozen batch norms stay frozen)."""
    accumulator = MetricAccumulator()
    loader = DataLoader(
        val_set,
        batch_size=1,  # native-resolution images differ in size
        num_workers=workers,
        collate_fn=collate,
    )
    if device.type != "cuda":
        amp = None  # on the CPU, validate as inference runs: in fp32
    with evaluating(model):
        for batch in loader:
            images = batch["image"].to(device)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                probs = torch.sigmoid(model(images).float())[:, 0].cpu().numpy()
            gts = batch["mask"][:, 0].numpy() > 0.5
            for prob, gt in zip(probs, gts):
                accumulator.add(prob, gt, score=image_score(prob), tampered=bool(gt.any()))
    result = accumulator.result()
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float, np.floating))}


def ranks_higher(metrics: dict[str, Any], other: dict[str, Any], key: str = "f1") -> bool:
    """Whether validation ``metrics`` beat ``other``: the higher ``key`` (F1 at 0.5, or
    ``quiet_f1``: F1 where the authentic images stay quiet, which needs authentic images in the
    validation set -- without them, F1 at 0.5 decides); ties (0 early on, when nothing reaches
    the threshold yet) go to the better AUC."""
    if key not in metrics:
        key = "f1"
    value, other_value = metrics.get(key, -1.0), other.get(key, -1.0)
    return value > other_value or (
        value == other_value and metrics.get("auc", -1.0) > other.get("auc", -1.0)
    )


class Keeper:
    """Validates and writes for one run (in ``run_dir``), reporting through ``emit``."""

    def __init__(
        self, config: TrainConfig, dist: DistEnv, run_dir: Path, emit: Callable[[Event], None]
    ) -> None:
        self.config, self.dist, self.run_dir, self.emit = config, dist, run_dir, emit

    def validate_and_keep(self, run: RunState) -> None:
        """Validate, report, and write the model file when validation ranks best so far.
        With an EMA of the weights, both are validated and the better one is kept.

        With several processes rank 0 validates alone (the whole set, so the metrics are those
        of one process) while the others wait at a barrier.
        """
        if self.dist.is_main:
            self._validate_and_keep_here(run)
        barrier(self.dist)

    def _validate_and_keep_here(self, run: RunState) -> None:
        model, workers = run.model, self.config.workers
        metrics = validate(model, run.val_set, run.device, run.amp, workers)
        if run.ema is not None:
            with ema_weights(model, run.ema):
                ema_metrics = validate(model, run.val_set, run.device, run.amp, workers)
            self.emit(
                LogEvent(
                    type="log",
                    level="info",
                    message=(
                        f"step {run.progress.step}: EMA weights F1 "
                        f"{ema_metrics.get('f1', math.nan):.3f} AUC "
                        f"{ema_metrics.get('auc', math.nan):.3f}; raw weights F1 "
                        f"{metrics.get('f1', math.nan):.3f} AUC {metrics.get('auc', math.nan):.3f}"
                    ),
                    ema_metrics=ema_metrics,
                    raw_metrics=metrics,
                )
            )
            if ranks_higher(ema_metrics, metrics, self.config.select_by):
                with ema_weights(model, run.ema):
                    self._keep_if_best(run, {**ema_metrics, "ema": 1.0})
                return
        self._keep_if_best(run, metrics)

    def measure_baseline(self, run: RunState) -> None:
        """A fine-tune's starting point: the base model on the validation images, before the
        first step (reported as a ``baseline`` validation at step 0, and kept in the model
        file beside the figures after)."""
        if self.dist.is_main:
            metrics = validate(run.model, run.val_set, run.device, run.amp, self.config.workers)
            finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
            run.progress.baseline = finite
            self.emit(
                ValidationEvent(type="validation", epoch=0, step=0, metrics=metrics, baseline=True)
            )
        barrier(self.dist)

    def _keep_if_best(self, run: RunState, metrics: dict[str, float]) -> None:
        progress = run.progress
        self.emit(
            ValidationEvent(
                type="validation", epoch=progress.epoch, step=progress.step, metrics=metrics
            )
        )
        f1 = metrics.get("f1", float("nan"))
        if not math.isnan(f1) and ranks_higher(
            metrics, {**progress.best_metrics, "f1": progress.best_f1}, self.config.select_by
        ):
            progress.best_f1, progress.best_metrics = f1, metrics
            self.save_model(run, metrics)
            quiet = metrics.get("quiet_f1")
            figures = f"F1 {f1:.3f}" + (f", quiet F1 {quiet:.3f}" if quiet is not None else "")
            self.emit(log_event(f"best model so far ({figures}) written to {run.model_path}"))

    def checkpoint(self, run: RunState) -> None:
        if not self.dist.is_main:
            return
        checkpoint = make_checkpoint(
            config_json=self.config.to_json(),
            model=run.model,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
            ema=run.ema,
            world_size=self.dist.world_size,
            progress=run.progress.to_dict(),
        )
        path = write_checkpoint(self.run_dir, checkpoint)
        self.emit(CheckpointEvent(type="checkpoint", path=str(path), step=run.progress.step))

    def snapshot(self, run: RunState) -> None:
        """fp16 weights of now (the moving average when kept), beside the checkpoint."""
        if not self.dist.is_main:
            return
        path = self.run_dir / SNAPSHOT_NAME
        model = run.model
        with ema_weights(model, run.ema) if run.ema is not None else contextlib.nullcontext():
            save_model(
                path,
                model,
                name=self.config.name or run.model_path.stem,
                trained_on=run.meta["trained_on"],
                metrics={"snapshot_step": run.progress.step},
                parent=run.meta["parent"],
                train_config=self.config.to_dict(),
                half=True,
            )
        self.emit(SnapshotEvent(type="snapshot", path=str(path), step=run.progress.step))

    def save_model(self, run: RunState, metrics: dict[str, float]) -> None:
        """The model file: ``run.model``'s weights as they are now, with ``metrics`` (those
        that are numbers: a figure a set cannot give, such as the image AUC of a set without
        authentic images, is NaN, and a model file holds no NaN)."""
        if not self.dist.is_main:
            return
        metrics = {
            k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)
        }
        trained_on = run.meta["trained_on"]
        if run.progress.baseline:
            trained_on = {**trained_on, "baseline": run.progress.baseline}
        save_model(
            run.model_path,
            run.model,
            name=self.config.name or run.model_path.stem,
            trained_on=trained_on,
            metrics=metrics,
            parent=run.meta["parent"],
            train_config=self.config.to_dict(),
            half=self.config.half_weights,
        )
