"""The trainer's arithmetic: one optimizer step and the weights' moving average.

Every step is reproducible from (seed, step) alone — its dropout, its negative sampling — so a
resumed run follows the same loss trajectory as an uninterrupted one. The loss is NCL's
(docs/METHOD.md).
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ncl_core.errors import TrainingError
from ncl_core.network.losses import total_loss
from ncl_core.network.model import NCLNet, apply_constraints
from ncl_core.training.distributed import DistEnv, all_reduce_sum
from ncl_core.training.progress import Progress
from ncl_core.training.run_setup import uses_channels_last
from ncl_core.training.train_config import TrainConfig


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


@contextlib.contextmanager
def no_scheduler_order_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler"))
        yield


def train_mode(
    model: torch.nn.Module, freeze_bn: bool = False, freeze_backbone: bool = False
) -> None:
    """Put ``model`` in training mode; with ``freeze_bn`` its batch-norm layers stay in eval
    mode: they normalise with the running statistics they have and do not update them, while
    their scale and shift still learn. Fine-tuning on other images than the model's own (or
    at a batch too small for good batch statistics) otherwise replaces statistics that fit
    real evidence with the new data's. With ``freeze_backbone`` the whole backbone (and the
    noise stem) stays in eval mode: its statistics are part of what is kept."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    if freeze_backbone:
        network = getattr(model, "module", model)  # under DistributedDataParallel
        network.backbone.eval()
        if getattr(network, "noise_stem", None) is not None:
            network.noise_stem.eval()


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block; afterwards every layer is back in the mode it
    was found in (batch norms frozen by ``train_mode`` stay frozen), also after an error."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.train(training)


def float_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """The training forward's outputs with every floating tensor in fp32 (lists included)."""

    def to_float(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.float()
        if isinstance(value, list):
            return [to_float(v) for v in value]
        return value

    return {key: to_float(value) for key, value in outputs.items()}


def train_step(
    model,
    batch: dict[str, Any],
    optimizer,
    scaler,
    device: torch.device,
    amp: torch.dtype | None,
    cfg: TrainConfig,
    dist: DistEnv,
    progress: Progress,
    warn: Callable[[str], None],
) -> dict[str, float] | None:
    """One optimizer step on ``batch``: the loss parts, or None when the loss was not finite
    (the step is skipped; ``cfg.max_nonfinite`` of them in a row raise ``TrainingError``)."""
    seed = step_seed(cfg.seed, progress.step)
    if dist.rank:  # other processes draw for other images (ASPP's dropout and the rest)
        seed = step_seed(seed, dist.rank)
    torch.manual_seed(seed)  # dropout and any other global randomness, per step
    generator = torch.Generator().manual_seed(seed)  # negative sampling in the loss
    images = batch["image"].to(device, non_blocking=True)
    masks = batch["mask"].to(device, non_blocking=True)
    if uses_channels_last(device, amp):
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        outputs = model(images, masks)
    # The network may run in bf16/fp16; the loss is always computed in fp32.
    parts = total_loss(float_outputs(outputs), masks, cfg.loss, generator)
    optimizer.zero_grad(set_to_none=True)
    # One transfer for every logged part (one host-device sync per step, not one per part);
    # with several processes, their mean, so that all of them skip a non-finite step.
    values = torch.stack([value.detach().float() for value in parts.values()])
    if dist.active:
        values = all_reduce_sum(dist, values) / dist.world_size
    values = values.tolist()
    if not math.isfinite(values[list(parts).index("total")]):
        progress.nonfinite += 1
        warn(f"step {progress.step + 1}: non-finite loss, step skipped")
        if progress.nonfinite >= cfg.max_nonfinite:
            raise TrainingError(
                f"{progress.nonfinite} non-finite losses in a row: lower the learning rate "
                "(--lr) or check the data for broken masks"
            )
        return None
    progress.nonfinite = 0
    scaler.scale(parts["total"]).backward()
    scaler.step(optimizer)
    scaler.update()
    apply_constraints(model.module if dist.active else model)
    return dict(zip(parts, values))


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], model: NCLNet, step: int, decay: float) -> None:
    """Move the average ``ema`` towards ``model``'s weights."""
    # The usual warm-up: early on the average follows the weights closely.
    decay = min(decay, (1 + step) / (10 + step))
    for key, value in model.state_dict().items():
        target = ema[key]
        if value.is_floating_point():
            target.mul_(decay).add_(value.detach(), alpha=1 - decay)
        else:
            target.copy_(value)


@contextlib.contextmanager
def ema_weights(model: NCLNet, ema: dict[str, torch.Tensor]) -> Iterator[None]:
    """The moving average in ``model`` for the ``with`` block; the raw weights after it,
    whatever happens inside."""
    raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema)
    try:
        yield
    finally:
        model.load_state_dict(raw)
