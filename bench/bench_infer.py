"""Inference benchmarks: tiled mode time and peak RSS by image size; analyze_many vs the model.

    .venv/bin/python bench/bench_infer.py tiled [--model M] [--sizes 1 12 48]
    .venv/bin/python bench/bench_infer.py many [--model M] [--count 40] [--side 1024]

``tiled`` runs each size in a fresh process, so the peak RSS (ru_maxrss) belongs to that size
alone. ``many`` compares ``analyze_many`` on files (decode + hash ahead in a thread) with the
model alone on the same, already decoded images (``analyze`` on arrays); the ratio is the
figure (target >= 0.85). Without --model, an untrained network of the starter's architecture
is used: the cost is the same.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ncl_core.settings import InferenceSettings


def _predictor(model: str | None, device: str | None):
    from ncl_core.inference.predictor import Predictor

    if model:
        return Predictor.load(model, device)
    import torch

    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp()) / "untrained.safetensors"
    save_model(path, NCLNet(ModelConfig(backbone="resnet18", output_stride=16)))
    return Predictor.load(path, device)


def _photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields plus noise: compresses and decodes like a photo, costs little to make."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-8, 9, (height, width, 1), dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def tiled_one(megapixels: float, model: str | None, device: str | None) -> dict:
    width = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    predictor = _predictor(model, device)
    image = _photo_like(height, width)
    start = time.perf_counter()
    result = predictor.analyze(image, InferenceSettings(mode="tiled"))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": f"{width}x{height}",
        "megapixels": round(width * height / 1e6, 1),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "tile": result.settings["tile"],
        "device": result.device,
    }


def cmd_tiled(args) -> None:
    print("| image | MP | tiled time (s) | peak RSS (MB) | tile |")
    print("|---|---|---|---|---|")
    for mp in args.sizes:
        code = (
            "import json, sys; sys.path.insert(0, 'bench'); import bench_infer as b; "
            f"print(json.dumps(b.tiled_one({mp}, {args.model!r}, {args.device!r})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {row['size']} | {row['megapixels']} | {row['seconds']} | {row['peak_rss_mb']} |"
            f" {row['tile']} |",
            flush=True,
        )


def cmd_many(args) -> None:
    from ncl_core.data.io import read_image
    from ncl_core.inference.render import save_jpeg

    predictor = _predictor(args.model, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.count):
            path = Path(tmp) / f"img{i:03d}.jpg"
            save_jpeg(path, _photo_like(args.side * 3 // 4, args.side, seed=i), quality=92)
            paths.append(path)
        arrays = [read_image(p)[0] for p in paths]
        predictor.analyze(arrays[0])  # warm-up
        start = time.perf_counter()
        for array in arrays:
            predictor.analyze(array)
        alone = args.count / (time.perf_counter() - start)
        start = time.perf_counter()
        results = list(predictor.analyze_many(paths))
        many = args.count / (time.perf_counter() - start)
    assert all(r.ok for r in results)
    print(f"{args.count} JPEGs of {args.side} px, resize mode, device {predictor.device}")
    print("| model alone (img/s) | analyze_many (img/s) | ratio |")
    print("|---|---|---|")
    print(f"| {alone:.2f} | {many:.2f} | {many / alone:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("tiled", "many"))
    parser.add_argument("--model")
    parser.add_argument("--device")
    parser.add_argument("--sizes", type=float, nargs="*", default=[1, 12, 48])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()
    {"tiled": cmd_tiled, "many": cmd_many}[args.what](args)


if __name__ == "__main__":
    main()
