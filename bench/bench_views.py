"""Forensic views: the time of each view on a 12-megapixel JPEG, and on which machine.

    nice -n 19 .venv/bin/python bench/bench_views.py [--megapixels 12] [--repeat 2] [--views all]
    QT_QPA_PLATFORM=offscreen nice -n 19 .venv/bin/python bench/bench_views.py --gui

A photo-like 4000 x 3000 image (smooth colour fields plus noise) with a copied block is saved
as a quality-90 JPEG with EXIF in a temporary folder; each view then runs ``--repeat`` times on
it (file read and decode counted once, apart) and the best time is reported. Prints a
Markdown table for docs/BENCHMARKS.md.

``--gui`` instead opens that file in the main window (isolated user folder, an untrained
ResNet-18 model unless one is registered) and asks for ELA with clone detection beside it, while
a 10 ms timer on the GUI thread records how late it fires (``bench_gui_responsiveness.py``'s
probe): the views run in a job, so the window must stay responsive (p99 under 50 ms).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_name


def _photo_jpeg(megapixels: float, seed: int = 0) -> bytes:
    import cv2
    from PIL import Image

    width = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 48, width // 48, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    side = width // 10
    image[height // 2 : height // 2 + side, width // 2 : width // 2 + side] = image[
        100 : 100 + side, 100 : 100 + side
    ]
    exif = Image.Exif()
    exif[0x0131] = "bench"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def gui(megapixels: float) -> None:
    """Event-loop lateness while ELA and clone detection run on a large JPEG."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gui_responsiveness import Probe, _isolate_user_dirs, _prepare, run_scenario

    root = Path(tempfile.mkdtemp(prefix="ncl-bench-views-"))
    _isolate_user_dirs(root)
    _prepare(root, 256, None)  # registers a model in the isolated registry
    path = root / "evidence" / "large.jpg"
    path.write_bytes(_photo_jpeg(megapixels))
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    view, probe = window.analysis, Probe()
    run_scenario(app, probe, "model", lambda: None, lambda: not window.models.loading, 120)
    run_scenario(
        app,
        probe,
        "open",
        lambda: view.open_image(path),
        lambda: view.analysis is not None and not view.is_busy(),
        600,
    )
    panel = view.forensic
    result = run_scenario(
        app,
        probe,
        "views",
        lambda: panel.select(shown="ela", beside="clone"),
        lambda: panel.result("clone") is not None and not panel.is_busy(),
        600,
    )
    print(
        f"\nGUI event loop while ELA + clone detection compute on a {megapixels:g} MP JPEG "
        f"({cpu_name()}, {os.cpu_count()} logical cores): {result['seconds']:.1f} s, "
        f"{result['ticks']} ticks, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"max {result['max']:.1f} ms late"
    )
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--views", default="all")
    parser.add_argument("--gui", action="store_true", help="GUI responsiveness while views run")
    args = parser.parse_args()
    if args.gui:
        gui(args.megapixels)
        return

    import cv2

    from ncl_core.views import Evidence, compute_view, parse_names

    data = _photo_jpeg(args.megapixels)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jpg"
        path.write_bytes(data)
        t0 = time.perf_counter()
        evidence = Evidence.from_path(path)
        read_s = time.perf_counter() - t0
        h, w = evidence.image.shape[:2]
        rows = []
        for name in parse_names(args.views):
            times = []
            for _ in range(max(1, args.repeat)):
                start = time.perf_counter()
                result = compute_view(name, evidence)
                times.append(time.perf_counter() - start)
            rows.append((name, min(times), result.summary))
    print(
        f"\nForensic views on a {w} x {h} px ({w * h / 1e6:.1f} MP) JPEG, best of {args.repeat}; "
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads)\n"
    )
    print(f"Reading and decoding the file once (shared by all views): {read_s:.2f} s\n")
    print("| view | time (s) | what it found |")
    print("|---|---:|---|")
    for name, seconds, summary in rows:
        short = summary if len(summary) <= 110 else summary[:107] + "..."
        print(f"| {name} | {seconds:.2f} | {short} |")


if __name__ == "__main__":
    main()
