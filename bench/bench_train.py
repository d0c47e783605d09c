"""Training throughput (images/s) per preset, fp32 and — on CUDA — with AMP, plus peak GPU memory.

    .venv/bin/python bench/bench_train.py                        # CPU: every preset, 256 px
    .venv/bin/python bench/bench_train.py --device cuda --size 512 --batch-size 8 --steps 200

Real training steps (forward, NCL + PC loss, backward, SGD) on random images with a random
blob mask, after warm-up steps; prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from ncl_core.config import LossConfig, ModelConfig
from ncl_core.device import amp_dtype, describe, pick_device
from ncl_core.losses import total_loss
from ncl_core.model import NCLNet


def _batch(batch_size: int, size: int, device: torch.device):
    images = torch.randn(batch_size, 3, size, size, device=device)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = ((yy - size * 0.4) ** 2 + (xx - size * 0.55) ** 2 < (size * 0.2) ** 2).float()
    return images, blob.expand(batch_size, 1, size, size).contiguous().to(device)


def measure(preset: str, stride: int, args, device: torch.device, amp: torch.dtype | None):
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone=preset, output_stride=stride)).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    images, masks = _batch(args.batch_size, args.size, device)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = total_loss(model(images, masks), masks, LossConfig())["total"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return args.steps * args.batch_size / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--presets",
        nargs="*",
        default=[f"{b}:{s}" for b in ("resnet18", "resnet50", "resnet101") for s in (16, 8)],
    )
    args = parser.parse_args()
    device = pick_device(args.device)
    modes = [None] + ([amp_dtype(device)] if device.type == "cuda" else [])
    print(
        f"device {describe(device)}, {platform.machine()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}; {args.size} px, batch {args.batch_size}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    print("| preset | OS | precision | images/s | peak GPU memory (GiB) |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        backbone, stride = preset.split(":")
        for amp in modes:
            ips, peak = measure(backbone, int(stride), args, device, amp)
            name = "fp32" if amp is None else str(amp).replace("torch.", "AMP ")
            print(f"| {backbone} | {stride} | {name} | {ips:.2f} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
