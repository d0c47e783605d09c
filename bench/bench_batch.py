"""Batch-report throughput against the model alone on the same images.

    .venv/bin/python bench/bench_batch.py [--model PATH | --untrained] [--n 200] [--size 1024]

Writes ``--n`` synthetic JPEGs of ``--size`` px into a temporary folder, then times
(1) ``Predictor.analyze`` in a loop, (2) ``Predictor.analyze_many`` alone and (3) ``run_batch``
(analysis + pictures + tables + HTML + PDF + hashes). The figure is images/s of (3) over (1);
the target is >= 0.85. Also prints the report's size on disk. ``--untrained`` times a randomly
initialised model of the default architecture (weights do not change the cost) when no model
file is at hand.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ncl_core.config import ModelConfig
from ncl_core.infer import Predictor
from ncl_core.model import NCLNet
from ncl_core.modelfile import save_model
from ncl_core.report import ReportOptions, run_batch


def write_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (smooth gradients, texture, a pasted block) of ``size`` px."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    paths = []
    for i in range(n):
        phase = rng.uniform(0, 2 * np.pi, 3)
        base = np.stack([np.sin(6 * xx + phase[c]) * np.cos(4 * yy - phase[c]) for c in range(3)])
        img = (base.transpose(1, 2, 0) * 90 + 128 + rng.normal(0, 10, (size, size, 3))).clip(0, 255)
        img = img.astype(np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        img[y : y + size // 4, x : x + size // 4] = np.roll(img, size // 3, axis=1)[
            y : y + size // 4, x : x + size // 4
        ]
        path = folder / f"img_{i:04d}.jpg"
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        path.write_bytes(buf.tobytes())
        paths.append(path)
    return paths


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def sync(predictor: Predictor) -> None:
    if predictor.torch_device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: default)")
    parser.add_argument("--untrained", action="store_true", help="random default-config model")
    parser.add_argument("--device", default=None, help="cuda, cpu, mps (default: best)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--mode", default="resize", choices=("resize", "tiled"))
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ncl-bench-batch-") as tmp:
        work = args.workdir or Path(tmp)
        model_path = args.model
        if args.untrained:
            torch.manual_seed(0)
            model_path = save_model(work / "untrained.safetensors", NCLNet(ModelConfig()))
        predictor = Predictor.load(model_path, device=args.device)
        paths = write_images(work / "images", args.n, args.size)

        for path in paths[:3]:  # warm-up: kernels, cudnn autotuning, file cache
            predictor.analyze(path, mode=args.mode)
        sync(predictor)

        start = time.perf_counter()
        for path in paths:
            predictor.analyze(path, mode=args.mode)
        sync(predictor)
        t_loop = time.perf_counter() - start

        start = time.perf_counter()
        for _ in predictor.analyze_many(paths, mode=args.mode):
            pass
        sync(predictor)
        t_many = time.perf_counter() - start

        out = work / f"report-{time.strftime('%Y%m%d-%H%M%S')}"  # run_batch wants a new folder
        start = time.perf_counter()
        summary = run_batch([work / "images"], predictor, out, ReportOptions(mode=args.mode))
        sync(predictor)
        t_batch = time.perf_counter() - start

        n = len(paths)
        size = folder_size(out)
        result = {
            "device": predictor.device,
            "model": predictor.model_id,
            "images": n,
            "px": args.size,
            "mode": args.mode,
            "analyze_loop_img_s": round(n / t_loop, 2),
            "analyze_many_img_s": round(n / t_many, 2),
            "run_batch_img_s": round(n / t_batch, 2),
            "ratio_vs_loop": round(t_loop / t_batch, 3),
            "ratio_vs_many": round(t_many / t_batch, 3),
            "report_mb": round(size / 1e6, 1),
            "report_kb_per_image": round(size / 1e3 / n, 1),
            "rows_ok": summary.n_ok,
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
        }
        print(
            "| device | images | analyze loop (img/s) | analyze_many (img/s) | run_batch (img/s) "
            "| ratio vs loop | report size |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {result['device']} | {n} x {args.size} px | {result['analyze_loop_img_s']} "
            f"| {result['analyze_many_img_s']} | {result['run_batch_img_s']} "
            f"| {result['ratio_vs_loop']} | {result['report_mb']} MB "
            f"({result['report_kb_per_image']} kB/image) |"
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
