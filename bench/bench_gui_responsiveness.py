"""GUI responsiveness while work runs: how late does a 10 ms QTimer fire on the GUI thread?

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui_responsiveness.py \
        [--model FILE] [--image-side 2048] [--train-steps 20] [--scenarios drag ...]

The main window runs in an isolated temporary user folder. For each scenario (idle, analysis
in resize and tiled mode, dragging the threshold over a large result, a batch, a training
run) a 10 ms timer records how late each tick arrives; a late tick is time the event loop was
blocked (a frozen window). Prints a Markdown table for docs/BENCHMARKS.md. Target: p99 under
50 ms (16 ms, one frame at 60 Hz, for the threshold drag). Without ``--model`` the registry's
default is used, else an untrained ResNet-18 model. ``--scenarios`` runs some of them only
(the drag then analyzes the image in resize mode first, unmeasured, when no scenario did).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TICK_MS = 10
TARGET_P99_MS = 50.0
SCENARIOS = ("idle", "resize", "tiled", "drag", "batch", "training")


def _isolate_user_dirs(root: Path) -> None:
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        os.environ[var] = str(root / sub)


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured RGB image with a pasted block (so a model has something to look at)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    import cv2

    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    img += rng.normal(0, 8, img.shape)
    y, x = height // 3, width // 3
    img[y : y + height // 4, x : x + width // 4] = img[: height // 4, : width // 4]
    return np.clip(img, 0, 255).astype(np.uint8)


def _prepare(root: Path, side: int, model: str | None) -> dict[str, Path]:
    from PIL import Image

    from ncl_core.data.synth import SynthConfig, generate_dataset
    from ncl_core.models.modelfile import ModelFileError, ModelRegistry, save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    paths: dict[str, Path] = {}
    big = root / "evidence" / "large.png"
    big.parent.mkdir(parents=True)
    Image.fromarray(_photo(side * 3 // 4, side, 0)).save(big)
    paths["image"] = big
    batch = root / "evidence" / "batch"
    batch.mkdir()
    for i in range(6):
        Image.fromarray(_photo(768, 1024, i + 1)).save(batch / f"img{i}.jpg", quality=90)
    paths["batch"] = batch
    photos = root / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(_photo(192, 192, 10 + i)).save(photos / f"p{i}.png")
    paths["dataset"] = root / "dataset"
    generate_dataset(photos, paths["dataset"], 16, SynthConfig(size=128, seed=0))

    registry = ModelRegistry()
    if model:
        registry.set_default(registry.import_model(model).id)
    else:
        try:
            registry.default()
        except ModelFileError:
            path = root / "bench-resnet18.safetensors"
            save_model(path, NCLNet(ModelConfig(backbone="resnet18")), name="bench-resnet18")
            registry.set_default(registry.import_model(path).id)
    return paths


class Probe:
    """A 10 ms timer on the GUI thread that records how late each tick is."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.late: list[float] = []
        self._last = 0
        self.on_tick: Callable[[], None] | None = None

    def start(self) -> None:
        self.late.clear()
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.late.append(max(0.0, (now - self._last) / 1e6 - TICK_MS))
        self._last = now
        if self.on_tick is not None:
            self.on_tick()


def run_scenario(
    app,
    probe: Probe,
    name: str,
    start: Callable[[], None],
    done: Callable[[], bool],
    timeout_s: float,
    on_tick: Callable[[], None] | None = None,
) -> dict[str, object]:
    """Start the work, run the event loop until ``done()``, and summarise the lateness.

    ``on_tick`` runs on every probe tick (to play a user's input).
    """
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if on_tick is not None:
            on_tick()
        if done() or time.monotonic() > deadline:
            loop.quit()

    probe.on_tick = check
    probe.start()
    t0 = time.perf_counter()
    start()
    loop.exec()
    probe.stop()
    elapsed = time.perf_counter() - t0
    late = np.asarray(probe.late or [0.0])
    return {
        "scenario": name,
        "seconds": elapsed,
        "ticks": len(probe.late),
        "p50": float(np.percentile(late, 50)),
        "p99": float(np.percentile(late, 99)),
        "max": float(late.max()),
        "timed_out": time.monotonic() > deadline,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the registry's default)")
    parser.add_argument("--image-side", type=int, default=2048, help="width of the large image")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="NAME"
    )
    parser.add_argument(
        "--repeat-drag", type=int, default=1, help="drag the threshold this many times over"
    )
    args = parser.parse_args()
    chosen = set(args.scenarios)

    tmp = tempfile.TemporaryDirectory(prefix="ncl-bench-gui-")
    root = Path(tmp.name)
    model = os.path.abspath(args.model) if args.model else None
    _isolate_user_dirs(root / "home")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_API", "pyside6")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    paths = _prepare(root, args.image_side, model)

    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.settings import Settings

    app = QApplication.instance() or QApplication([])
    settings = Settings()
    settings.set("device", args.device)
    window = MainWindow(settings)
    window.confirm = lambda text: True
    window.resize(1400, 900)
    window.show()
    probe = Probe()
    results = []
    view = window.analysis
    if "idle" in chosen:
        results.append(run_scenario(app, probe, "idle (2 s)", lambda: None, lambda: False, 2.0))
        results[-1]["timed_out"] = False
    run_scenario(app, probe, "model lookup", lambda: None, lambda: not window.models.loading, 60)

    def analyzed() -> bool:
        return view.analysis is not None and not view.is_busy()

    for mode in ("resize", "tiled"):
        if mode not in chosen and (mode != "resize" or "drag" not in chosen or analyzed()):
            continue

        def open_image(mode: str = mode) -> None:
            view.set_analysis_mode(mode)
            view.state.analysis = None  # done when the new result is in
            view.open_image(paths["image"])

        result = run_scenario(
            app, probe, f"analysis, {mode} ({args.image_side} px image)", open_image, analyzed, 600
        )
        if mode in chosen:
            results.append(result)

    if "drag" in chosen:
        results.append(drag_threshold(app, probe, view, args.repeat_drag))

    if "batch" in chosen:
        results.append(
            run_scenario(
                app,
                probe,
                "batch, 6 images 1024 px",
                lambda: window.batch.add_paths([paths["batch"]]),
                lambda: window.batch.table.rowCount() == 6 and not window.batch.is_busy(),
                600,
            )
        )

    if "training" in chosen:
        results.append(train(app, probe, window, paths, args))
    window.close()
    print_table(window, args, results)
    tmp.cleanup()
    return 0


def drag_threshold(app, probe: Probe, view, repeat: int = 1) -> dict[str, object]:
    """A user dragging the threshold slider over the large result: a new value every 30 ms,
    with the binary mask, its outline and the contour-patch grid re-drawn each time."""
    view.set_overlay_mode("mask")
    view.set_show_patches(True)
    values = [*range(10, 91, 2), *range(90, 9, -2)] * repeat
    state = {"i": 0, "last": 0.0}

    def drag() -> None:
        now = time.monotonic()
        if now - state["last"] >= 0.03 and state["i"] < len(values):
            view.panel.threshold_slider.setValue(values[state["i"]])
            state["i"] += 1
            state["last"] = now

    renders = view.mask_renders
    result = run_scenario(
        app,
        probe,
        "threshold drag",
        lambda: None,
        lambda: state["i"] >= len(values),
        120 * repeat,
        on_tick=drag,
    )
    result["scenario"] = f"threshold drag, mask + patches ({view.mask_renders - renders} re-draws)"
    return result


def train(app, probe: Probe, window, paths: dict[str, Path], args) -> dict[str, object]:
    training = window.training

    def start_training() -> None:
        training.data_field.set_text(str(paths["dataset"]))
        training.base_combo.setCurrentIndex(training.base_combo.findData("preset:resnet18"))
        training.steps_spin.setValue(args.train_steps)
        training.batch_spin.setValue(2)
        training.size_spin.setValue(128)
        training.workers_spin.setValue(0)
        training.device_combo.setCurrentText(args.device)
        training.dataset_ok = True  # checked in a job; the trainer validates it again
        training.start()

    return run_scenario(
        app,
        probe,
        f"training, {args.train_steps} steps resnet18 128 px",
        start_training,
        lambda: not training.is_busy() and training.monitor.point_counts().get("total", 0) > 0,
        900,
    )


def print_table(window, args, results: list[dict[str, object]]) -> None:
    import torch

    from machine import cpu_name  # bench/machine.py, beside this script

    print(
        f"\nGUI event-loop lateness (10 ms QTimer), {cpu_name()}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"model {window.models.info.name if window.models.info else '?'} on "
        f"{window.models.loaded_device or args.device}, Qt platform "
        f"{os.environ.get('QT_QPA_PLATFORM', 'default')}\n"
    )
    print("| scenario | s | ticks | p50 ms | p99 ms | max ms | p99 < 50 ms |")
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        ok = "yes" if r["p99"] < TARGET_P99_MS else "**no**"
        flag = " (timed out)" if r["timed_out"] else ""
        print(
            f"| {r['scenario']}{flag} | {r['seconds']:.1f} | {r['ticks']} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {r['max']:.1f} | {ok} |"
        )


if __name__ == "__main__":
    sys.exit(main())
