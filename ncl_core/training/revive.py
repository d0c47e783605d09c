"""Dead decoder channels brought back to life without changing what the model computes.

The decoder's last stages are narrow (``stage3_reduce`` and ``stage3``: 32 channels at stride 2;
``stage4``: 16 at full resolution, the only input of the final head). A channel whose batch norm
output is negative on every pixel is *dead*: its ReLU passes nothing and no gradient, so no
further training can bring it back, and weight decay then shrinks it to nothing. Trained long
enough at a high decoder learning rate, a model can lose most of ``stage4``: every channel the
final head weighs positively dies, the final logit can no longer rise above the head's bias, and
the map (and the image score, its top pixels) saturates at one value on many images.

:func:`revive_dead_channels` gives each dead channel of those stages fresh random input weights,
sets its batch norm so that it is active on about half the pixels of the probe images, and zeroes
the weights with which the next layers read it. The model's output is unchanged (what the next
layers receive from the channel is multiplied by zero) while the channel now passes gradients:
the next layers' weights for it start learning at the first step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ncl_core.network.model import NCLNet
from ncl_core.training.steps import evaluating

# A channel is dead when at most this fraction of the probe's pixels activate it.
DEAD_FRACTION = 1e-3


class _Stage(NamedTuple):
    block: str  # a conv -> batch norm -> ReLU Sequential of NCLNet
    readers: tuple[str, ...]  # convolutions that take its channels as input channels


# In network order: a stage's readers may be the next stage's convolution.
STAGES = (
    _Stage("stage3_reduce", ("stage3.0",)),
    _Stage("stage3", ("stage4.0", "head3")),
    _Stage("stage4", ("head4",)),
)


def _over_probe(
    model: NCLNet, images: torch.Tensor, layer: Callable[[str], nn.Module], batch: int
) -> dict[str, list[torch.Tensor]]:
    """For each stage, the outputs of ``layer(stage)`` over ``images`` (eval mode, no grad),
    one tensor per batch of ``batch`` images."""
    seen: dict[str, list[torch.Tensor]] = {stage.block: [] for stage in STAGES}
    hooks = [
        layer(stage.block).register_forward_hook(
            lambda _m, _i, out, name=stage.block: seen[name].append(out.detach().float())
        )
        for stage in STAGES
    ]
    try:
        with torch.no_grad(), evaluating(model):
            for start in range(0, len(images), batch):
                model(images[start : start + batch])
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def active_fractions(
    model: NCLNet, images: torch.Tensor, batch: int = 4
) -> dict[str, torch.Tensor]:
    """Per stage, the fraction of the probe's pixels on which each channel is active (its batch
    norm output is positive), in eval mode."""
    seen = _over_probe(model, images, lambda name: model.get_submodule(name)[1], batch)
    return {
        name: torch.cat([(out > 0).float().mean(dim=(2, 3)) for out in outs]).mean(dim=0)
        for name, outs in seen.items()
    }


def dead_channels(model: NCLNet, images: torch.Tensor, batch: int = 4) -> dict[str, torch.Tensor]:
    """Per stage, the indices of the channels that are dead on the probe ``images``."""
    return {
        name: (frac <= DEAD_FRACTION).nonzero()[:, 0]
        for name, frac in active_fractions(model, images, batch).items()
    }


@torch.no_grad()
def revive_dead_channels(
    model: NCLNet, images: torch.Tensor, seed: int = 0, batch: int = 4
) -> dict[str, tuple[int, int]]:
    """Revive the dead channels of the decoder's narrow stages (see the module's docstring);
    ``images`` (``[N, 3, H, W]``, normalised as the network takes them) are the probe.

    Returns, per stage, ``(revived, channels)``. The model's eval-mode output is unchanged.
    """
    dead = dead_channels(model, images, batch)
    generator = torch.Generator().manual_seed(seed)
    for stage in STAGES:
        idx = dead[stage.block]
        if not len(idx):
            continue
        conv = model.get_submodule(stage.block)[0]
        fresh = torch.empty_like(conv.weight[idx])
        nn.init.kaiming_normal_(fresh, mode="fan_in", nonlinearity="relu", generator=generator)
        conv.weight[idx] = fresh
    for stage in STAGES:  # after every fresh row: no reader weighs a revived channel
        for reader in stage.readers:
            model.get_submodule(reader).weight[:, dead[stage.block]] = 0.0
    # The revived channels' batch norms: centred and scaled on what their new weights give on
    # the probe (readers' zero weights keep this from reaching the output), so each is active
    # on about half of the pixels in eval mode as in training.
    convs = _over_probe(model, images, lambda name: model.get_submodule(name)[0], batch)
    for stage in STAGES:
        idx = dead[stage.block]
        if not len(idx):
            continue
        out = torch.cat(convs[stage.block])[:, idx]  # N, k, H, W
        bn = model.get_submodule(stage.block)[1]
        bn.running_mean[idx] = out.mean(dim=(0, 2, 3)).to(bn.running_mean.dtype)
        bn.running_var[idx] = out.var(dim=(0, 2, 3)).clamp(min=1e-6).to(bn.running_var.dtype)
        bn.weight[idx] = 1.0
        bn.bias[idx] = 0.0
    return {
        stage.block: (len(dead[stage.block]), model.get_submodule(stage.block)[0].out_channels)
        for stage in STAGES
    }
