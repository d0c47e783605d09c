"""What a run trains with: the device, the network (new or fine-tuned; placed, and wrapped for
several processes), the optimizer and its learning-rate schedule (SGD with a poly decay, heads
faster than the backbone: docs/METHOD.md); and the error a data-loading worker raised, as the
user should read it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ncl_core.errors import TrainingError
from ncl_core.models.modelfile import load_model
from ncl_core.network.device import pick_device
from ncl_core.network.model import NCLNet
from ncl_core.training.distributed import DistEnv
from ncl_core.training.train_config import TrainConfig


def training_device(cfg: TrainConfig, dist: DistEnv) -> torch.device:
    """``cfg.device``; with several processes, the GPU of this process's local rank."""
    device = pick_device(cfg.device)
    if not dist.active:
        return device
    if device.type == "mps":
        raise TrainingError(
            "several processes train on CUDA GPUs or on the CPU, not on MPS: --device cpu"
        )
    if device.type == "cuda":
        if device.index is not None:
            raise TrainingError(
                f"--device {cfg.device}: with several processes each one uses the "
                "GPU of its local rank; give --device cuda (or auto) and choose the GPUs "
                "with CUDA_VISIBLE_DEVICES"
            )
        if dist.local_rank >= torch.cuda.device_count():
            raise TrainingError(
                f"local rank {dist.local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


def initial_model(cfg: TrainConfig) -> tuple[NCLNet, str | None]:
    """A new network from ``cfg.model``, or the base model to fine-tune (whose config then
    replaces ``cfg.model``); and the SHA-256 of that parent, if any."""
    if not cfg.base_model:
        if cfg.init_encoder:
            from ncl_core.training.pretrain import network_from_encoder

            model = network_from_encoder(cfg.init_encoder, cfg.model, cfg.seed)
            cfg.model = model.config
            return model, None
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run's recipe
        return NCLNet(cfg.model), None
    model, info = load_model(cfg.base_model)
    if not info.config.pivot and cfg.loss.contour_mode == "pivot":
        raise TrainingError(f"{cfg.base_model}: has no pivot branches; use --contour-mode drop")
    cfg.model = info.config
    return model, info.sha256


def uses_channels_last(device: torch.device, amp: torch.dtype | None) -> bool:
    """Channels-last on CUDA, and on the CPU with bf16, where it makes oneDNN's convolutions
    about a third faster again (docs/BENCHMARKS.md); CPU fp32 keeps the default layout."""
    return device.type == "cuda" or (device.type == "cpu" and amp is not None)


def place_model(
    model: NCLNet, device: torch.device, cfg: TrainConfig, dist: DistEnv, amp: torch.dtype | None
) -> NCLNet:
    """``model`` on ``device`` (channels-last where :func:`uses_channels_last`); with
    ``--sync-bn`` and several processes, its batch norms synchronised (a new module: the one to
    train and save)."""
    model.to(device)
    if uses_channels_last(device, amp):
        model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.sync_bn and dist.active:
        if device.type != "cuda":
            raise TrainingError(
                "--sync-bn needs CUDA GPUs (PyTorch synchronises batch norm only there); "
                "leave it off on the CPU"
            )
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def for_processes(model: NCLNet, device: torch.device, dist: DistEnv) -> torch.nn.Module:
    """What forward and backward run through: ``model`` itself, or with several processes
    DistributedDataParallel's wrapper of it (``model`` stays what is validated and saved)."""
    if not dist.active:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        # The pivot branches see only batches with contour patches.
        find_unused_parameters=model.config.pivot,
    )


def build_optimizer(
    model: NCLNet,
    cfg: TrainConfig,
    total_steps: int,
    world_size: int,
    elapsed_s: Callable[[], float],
):
    """SGD (backbone at the base rate, the rest ``head_lr_mult`` times faster; with
    ``freeze_backbone`` the backbone has no gradients and is not in it) and its poly
    schedule with an optional warm-up; with ``schedule_by_time`` the decay follows
    ``elapsed_s()`` (training time, resumes included) towards the time limit."""
    base = cfg.base_lr(world_size)
    backbone = list(model.backbone.parameters())
    if model.noise_stem is not None:  # learned filters before conv1: the backbone's rate
        backbone += list(model.noise_stem.parameters())
    backbone_ids = {id(p) for p in backbone}
    heads = [p for p in model.parameters() if id(p) not in backbone_ids]
    groups = [{"params": backbone, "lr": base}, {"params": heads, "lr": base * cfg.head_lr_mult}]
    if cfg.freeze_backbone:  # no gradients: autograd stops at the backbone's output
        for parameter in backbone:
            parameter.requires_grad_(False)
        groups = groups[1:]
    optimizer = torch.optim.SGD(
        groups,
        lr=base,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )

    def poly(step: int) -> float:
        progress = step / max(1, total_steps)
        if cfg.schedule_by_time:  # elapsed training time, kept across resumes
            progress = max(progress, elapsed_s() / (60.0 * cfg.time_limit_min))
        decay = max(0.0, 1.0 - progress) ** cfg.poly_power
        if step < cfg.warmup_steps:
            return decay * (step + 1) / cfg.warmup_steps
        return decay

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, poly)


def without_worker_traceback(exc: Exception) -> Exception:
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
