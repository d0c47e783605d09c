"""Peak memory of analyzing the largest allowed image in tiled mode.

    .venv/bin/python bench/bench_peak_memory.py                       # 120 MP, one run
    .venv/bin/python bench/bench_peak_memory.py --megapixels 2 4 8    # smaller runs, fitted line

Out-of-memory on a huge image must be avoided by the pixel cap (``DEFAULT_MAX_PIXELS``, 120 MP)
and tiled mode, not by luck. Each size is measured in a fresh process (``ru_maxrss`` is a
lifetime maximum): the process reads a synthetic JPEG of that size with ``read_image`` and
analyzes it with ``Predictor.analyze`` in tiled mode, as the CLI and the GUI do, then reports
its peak resident memory from ``resource.getrusage``. With several sizes, a straight line
``peak = fixed + per_pixel * pixels`` is fitted (every large buffer of the pipeline grows with
the pixel count) and evaluated at the pixel cap.

``--architecture small`` (default) is the resnet18 / stride-16 network of the starter model;
``default`` is the paper's resnet101 / stride 8. Weights are random: they do not change the
cost. CPU only, so the figure is the host memory an analyst's laptop needs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ncl_core.data.io import DEFAULT_MAX_PIXELS

ARCHITECTURES = {
    "small": {"backbone": "resnet18", "output_stride": 16},
    "default": {},
}


def image_shape(megapixels: float) -> tuple[int, int]:
    """(height, width) of a 4:3 image of at most ``megapixels`` (never above the cap)."""
    pixels = min(megapixels * 1e6, DEFAULT_MAX_PIXELS)
    height = int(math.sqrt(pixels * 3 / 4))
    return height, int(pixels // height)


def write_image(path: Path, height: int, width: int) -> None:
    """A photo-like JPEG: smooth colour gradients, texture, and a pasted block."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (max(2, height // 256), max(2, width // 256), 3), np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    del small
    noise = rng.integers(0, 24, (height, 1, 1), np.uint8)  # cheap texture, no full-size float
    image += noise
    image[height // 3 : height // 2, width // 3 : width // 2] = 200
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    path.write_bytes(buf.tobytes())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(image: Path, architecture: str, tile: int, threads: int | None) -> dict:
    """In this (fresh) process: load a model, analyze ``image`` tiled, report peak memory."""
    import torch

    from ncl_core.inference.predictor import InferenceSettings, Predictor
    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = save_model(
            Path(tmp) / "m.safetensors", NCLNet(ModelConfig(**ARCHITECTURES[architecture]))
        )
        predictor = Predictor.load(model_path, device="cpu")
    after_load = peak_rss_mib()
    settings = InferenceSettings(mode="tiled", tile=tile)
    t0 = time.perf_counter()
    result = predictor.analyze(image, settings=settings)
    seconds = time.perf_counter() - t0
    return {
        "megapixels": result.width * result.height / 1e6,
        "width": result.width,
        "height": result.height,
        "peak_rss_mib": peak_rss_mib(),
        "after_model_load_mib": after_load,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "architecture": architecture,
        "tile": tile,
    }


def run_child(image: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", str(image)]
    command += ["--architecture", args.architecture, "--tile", str(args.tile)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``."""
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--megapixels",
        type=float,
        nargs="+",
        default=[DEFAULT_MAX_PIXELS / 1e6],
        help="image sizes to measure (default: the pixel cap)",
    )
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="small")
    parser.add_argument("--tile", type=int, default=512, help="tile side in px (default 512)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.architecture, args.tile, args.threads)))
        return

    print(f"{platform.platform()}, {platform.processor() or platform.machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.megapixels:
            height, width = image_shape(megapixels)
            image = Path(tmp) / f"synthetic-{width}x{height}.jpg"
            write_image(image, height, width)
            row = run_child(image, args)
            image.unlink()
            rows.append(row)
            print(
                f"{row['width']:>6} x {row['height']:<6} {row['megapixels']:7.1f} MP  "
                f"peak RSS {row['peak_rss_mib']:8.0f} MiB  (model loaded: "
                f"{row['after_model_load_mib']:.0f} MiB)  {row['seconds']:7.1f} s  "
                f"{row['threads']} thread(s)",
                flush=True,
            )
    cap = DEFAULT_MAX_PIXELS / 1e6
    if len(rows) >= 2:
        fixed, per_mp = fit_line([(r["megapixels"], r["peak_rss_mib"]) for r in rows])
        print(
            f"fit: peak RSS = {fixed:.0f} MiB + {per_mp:.2f} MiB/MP "
            f"({per_mp * 2**20 / 1e6:.1f} bytes/pixel)"
        )
        print(f"predicted peak RSS at the {cap:.0f} MP cap: {fixed + per_mp * cap:.0f} MiB")


if __name__ == "__main__":
    main()
