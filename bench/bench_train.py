"""Training throughput: presets, the CPU study, NCL's price against a plain step, end to end.

    .venv/bin/python bench/bench_train.py                       # images/s per preset (fp32)
    .venv/bin/python bench/bench_train.py --study cpu           # starter preset: ratios, one run
    .venv/bin/python bench/bench_train.py --study ncl-price [--device cuda]
    .venv/bin/python bench/bench_train.py --study data --photos DIR
    .venv/bin/python bench/bench_train.py --study e2e --photos DIR [--before TREE]

``--study cpu`` times real training steps (forward, NCL + PC loss, backward, SGD) of the starter
preset (resnet18, output stride 16, 256 px, batch 8) on random images with a blob mask, for
every combination worth having (fp32 or bf16 autocast, contiguous or channels-last, 1 or 2
intra-op threads, eager or ``torch.compile``), round-robin so that a machine's changing load
falls on all of them alike; it prints the median seconds per step and the ratio to today's
default (fp32, contiguous, torch's default threads). ``--study ncl-price`` compares the full NCL
step with the plain step (no pivot branches, no contrastive loss) of the same network.
``--study data`` times the data side: forgeries made on the fly from a photo folder against
the same forgeries pre-generated to disk and read back. ``--study e2e`` runs the real
``ncl-forensics train`` for a few dozen steps and reads images/s from its event log; with
``--before TREE`` (a checkout of an older commit) it runs the same command there too.
Prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ncl_core.network.device import amp_dtype, describe, pick_device
from ncl_core.network.losses import total_loss
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import LossConfig, ModelConfig

from machine import cpu_name


def _batch(batch_size: int, size: int, device: torch.device):
    images = torch.randn(batch_size, 3, size, size, device=device)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = ((yy - size * 0.4) ** 2 + (xx - size * 0.55) ** 2 < (size * 0.2) ** 2).float()
    return images, blob.expand(batch_size, 1, size, size).contiguous().to(device)


@dataclass
class Variant:
    """One way of running the same training step."""

    name: str
    threads: int | None = None  # None: torch's default
    channels_last: bool = False
    amp: torch.dtype | None = None
    compile: bool = False
    plain: bool = False  # no pivot branches, no contrastive loss


class Stepper:
    """A model, its optimizer and one training step, set up for a variant."""

    def __init__(self, variant: Variant, args, device: torch.device) -> None:
        torch.manual_seed(0)
        self.variant, self.device = variant, device
        config = ModelConfig(
            backbone=args.backbone, output_stride=args.output_stride, pivot=not variant.plain
        )
        self.model = NCLNet(config).to(device).train()
        self.loss = LossConfig(omega=0.0) if variant.plain else LossConfig()
        self.images, self.masks = _batch(args.batch_size, args.size, device)
        if variant.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if variant.compile else self.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.scaler = torch.amp.GradScaler("cuda", enabled=variant.amp == torch.float16)
        self.last_loss = float("nan")

    def step(self) -> None:
        amp = self.variant.amp
        with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            outputs = self.forward(self.images, self.masks)
        # The loss in fp32, whatever the forward ran in (as the trainer does).
        loss = total_loss(outputs, self.masks, self.loss)["total"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_loss = float(loss.detach())

    def timed(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        if self.variant.threads is not None:
            torch.set_num_threads(self.variant.threads)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps


def round_robin(variants: list[Variant], args, device: torch.device) -> dict[str, float]:
    """Median seconds per step of each variant, timed in turn ``args.rounds`` times."""
    default_threads = torch.get_num_threads()
    steppers = {}
    for variant in variants:
        torch.set_num_threads(variant.threads or default_threads)
        stepper = Stepper(variant, args, device)
        for _ in range(args.warmup):  # includes torch.compile's compilation
            stepper.step()
        steppers[variant.name] = stepper
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            torch.set_num_threads(variant.threads or default_threads)
            times[variant.name].append(steppers[variant.name].timed(args.steps))
    torch.set_num_threads(default_threads)
    for name, stepper in steppers.items():
        if not torch.isfinite(torch.tensor(stepper.last_loss)):
            raise SystemExit(f"{name}: the loss is not finite ({stepper.last_loss})")
    return {name: statistics.median(values) for name, values in times.items()}


def _header(args, device: torch.device) -> None:
    print(
        f"{cpu_name()} ({os.cpu_count()} logical CPUs), device {describe(device)}, "
        f"torch {torch.__version__}, default threads {torch.get_num_threads()}; "
        f"{args.backbone}/{args.output_stride}, {args.size} px, batch {args.batch_size}; "
        f"median of {args.rounds} rounds of {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")


def _table(seconds: dict[str, float], args, baseline: str) -> None:
    print("| variant | s/step | images/s | × " + baseline + " |")
    print("|---|---|---|---|")
    for name, value in seconds.items():
        ips = args.batch_size / value
        print(f"| {name} | {value:.3f} | {ips:.2f} | {seconds[baseline] / value:.2f} |")


def study_cpu(args, device: torch.device) -> None:
    cores = os.cpu_count() or 1
    bf16 = torch.bfloat16
    variants = [
        Variant("fp32 (default threads)"),
        Variant("fp32, 1 thread", threads=1),
        Variant(f"fp32, {cores} threads", threads=cores),
        Variant("fp32 channels-last", channels_last=True),
        Variant("bf16 autocast", amp=bf16),
        Variant("bf16 + channels-last", channels_last=True, amp=bf16),
        Variant("bf16 + channels-last, 1 thread", threads=1, channels_last=True, amp=bf16),
    ]
    if args.compile:
        variants.append(
            Variant("bf16 + channels-last + compile", channels_last=True, amp=bf16, compile=True)
        )
    _header(args, device)
    _table(round_robin(variants, args, device), args, variants[0].name)


def study_ncl_price(args, device: torch.device) -> None:
    cpu = device.type == "cpu"
    amp = torch.bfloat16 if cpu else amp_dtype(device)
    cl = True
    label = "bf16 + channels-last" if cpu else f"AMP {str(amp).replace('torch.', '')}"
    variants = [
        Variant(f"plain, {label}", channels_last=cl, amp=amp, plain=True),
        Variant(f"NCL, {label}", channels_last=cl, amp=amp),
        Variant("plain, fp32", plain=True),
        Variant("NCL, fp32"),
    ]
    _header(args, device)
    seconds = round_robin(variants, args, device)
    _table(seconds, args, variants[0].name)
    for precision in (label, "fp32"):
        ratio = seconds[f"NCL, {precision}"] / seconds[f"plain, {precision}"]
        print(f"NCL / plain step ({precision}): {ratio:.2f}×")
    if args.profile:
        _profile(Variant("NCL", channels_last=cl, amp=amp), args, device)


def _profile(variant: Variant, args, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity, profile

    stepper = Stepper(variant, args, device)
    stepper.step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        stepper.step()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=20))


def study_data(args) -> None:
    """Items/s of forgeries made on the fly against the same forgeries read back from disk."""
    import cv2

    from ncl_core.data.datasets import SegmentationDataset, scan_dataset
    from ncl_core.data.synth import SynthConfig, SynthDataset, generate_dataset, scan_photos

    cv2.setNumThreads(1)
    photos, _ = scan_photos(args.photos)
    config = SynthConfig(size=args.size)
    fly = SynthDataset(photos, config, length=args.items)
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(args.photos, Path(tmp) / "shards", args.items, config)
        index = scan_dataset(Path(tmp) / "shards")
        disk = SegmentationDataset(index.samples, args.size, train=True)
        rates = {}
        # One pass each, photo cache cold: in training the pool cycles through a cache smaller
        # than itself, so nearly every item decodes its host photo.
        for name, dataset in (("made on the fly", fly), ("pre-generated, read back", disk)):
            start = time.perf_counter()
            for i in range(len(dataset)):
                dataset[i]
            rates[name] = len(dataset) / (time.perf_counter() - start)
    print(f"{cpu_name()}; {args.items} items of {args.size} px, one process, one thread")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print("| data side | items/s |")
    print("|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} |")


def _train_rate(tree: Path, args, threads: int | None) -> float:
    """images/s of ``ncl-forensics train`` run from ``tree``, after its first steps."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [
            sys.executable, "-m", "ncl_core", "train", "--synthetic", str(args.photos),
            "--steps", str(args.e2e_steps), "--size", str(args.size),
            "--batch-size", str(args.batch_size), "--backbone", args.backbone,
            "--output-stride", str(args.output_stride), "--workers", "1", "--seed", "0",
            "--synthetic-length", str(args.e2e_steps * args.batch_size), "--val-every", "1000",
            "--run-dir", str(run), "--out", str(Path(tmp) / "model.safetensors"),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.pop("OMP_NUM_THREADS", None)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True)
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    from datetime import datetime

    # Wall clock between step events (data loading included), after the start-up steps.
    steps = [e for e in events if e.get("type") == "step"]
    first, last = steps[args.e2e_skip], steps[-1]
    seconds = (
        datetime.fromisoformat(last["time"]) - datetime.fromisoformat(first["time"])
    ).total_seconds()
    return (last["step"] - first["step"]) * args.batch_size / seconds


def study_e2e(args) -> None:
    here = Path(__file__).resolve().parents[1]
    trees = [("this tree", here)]
    if args.before:
        trees.insert(0, ("before", Path(args.before).resolve()))
    print(f"{cpu_name()} ({os.cpu_count()} logical CPUs); ncl-forensics train --synthetic")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print("| code | intra-op threads | images/s (end to end) |")
    print("|---|---|---|")
    for name, tree in trees:
        for threads in args.e2e_threads:
            rate = _train_rate(tree, args, threads or None)
            print(f"| {name} | {threads or 'default'} | {rate:.2f} |", flush=True)


def presets(args, device: torch.device) -> None:
    _header(args, device)
    print("| preset | OS | images/s (fp32) |")
    print("|---|---|---|")
    for preset in args.presets:
        backbone, stride = preset.split(":")
        args.backbone, args.output_stride = backbone, int(stride)
        seconds = round_robin([Variant(preset)], args, device)[preset]
        print(f"| {backbone} | {stride} | {args.batch_size / seconds:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("presets", "cpu", "ncl-price", "data", "e2e"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--output-stride", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--profile", action="store_true", help="ncl-price: profile one NCL step")
    parser.add_argument("--photos", help="data/e2e: a folder of authentic photos")
    parser.add_argument("--items", type=int, default=96, help="data: items per pass")
    parser.add_argument("--e2e-steps", type=int, default=40)
    parser.add_argument("--e2e-skip", type=int, default=5, help="e2e: start-up steps not counted")
    parser.add_argument("--before", help="e2e: a checkout of the code to compare with")
    parser.add_argument(
        "--e2e-threads", type=int, nargs="+", default=[0, 1], help="e2e: OMP threads (0: default)"
    )
    parser.add_argument(
        "--presets",
        nargs="*",
        default=[f"{b}:{s}" for b in ("resnet18", "resnet50", "resnet101") for s in (16, 8)],
    )
    args = parser.parse_args()
    if args.study in ("data", "e2e") and not args.photos:
        parser.error(f"--study {args.study} needs --photos DIR")
    device = pick_device(args.device)
    if args.study == "cpu":
        study_cpu(args, device)
    elif args.study == "ncl-price":
        study_ncl_price(args, device)
    elif args.study == "data":
        study_data(args)
    elif args.study == "e2e":
        study_e2e(args)
    else:
        presets(args, device)


if __name__ == "__main__":
    main()
