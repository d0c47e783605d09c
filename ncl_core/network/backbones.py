"""The backbones NCLNet can be built on: one registry entry each (name, builder, channels).

Every ResNet is built with ``weights=None``: nothing is ever downloaded, every model is trained
from scratch (docs/METHOD.md). Adding a backbone means adding one entry here; the config, the
network, the CLI's choices, the GUI's list and the model tests all read this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torchvision is imported only when a network is built
    from torchvision.models.resnet import ResNet


@dataclass(frozen=True)
class Backbone:
    """One backbone: how to build it, and the channels NCLNet's heads connect to."""

    name: str
    low_channels: int  # layer1 (stride 4): the low-level features and the NCL patches
    high_channels: int  # layer4: the input of ASPP
    build: Callable[[tuple[bool, bool, bool]], ResNet]  # dilate layer2..4 -> random weights
    summary: str


def _dilate_basic_layer(layer, dilation: int, previous_dilation: int) -> None:
    """Turn a stride-2 ResNet-18 stage into a dilated stride-1 one.

    torchvision refuses ``replace_stride_with_dilation`` for BasicBlock, so this does what its
    Bottleneck path does: drop the stride, keep the previous dilation in the first conv and use
    the new one everywhere after it.
    """
    from torchvision.models.resnet import BasicBlock

    for index, block in enumerate(layer):
        assert isinstance(block, BasicBlock)
        d1 = previous_dilation if index == 0 else dilation
        block.conv1.stride = (1, 1)
        block.conv1.dilation = (d1, d1)
        block.conv1.padding = (d1, d1)
        block.conv2.dilation = (dilation, dilation)
        block.conv2.padding = (dilation, dilation)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _resnet18(dilate: tuple[bool, bool, bool]) -> ResNet:
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    dilation = 1
    for layer, flag in zip((net.layer2, net.layer3, net.layer4), dilate):
        if flag:
            _dilate_basic_layer(layer, dilation * 2, dilation)
            dilation *= 2
    return net


def _bottleneck(name: str) -> Callable[[tuple[bool, bool, bool]], ResNet]:
    def build(dilate: tuple[bool, bool, bool]) -> ResNet:
        import torchvision.models

        return getattr(torchvision.models, name)(weights=None, replace_stride_with_dilation=dilate)

    return build


REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("resnet18", 64, 512, _resnet18, "small and fast: CPUs, quick experiments"),
        Backbone("resnet50", 256, 2048, _bottleneck("resnet50"), "a middle ground"),
        Backbone("resnet101", 256, 2048, _bottleneck("resnet101"), "the paper's: GPUs"),
    )
}
BACKBONES: tuple[str, ...] = tuple(REGISTRY)


def get_backbone(name: str) -> Backbone:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}") from None
