"""Decode + augment throughput of SegmentationDataset at 512x512, per DataLoader worker count.

    .venv/bin/python bench/bench_dataload.py [--images 48] [--source 1024x768] [--workers 0 1 2]

Writes generated JPEGs (and PNG masks) to a temporary folder, then times full passes of a
DataLoader (batch 8) with the default training augmentation; the first batch of each pass
(worker start-up) is not counted. Prints Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from ncl_core.data.datasets import SegmentationDataset, scan_dataset
from ncl_core.data.synth import random_shape

from machine import cpu_name


def write_images(folder: Path, count: int, width: int, height: int) -> None:
    """Camera-like JPEGs (smooth shading plus fine noise, quality 90) with blob masks."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(count):
        low = rng.random((height // 32 + 1, width // 32 + 1, 3)).astype(np.float32)
        shade = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) * 200
        image = np.clip(shade + rng.normal(0, 8, shade.shape) + 20, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "images" / f"{i:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        shape = random_shape(0.1 * width * height, rng, "blob")
        mask = np.zeros((height, width), np.uint8)
        h, w = min(shape.shape[0], height), min(shape.shape[1], width)
        mask[:h, :w] = shape[:h, :w] * 255
        cv2.imwrite(str(folder / "masks" / f"{i:04d}.png"), mask)


def images_per_second(dataset: SegmentationDataset, workers: int, passes: int) -> float:
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, shuffle=False)
    counted, elapsed = 0, 0.0
    for epoch in range(passes):
        dataset.set_epoch(epoch)
        iterator = iter(loader)
        next(iterator)  # worker start-up and the first decode are not steady state
        start = time.perf_counter()
        for batch in iterator:
            counted += batch["image"].shape[0]
        elapsed += time.perf_counter() - start
    return counted / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--source", default="1024x768", help="generated JPEG size, WxH")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.source.lower().split("x"))
    command = " ".join(["python", "bench/bench_dataload.py", *map(shlex.quote, sys.argv[1:])])
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
        f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads; "
        f"{args.images} JPEGs {width}x{height} q90 -> {args.size}x{args.size}, default "
        f"AugmentConfig, batch 8, {args.passes} passes. Command: `{command}`"
    )
    print("| DataLoader workers | images/s | ms per image |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ncl-bench-") as tmp:
        write_images(Path(tmp), args.images, width, height)
        samples = scan_dataset(tmp).samples
        for workers in args.workers:
            dataset = SegmentationDataset(samples, size=args.size, train=True, seed=0)
            rate = images_per_second(dataset, workers, args.passes)
            print(f"| {workers} | {rate:.1f} | {1000 / rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
