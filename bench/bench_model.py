"""Eval-forward latency of NCLNet vs torchvision's DeepLabV3 (same backbone, stride, threads).

    .venv/bin/python bench/bench_model.py [--size 512] [--repeats 3] [--presets resnet18:8 ...]

Measurements alternate ours / torchvision so that background load hits both alike; the ratio
is the figure. Prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torchvision.models import segmentation
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3

from ncl_core.network.model import NCLNet, build_backbone, count_parameters
from ncl_core.network.net_config import ModelConfig


def torchvision_reference(config: ModelConfig) -> torch.nn.Module:
    """torchvision's own model where one exists (ResNet-50/101 at OS 8), else its parts."""
    if config.output_stride == 8 and config.backbone in ("resnet50", "resnet101"):
        build = getattr(segmentation, f"deeplabv3_{config.backbone}")
        return build(weights=None, weights_backbone=None, num_classes=1, aux_loss=False)
    channels = 512 if config.backbone == "resnet18" else 2048
    body = IntermediateLayerGetter(build_backbone(config), return_layers={"layer4": "out"})
    return DeepLabV3(body, DeepLabHead(channels, 1, config.aspp_rates))


def time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--presets",
        nargs="*",
        default=[f"{b}:{s}" for b in ("resnet18", "resnet50", "resnet101") for s in (8, 16)],
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"CPU: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()},"
        f" torch {torch.__version__}, input 1x3x{args.size}x{args.size}, median of {args.repeats}"
    )
    print("| preset | OS | params (M) | ours (s) | torchvision (s) | ratio |")
    print("|---|---|---|---|---|---|")
    x = torch.randn(1, 3, args.size, args.size)
    for preset in args.presets:
        backbone, stride = preset.split(":")
        config = ModelConfig(backbone=backbone, output_stride=int(stride))
        ours, ref = NCLNet(config).eval(), torchvision_reference(config).eval()
        time_once(ours, x), time_once(ref, x)  # warm-up
        t_ours, t_ref = [], []
        for _ in range(args.repeats):
            t_ours.append(time_once(ours, x))
            t_ref.append(time_once(ref, x))
        a, b = statistics.median(t_ours), statistics.median(t_ref)
        print(
            f"| {backbone} | {stride} | {count_parameters(ours) / 1e6:.1f} | {a:.3f} | {b:.3f} |"
            f" {a / b:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
