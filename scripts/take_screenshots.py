"""Take the README screenshots: the first run (welcome) and the four views.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python scripts/take_screenshots.py \
        [--model FILE] [--out docs/screenshots] [--train-steps 60]

Runs the real main window in a temporary user folder on the bundled samples. With a DISPLAY
the whole screen is grabbed with ImageMagick's ``import`` (what a user sees); without one the
window is rendered offscreen. Look at every picture before committing it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file to make active (default: the bundled one)")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument(
        "--views",
        nargs="*",
        default=["welcome", "analysis", "forensic", "batch", "training", "models"],
    )
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix="ncl-shots-"))
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):  # fmt: skip
        os.environ[var] = str(tmp / sub)
    os.environ.setdefault("QT_API", "pyside6")
    sys.path.insert(0, str(REPO))

    from PySide6.QtWidgets import QApplication

    from app.gui import apply_style
    from app.main_window import MainWindow
    from app.resources import resource_path, sample_images
    from ncl_core.data.synth import SynthConfig, generate_dataset
    from ncl_core.models.modelfile import ModelRegistry

    if args.model:
        registry = ModelRegistry()
        registry.set_default(registry.import_model(args.model).id)
    # The batch: the samples plus one damaged file, to show an error row.
    case = tmp / "case"
    case.mkdir()
    for path in sample_images():
        shutil.copy(path, case / path.name)
    (case / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    photos = tmp / "photos"
    photos.mkdir()
    for path in sample_images():
        shutil.copy(path, photos / path.name)
    dataset = tmp / "dataset"
    generate_dataset(photos, dataset, 40, SynthConfig(size=128, seed=0, authentic_fraction=0.2))

    app = QApplication.instance() or QApplication([])
    app.setApplicationName("ncl-forensics")
    apply_style(app)
    window = MainWindow()
    window.move(0, 0)
    window.resize(1400, 900)
    window.show()

    def wait(done: Callable[[], bool], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds: float = 0.8) -> None:
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end)

    def shot(name: str) -> None:
        settle()
        target = out / name
        if os.environ.get("DISPLAY") and shutil.which("import"):
            grab = subprocess.Popen(["import", "-window", "root", str(target)])
            wait(lambda: grab.poll() is not None)
        else:
            window.grab().save(str(target))
        print(f"wrote {target}")

    wait(lambda: not window.models.loading)
    view = window.analysis
    if "welcome" in args.views:
        window.open_startup([])  # no settings yet: the first run opens the samples
        wait(lambda: view.analysis is not None and not view.is_busy())
        wait(lambda: not window.batch.is_busy())
        shot("welcome.png")
        window.batch.clear()
    window.welcome.hide()  # the views as a returning user sees them
    if "analysis" in args.views:
        first = next(p for p in sample_images() if p.parent.name == "tampered")
        view.open_image(first, ground_truth=resource_path("samples", "masks", first.stem + ".png"))
        wait(lambda: view.analysis is not None and not view.is_busy())
        view.set_overlay_mode("mask")
        view.set_opacity(0.45)
        view.set_show_patches(True)
        shot("analysis.png")
    if "forensic" in args.views:
        # The copy-move sample: the model's map (left) beside the combined map (right), whose
        # cues include clone detection.
        sample = resource_path("samples", "tampered", "rocket_copy_move.jpg")
        view.set_show_patches(False)
        view.open_image(sample)
        wait(lambda: view.analysis is not None and not view.is_busy())
        view.set_overlay_mode("heatmap")
        view.set_opacity(0.55)
        view.forensic.select(shown="ncl", beside="combined")
        wait(lambda: view.forensic.result("combined") is not None and not view.forensic.is_busy())
        shot("forensic-views.png")
        view.forensic.select(shown="ncl", beside="")
        view.set_side_by_side(False)
    if "batch" in args.views:
        window.open_paths([case])
        wait(lambda: window.batch.table.rowCount() > 0 and not window.batch.is_busy())
        shot("batch.png")
    if "training" in args.views:
        window.tabs.setCurrentIndex(2)
        training = window.training
        form = training.form
        form.data_field.set_text(str(dataset))
        wait(lambda: form.dataset_ok, 60)
        form.base_combo.setCurrentIndex(form.base_combo.findData("preset:resnet18"))
        form.steps_spin.setValue(args.train_steps)
        form.epochs_spin.setValue(10)
        form.batch_spin.setValue(4)
        form.size_spin.setValue(128)
        form.workers_spin.setValue(0)
        training.start()
        wait(lambda: not training.is_busy(), 1800)
        shot("training.png")
    if "models" in args.views:
        window.tabs.setCurrentIndex(3)
        job = window.models_view.refresh()
        wait(lambda: not job.is_running())
        infos = window.models_view.infos
        newest = max(range(len(infos)), key=lambda row: infos[row].created)
        window.models_view.table.selectRow(newest)  # the one just trained: full provenance
        shot("models.png")
    window.confirm = lambda text: True
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
