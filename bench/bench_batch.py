"""Batch-report throughput against the analysis alone on the same images, in one run.

    .venv/bin/python bench/bench_batch.py [--model PATH | --untrained] [--n 200] [--size 1024]
        [--rounds 3]

Writes ``--n`` synthetic JPEGs of ``--size`` px into a temporary folder, then, ``--rounds``
times back to back (so that a machine's changing load hits both alike): (1) the analysis
alone, ``load_evidence`` + ``Predictor.analyze`` in a loop, and (2) ``run_batch``: analysis,
pictures, CSV/JSONL rows, HTML, PDF and hashes. The figure is images/s of (2) over (1), the
median over the rounds; the target is >= 0.85. ``analyze_stream`` alone (read-ahead, no
pictures) is timed once for reference. Also prints the report's size on disk.
``--untrained`` times a randomly initialised model of the default architecture (weights do
not change the cost) when no model file is at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ncl_core.evidence.image import load_evidence
from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig
from ncl_core.report import ReportOptions, run_batch
from ncl_core.settings import InferenceSettings

from machine import cpu_name


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
    parser.add_argument("--rounds", type=int, default=3, help="loop + report pairs (median)")
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
            predictor.analyze(path, InferenceSettings(mode=args.mode))
        sync(predictor)

        def analysis_loop() -> float:
            start = time.perf_counter()
            for path in paths:
                predictor.analyze(load_evidence(path), mode=args.mode)
            sync(predictor)
            return time.perf_counter() - start

        def report(round_: int) -> tuple[float, Path, object]:
            out = work / f"report-{time.strftime('%Y%m%d-%H%M%S')}-{round_}"  # a new folder
            start = time.perf_counter()
            summary = run_batch([work / "images"], predictor, out, ReportOptions(mode=args.mode))
            sync(predictor)
            return time.perf_counter() - start, out, summary

        start = time.perf_counter()
        for _ in predictor.analyze_stream(paths, InferenceSettings(mode=args.mode)):
            pass
        sync(predictor)
        t_stream = time.perf_counter() - start

        loops, batches, ratios = [], [], []
        for r in range(args.rounds):
            t_loop = analysis_loop()
            t_batch, out, summary = report(r)
            loops.append(t_loop)
            batches.append(t_batch)
            ratios.append(t_loop / t_batch)
            print(
                f"round {r + 1}: analysis {args.n / t_loop:.2f} img/s, report "
                f"{args.n / t_batch:.2f} img/s, ratio {t_loop / t_batch:.3f}",
                flush=True,
            )

        n = len(paths)
        size = folder_size(out)
        result = {
            "device": predictor.device,
            "model": predictor.model_id,
            "images": n,
            "px": args.size,
            "mode": args.mode,
            "rounds": args.rounds,
            "analysis_img_s": round(n / statistics.median(loops), 2),
            "analyze_stream_img_s": round(n / t_stream, 2),
            "run_batch_img_s": round(n / statistics.median(batches), 2),
            "ratio": round(statistics.median(ratios), 3),
            "ratios": [round(x, 3) for x in ratios],
            "report_mb": round(size / 1e6, 1),
            "report_kb_per_image": round(size / 1e3 / n, 1),
            "rows_ok": summary.n_ok,
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        }
        print(
            "| device | images | analysis loop (img/s) | analyze_stream (img/s) "
            "| run_batch (img/s) | ratio (median) | report size |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {result['device']} | {n} x {args.size} px | {result['analysis_img_s']} "
            f"| {result['analyze_stream_img_s']} | {result['run_batch_img_s']} "
            f"| {result['ratio']} ({', '.join(map(str, result['ratios']))}) "
            f"| {result['report_mb']} MB ({result['report_kb_per_image']} kB/image) |"
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
