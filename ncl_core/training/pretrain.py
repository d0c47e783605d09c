"""The self-supervised stage before NCL (``ncl-forensics pretrain``): the encoder learns traces of
processing from authentic photos alone, with no labels and no external weights.

Each step takes ``batch_size`` items of ``ChainViews`` (ncl_core/training/chains.py): two crops
of one photo region after one processing chain, one after another chain. The encoder (the
backbone and ASPP of an ``NCLNet``) embeds each crop: the mean of its ``layer1`` and ASPP
features, through a small projection head. The loss is InfoNCE both ways between the two
crops of a pair, the other crops of the batch and the region's own other-chain crop serving as
negatives: pairs are pulled together, everything else is pushed apart, and the other-chain
crop, the same content processed otherwise, is the negative content alone cannot tell apart.
A second term (``hard_weight``) makes the choice between the pair and that crop alone.

The result is an *encoder file* (``ENCODER_FORMAT``): the encoder's weights and its
``ModelConfig``, which ``ncl-forensics train --init-encoder`` starts a network from. It is not
a model: its decoder was never trained, and model loaders refuse it.

A run folder holds ``pretrain-config.json``, ``pretrain-checkpoint.pt`` (every
``checkpoint_every`` steps, when the time is up and when cancelled) and ``pretrain.jsonl`` (one
line per logged step); ``resume`` continues a run from its checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn
from torch.utils.data import DataLoader

from ncl_core import __version__
from ncl_core.data.synth.photos import scan_photos
from ncl_core.errors import ModelFileError, TrainingError
from ncl_core.fsutil import atomic_path
from ncl_core.models.modelfile import ENCODER_FORMAT, check_config_dict, utc_now
from ncl_core.network.device import amp_dtype, describe, pick_device
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig
from ncl_core.training.chains import VIEWS, ChainViews
from ncl_core.training.pretrain_config import PretrainConfig
from ncl_core.training.run_dir import read_checkpoint, write_checkpoint

__all__ = ["PretrainConfig", "Pretrainer", "network_from_encoder", "read_encoder", "save_encoder"]

CONFIG_NAME = "pretrain-config.json"
CHECKPOINT_NAME = "pretrain-checkpoint.pt"
LOG_NAME = "pretrain.jsonl"
ENCODER_PREFIXES = ("backbone.", "noise_stem.", "aspp.")
# ModelConfig fields the encoder's weights or features depend on: a network started from an
# encoder takes these from it.
ENCODER_FIELDS = ("backbone", "output_stride", "aspp_channels", "noise_stem")
_CHECKPOINT_FORMAT = "ncl-forensics-pretrain-checkpoint"


class ChainEncoder(nn.Module):
    """The encoder of ``net`` and a projection head: crops -> unit embeddings ``[N, dim]``."""

    def __init__(self, net: NCLNet, dim: int = 128) -> None:
        super().__init__()
        self.net = net
        width = net.config.feature_channels + net.config.aspp_channels
        self.project = nn.Sequential(
            nn.Linear(width, 256), nn.ReLU(inplace=True), nn.Linear(256, dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        low, aspp = self.net.encode(images)
        pooled = torch.cat([low.float().mean(dim=(2, 3)), aspp.float().mean(dim=(2, 3))], dim=1)
        return F.normalize(self.project(pooled), dim=1)

    def trained_parameters(self) -> list[nn.Parameter]:
        """The encoder's and the head's: the decoder takes no part in this stage."""
        return [
            p
            for name, p in self.named_parameters()
            if name.startswith("project.") or name.removeprefix("net.").startswith(ENCODER_PREFIXES)
        ]


def chain_loss(
    same_a: torch.Tensor,
    same_b: torch.Tensor,
    other: torch.Tensor,
    tau: float,
    hard_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE both ways between the pairs ``same_a[i]``, ``same_b[i]`` (``[B, D]``, unit
    length), every other crop of the batch a negative, ``other[i]`` (the same content as
    ``same_a[i]`` after another chain) among them; plus, weighed ``hard_weight``, the same
    choice between the pair and ``other[i]`` alone. Among 2B candidates one hard negative
    weighs little, and content is the easy cue: without the second term the pair is learned
    as "the same photo" and the other-chain crop stays the nearer. Returns the loss and two
    accuracies: how often a crop's nearest candidate is its pair (chance ``1 / 2B``), and how
    often its pair is nearer than the other-chain crop (chance 0.5)."""
    n = same_a.shape[0]
    target = torch.arange(n, device=same_a.device)
    losses, top1, hard = [], [], []
    for anchor, pair in ((same_a, same_b), (same_b, same_a)):
        candidates = torch.cat([pair, other], dim=0)  # pair i at i, other-chain crop i at n+i
        logits = anchor @ candidates.T / tau
        duel = torch.stack([logits[target, target], logits[target, target + n]], dim=1)
        losses.append(
            F.cross_entropy(logits, target)
            + hard_weight * F.cross_entropy(duel, torch.zeros_like(target))
        )
        with torch.no_grad():
            top1.append((logits.argmax(dim=1) == target).float().mean())
            hard.append((duel[:, 0] > duel[:, 1]).float().mean())
    stats = {"pair_accuracy": float(sum(top1)) / 2, "beats_other_chain": float(sum(hard)) / 2}
    return (losses[0] + losses[1]) / 2, stats


# -- the encoder file --------------------------------------------------------------------------
def save_encoder(path: str | Path, net: NCLNet, summary: dict[str, Any]) -> Path:
    """The encoder of ``net`` (``ENCODER_PREFIXES``) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {
        key: value.detach().cpu().contiguous()
        for key, value in net.state_dict().items()
        if key.startswith(ENCODER_PREFIXES)
    }
    metadata = {
        "format": ENCODER_FORMAT,
        "format_version": "1",
        "model_config": net.config.to_json(),
        "created": utc_now(),
        "app_version": __version__,
        "pretrain": json.dumps(summary),
    }
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:
            raise OSError(f"cannot write the encoder file {path} ({exc})") from exc
    return path


def read_encoder(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """An encoder file's ``ModelConfig``, weights and summary; ``ModelFileError`` for anything
    that is not one (a model file among them)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != ENCODER_FORMAT:
                raise ModelFileError(
                    f"{path}: not an encoder written by 'ncl-forensics pretrain'; to start from "
                    "a trained model, use 'ncl-forensics finetune --model'"
                )
            config_dict = json.loads(metadata["model_config"])
            check_config_dict(config_dict)
            config = ModelConfig.from_dict(config_dict)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            summary = json.loads(metadata.get("pretrain") or "{}")
    except (OSError, SafetensorError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: cannot be read as an encoder file ({exc})") from exc
    if not all(key.startswith(ENCODER_PREFIXES) for key in tensors):
        raise ModelFileError(f"{path}: holds weights that are not an encoder's")
    return config, tensors, summary


def network_from_encoder(path: str | Path, config: ModelConfig, seed: int) -> NCLNet:
    """A new ``NCLNet``: ``config`` with the encoder's ``ENCODER_FIELDS``, decoder drawn with
    ``seed``, encoder weights from the file."""
    encoder_config, tensors, _ = read_encoder(path)
    config = replace(config, **{name: getattr(encoder_config, name) for name in ENCODER_FIELDS})
    torch.manual_seed(seed)
    net = NCLNet(config)
    try:
        missing, unexpected = net.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # a weight of another shape than its config says
        raise ModelFileError(f"{path}: does not fit the network it describes ({exc})") from exc
    lacking = [key for key in missing if key.startswith(ENCODER_PREFIXES)]
    if lacking or unexpected:
        raise ModelFileError(
            f"{path}: does not fit the network ({len(lacking)} encoder weights missing, "
            f"{len(unexpected)} not the network's)"
        )
    return net


# -- the run -----------------------------------------------------------------------------------
class Pretrainer:
    """One self-supervised run; ``fit`` returns the encoder file, or None when cancelled (the
    checkpoint is kept for ``resume``)."""

    def __init__(self, config: PretrainConfig, log: Callable[[str], None] = print) -> None:
        self.config = config
        self.log = log
        self.run_dir = Path(config.run_dir)
        self._cancelled = False
        self._start_step = 0
        self._spent_s = 0.0
        self._state: dict[str, Any] | None = None

    @classmethod
    def resume(
        cls, run_dir: str | Path, log: Callable[[str], None] = print, more_minutes: float = 0.0
    ) -> Pretrainer:
        run_dir = Path(run_dir)
        state = read_checkpoint(run_dir, CHECKPOINT_NAME, _CHECKPOINT_FORMAT)
        config = PretrainConfig.from_json(state["config"])
        config.run_dir = str(run_dir)
        if more_minutes:
            config.time_limit_min = (config.time_limit_min or 0.0) + more_minutes
        trainer = cls(config, log)
        trainer._state = state
        trainer._start_step = int(state["step"])
        trainer._spent_s = float(state["spent_s"])
        return trainer

    def cancel(self) -> None:
        """Stop after the current step; the checkpoint is written first."""
        self._cancelled = True

    def fit(self) -> Path | None:
        cfg = self.config
        photos = self._photos()
        device = pick_device(cfg.device)
        amp = amp_dtype(device, training=True) if cfg.amp else None
        torch.manual_seed(cfg.seed)
        encoder = ChainEncoder(NCLNet(cfg.model), cfg.dim)
        params = encoder.trained_parameters()
        optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True
        )
        if self._state is not None:
            encoder.load_state_dict(self._state["encoder"])
            optimizer.load_state_dict(self._state["optimizer"])
        encoder.to(device).train()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / CONFIG_NAME).write_text(cfg.to_json() + "\n", encoding="utf-8")
        step = self._start_step
        views = ChainViews(
            photos,
            cfg.crop,
            (cfg.steps - step) * cfg.batch_size,
            cfg.seed,
            offset=step * cfg.batch_size,
        )
        loader = DataLoader(
            views,
            batch_size=cfg.batch_size,
            num_workers=cfg.workers,
            drop_last=True,
            persistent_workers=False,
        )
        self.log(
            f"self-supervised stage on {describe(device)}"
            f"{' (AMP ' + str(amp).removeprefix('torch.') + ')' if amp else ''}: "
            f"{len(photos)} photos, {cfg.batch_size} regions ({VIEWS * cfg.batch_size} crops of "
            f"{cfg.crop} px) a step, from step {step} of {cfg.steps}; run folder {self.run_dir}"
        )
        started = time.monotonic() - self._spent_s
        last_log, timed_out, stats = time.monotonic(), False, {}
        crops_since = 0
        for batch in loader:
            if self._cancelled:
                break
            spent = time.monotonic() - started
            if cfg.time_limit_min is not None and spent >= 60 * cfg.time_limit_min:
                timed_out = True
                break
            for group in optimizer.param_groups:
                group["lr"] = self._lr(step, spent)
            x = batch.to(device).transpose(0, 1).reshape(-1, *batch.shape[2:])
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                z = encoder(x)
            loss, stats = chain_loss(*z.float().split(cfg.batch_size), cfg.tau, cfg.hard_weight)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"step {step + 1}: the loss is not finite; lower --lr (now {cfg.lr:g}) and "
                    f"continue with --resume {self.run_dir}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            crops_since += x.shape[0]
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.monotonic()
                record = {
                    "step": step,
                    "loss": round(loss.item(), 4),
                    **{k: round(v, 4) for k, v in stats.items()},
                    "lr": round(optimizer.param_groups[0]["lr"], 6),
                    "crops_per_s": round(crops_since / max(now - last_log, 1e-9), 2),
                    "elapsed_s": round(now - started, 1),
                }
                last_log, crops_since = now, 0
                with open(self.run_dir / LOG_NAME, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                self.log(
                    f"step {step}/{cfg.steps}: loss {record['loss']:.3f}, pair found "
                    f"{record['pair_accuracy']:.2f}, pair nearer than the other chain "
                    f"{record['beats_other_chain']:.2f}, lr {record['lr']:.4f}, "
                    f"{record['crops_per_s']:.1f} crops/s"
                )
            if step % cfg.checkpoint_every == 0:
                self._checkpoint(encoder, optimizer, step, time.monotonic() - started)
        spent = time.monotonic() - started
        self._checkpoint(encoder, optimizer, step, spent)
        if self._cancelled:
            self.log(f"cancelled at step {step}; continue with --resume {self.run_dir}")
            return None
        summary = {
            "steps": step,
            "regions_seen": step * cfg.batch_size,
            "photos": len(photos),
            "photo_folders": list(cfg.photos),
            "cpu_or_gpu_minutes": round(spent / 60, 1),
            "device": describe(device),
            "stopped_by": "time limit" if timed_out else "steps",
            "last_loss": round(loss.item(), 4) if step > self._start_step else None,
            **{k: round(v, 4) for k, v in stats.items()},
            "recipe": {
                k: v for k, v in cfg.to_dict().items() if k not in ("photos", "out", "run_dir")
            },
        }
        path = save_encoder(cfg.out, encoder.net.cpu(), summary)
        self.log(f"encoder written to {path} after {step} steps ({spent / 60:.1f} min)")
        return path

    def _photos(self) -> list[Path]:
        found: list[Path] = []
        for folder in self.config.photos:
            if not Path(folder).is_dir():
                raise TrainingError(f"{folder}: not a folder of photos")
            photos, _problems = scan_photos(folder, min_side=self.config.crop)
            found += photos
        if not found:
            raise TrainingError(
                f"no usable photos in {', '.join(self.config.photos) or '(none given)'}: give "
                f"folders of authentic photos at least {self.config.crop} px a side"
            )
        return found

    def _lr(self, step: int, spent_s: float) -> float:
        cfg = self.config
        done = step / cfg.steps
        if cfg.time_limit_min is not None:
            done = max(done, spent_s / (60 * cfg.time_limit_min))
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
        return cfg.lr * warm * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))

    def _checkpoint(self, encoder: ChainEncoder, optimizer, step: int, spent_s: float) -> None:
        state = {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.to_json(),
            "encoder": encoder.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "spent_s": spent_s,
        }
        write_checkpoint(self.run_dir, state, CHECKPOINT_NAME)
