"""The GUI under hostile inputs and overlapping work, with pytest-qt.

Runs offscreen (tests/conftest.py sets ``QT_QPA_PLATFORM=offscreen``).

Worker exceptions must reach the analyst as one message, never as a traceback or a dead
window; analysis, batch and training must be able to run at the same time, take drops while
busy, and a window closed in the middle of all of it must stop every worker and leave
resumable state. (tests/gui/ covers each view on its own, including closing mid-training.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import ModelRegistry
from reliability.hostile import BAD_CASES, GOOD_CASES, INPUT_CASES, write_inputs

from imaging import pattern, save, write_mask
from qt_helpers import configure_training, drop_paths

TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot, small_model_path: Path):
    """A main window whose default model is the small 64 px model; closed and checked after."""
    from app.main_window import MainWindow
    from app.settings import Settings

    registry = ModelRegistry()
    registry.set_default(registry.import_model(small_model_path).id)
    win = MainWindow(Settings())
    win.confirm = lambda text: True
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: not win.models.loading, timeout=TIMEOUT_MS)
    assert win.models.info is not None
    yield win
    win.close()
    assert win.jobs.running() == []


def _photos(folder: Path, n: int, shape: tuple[int, int] = (96, 128)) -> list[Path]:
    return [save(folder / f"photo{i:02d}.png", pattern(*shape, seed=i)) for i in range(n)]


def _error_shown(window, *parts: str) -> bool:
    text = window.message_bar.text()
    return window.message_bar.level == "error" and all(p in text for p in parts)


# --- worker exceptions become messages -----------------------------------------------------------


def test_bad_files_and_worker_bugs_become_one_message(
    qtbot, window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_inputs(tmp_path / "evidence")
    view = window.analysis
    for case in BAD_CASES:
        view.open_image(paths[case.id])
        qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT_MS)
        assert _error_shown(window, str(paths[case.id])), case.id
        assert "Traceback" not in window.message_bar.text()

    # A bug in the worker (not the user's doing) is one line too, and the view stays usable.
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug in the model")

    monkeypatch.setattr(Predictor, "analyze", broken)
    good = paths[GOOD_CASES[0].id]
    view.open_image(good)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT_MS)
    assert _error_shown(window, "Unexpected error in analysis", "simulated bug in the model")
    monkeypatch.undo()
    view.open_image(good)
    qtbot.waitUntil(lambda: view.analysis is not None and not view.is_busy(), timeout=TIMEOUT_MS)
    assert Path(view.analysis.source) == good


def test_batch_of_hostile_files_gives_error_rows_and_goes_on(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "evidence"
    write_inputs(folder)
    (folder / "nested").mkdir()
    os.symlink("..", folder / "nested" / "loop")  # nested/loop -> evidence: a cycle
    batch = window.batch
    drop_paths(window, [folder])
    qtbot.waitUntil(
        lambda: batch.table.rowCount() == len(INPUT_CASES) + 1 and not batch.is_busy(),
        timeout=TIMEOUT_MS,
    )
    rows = {name: (status, note) for name, status, note in batch.row_status()}
    assert rows["loop"][0] == "error" and "symbolic link loop" in rows["loop"][1]
    for case in INPUT_CASES:
        status, note = rows[case.name]
        if case.error is None:
            assert status == "ok", (case.id, note)
        else:
            assert status == "error" and str(folder / case.name) in note, case.id
    assert f"{len(GOOD_CASES)} ok · {len(BAD_CASES) + 1} error(s)" in batch.summary_label.text()


def test_a_failing_training_run_is_one_message(qtbot, window, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(4):
        save(data / "images" / f"img{i}.png", pattern(64, 64, seed=i))
        write_mask(data / "masks" / f"img{i}.png", np.ones((32, 32), bool))  # wrong size
    view = window.training
    configure_training(view, data, steps=2, workers=1)  # the error comes from a worker process
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=TIMEOUT_MS)
    assert view.start() is not None
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=TIMEOUT_MS)
    assert _error_shown(window, "mask is 32x32 px but its image")
    assert "Traceback" not in window.message_bar.text()
    assert "\n" not in window.message_bar.text()


def test_importing_a_hostile_model_is_one_message_and_runs_nothing(
    qtbot, window, hostile_models
) -> None:
    marker, files = hostile_models
    for path in files.values():
        job = window.models_view.import_model(path)
        qtbot.waitUntil(lambda job=job: not job.is_running(), timeout=TIMEOUT_MS)
        assert _error_shown(window, str(path)), path.name
        assert "\n" not in window.message_bar.text()
    assert not marker.exists()
    assert [info.name for info in ModelRegistry().list() if not info.bundled] == ["small"]


# --- overlapping work ----------------------------------------------------------------------------


def test_an_analysis_started_while_a_batch_runs(qtbot, window, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "queue", 40)
    single = save(tmp_path / "single" / "suspect.png", pattern(80, 100, seed=99))
    batch, view = window.batch, window.analysis
    batch.add_paths([tmp_path / "queue"])
    qtbot.waitUntil(lambda: "ok" in [s for _, s, _ in batch.row_status()], timeout=TIMEOUT_MS)
    assert batch.is_busy()
    window.open_paths([single])
    qtbot.waitUntil(
        lambda: view.analysis is not None and not view.is_busy() and not batch.is_busy(),
        timeout=TIMEOUT_MS,
    )
    assert Path(view.analysis.source) == single and view.analysis.probability.shape == (80, 100)
    assert [s for _, s, _ in batch.row_status()] == ["ok"] * len(photos)
    # After the batch, its images are compared with each other in a job of their own; then
    # nothing is left running.
    qtbot.waitUntil(lambda: not batch.shared.is_busy(), timeout=TIMEOUT_MS)
    assert window.jobs.running() == []


def test_drops_during_training_then_closing_during_training_and_batch(
    qtbot, window, tmp_path: Path, tiny_dataset: Path
) -> None:
    from app.main_window import TAB_ANALYSIS, TAB_BATCH, TAB_TRAINING

    training, batch, view = window.training, window.batch, window.analysis
    window.tabs.setCurrentIndex(TAB_TRAINING)
    configure_training(training, tiny_dataset, steps=500)
    qtbot.waitUntil(lambda: training.form.dataset_ok, timeout=TIMEOUT_MS)
    job = training.start()
    qtbot.waitUntil(
        lambda: training.monitor.point_counts().get("total", 0) >= 1, timeout=TIMEOUT_MS
    )

    # One file dropped mid-training opens in the Analysis view; training goes on.
    single = save(tmp_path / "drop" / "suspect.png", pattern(80, 100, seed=7))
    drop_paths(window, [single])
    assert window.tabs.currentIndex() == TAB_ANALYSIS
    qtbot.waitUntil(lambda: view.analysis is not None and not view.is_busy(), timeout=TIMEOUT_MS)
    assert Path(view.analysis.source) == single and training.is_busy()

    # A folder dropped mid-training goes to the batch, which starts at once.
    _photos(tmp_path / "folder", 40)
    drop_paths(window, [tmp_path / "folder"])
    assert window.tabs.currentIndex() == TAB_BATCH
    qtbot.waitUntil(lambda: "ok" in [s for _, s, _ in batch.row_status()], timeout=TIMEOUT_MS)
    assert batch.is_busy() and training.is_busy()

    # Closing now asks once, cancels both and waits for every worker thread.
    asked: list[str] = []
    window.confirm = lambda text: asked.append(text) or True
    assert window.close()
    assert len(asked) == 1 and "training" in asked[0] and "batch" in asked[0]
    assert window.jobs.running() == [] and job.wait(0)
    statuses = [s for _, s, _ in batch.row_status()]
    assert len(statuses) == 40 and set(statuses) <= {"ok", "cancelled"}
    checkpoint = torch.load(
        training.run_dir / "checkpoint.pt", map_location="cpu", weights_only=True
    )
    assert 1 <= checkpoint["step"] < 500  # resumable from where it stopped
