"""One predictor for the whole window: the Analysis and Batch views share the weights that
``ModelState`` loaded, and jobs use it one analysis at a time."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
from PIL import Image

from gui_helpers import wait_analysis


def _count_predictors(monkeypatch) -> tuple[list[str], weakref.WeakSet]:
    """Every ``Predictor.load`` call (its model file) and every Predictor still alive."""
    from ncl_core.inference.predictor import Predictor

    loads: list[str] = []
    alive: weakref.WeakSet = weakref.WeakSet()
    load = Predictor.load.__func__

    def counted(cls, model_path=None, device=None):
        loads.append(str(model_path))
        predictor = load(cls, model_path, device)
        alive.add(predictor)
        return predictor

    monkeypatch.setattr(Predictor, "load", classmethod(counted))
    return loads, alive


def _folder(root, name: str, n: int = 2):
    folder = root / name
    folder.mkdir()
    rng = np.random.default_rng(len(name))
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _analyze_in_both_views(qtbot, window, image_file, folder) -> list:
    """Open ``image_file`` in the Analysis view and queue ``folder`` in the Batch view; the
    analyses made."""
    view, batch = window.analysis, window.batch
    files = [str(p) for p in sorted(folder.iterdir())]
    view.open_image(image_file)
    batch.add_paths([folder])
    wait_analysis(qtbot, view)
    qtbot.waitUntil(
        lambda: not batch.is_busy() and all(f in batch.results for f in files), timeout=30_000
    )
    return [view.analysis, *[batch.results[f] for f in files]]


def test_both_views_use_the_one_predictor_and_a_new_active_model_replaces_it(
    qtbot, make_window, registered_model, tiny_model_path, image_file, tmp_path, monkeypatch
):
    loads, alive = _count_predictors(monkeypatch)
    window = make_window()
    first = _analyze_in_both_views(qtbot, window, image_file, _folder(tmp_path, "one"))
    assert len(loads) == 1
    assert {a.model_sha256 for a in first} == {registered_model.sha256}
    shared = window.models.predictors.current
    assert shared is not None and shared.model_sha256 == registered_model.sha256

    window.models_view.import_model(tiny_model_path)
    qtbot.waitUntil(lambda: len(window.models.models) == 2, timeout=10_000)
    tiny = next(m for m in window.models.models if m.sha256 != registered_model.sha256)
    window.models_view.activate(tiny)
    qtbot.waitUntil(lambda: window.models.info.sha256 == tiny.sha256, timeout=10_000)
    assert window.models.predictors.current is None  # the old weights are let go at once

    other = image_file.with_name("other.png")
    other.write_bytes(image_file.read_bytes())
    second = _analyze_in_both_views(qtbot, window, other, _folder(tmp_path, "two"))
    assert len(loads) == 2
    assert {a.model_sha256 for a in second} == {tiny.sha256}
    assert window.models.predictors.current.model_sha256 == tiny.sha256
    del shared, first, second
    gc.collect()
    assert len(alive) == 1


class _Recorder:
    """Stands in for a Predictor: records how many analyses run at once."""

    device = "cpu"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def analyze(self, source, settings=None, **kwargs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return source

    def analyze_stream(self, sources, settings=None, **kwargs):
        for source in sources:
            yield None, self.analyze(source)


def test_the_shared_predictor_runs_one_analysis_at_a_time():
    from app.model_state import SharedPredictor

    real = _Recorder()
    shared = SharedPredictor(real)
    results: list = []

    def single(i: int) -> None:
        results.append(shared.analyze(i))

    def stream() -> None:
        results.extend(r for _, r in shared.analyze_stream(range(100, 105)))

    threads = [threading.Thread(target=single, args=(i,)) for i in range(5)]
    threads.append(threading.Thread(target=stream))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert real.most == 1
    assert sorted(results) == [*range(5), *range(100, 105)]
    assert shared.device == "cpu"  # the predictor's own attributes


def test_a_job_waiting_for_its_turn_stops_when_cancelled():
    import pytest

    from app.model_state import SharedPredictor
    from ncl_core.errors import Cancelled

    shared = SharedPredictor(_Recorder())
    assert shared._turns.acquire()  # another job is analyzing
    cancelled = threading.Event()
    threading.Timer(0.1, cancelled.set).start()
    with pytest.raises(Cancelled):
        shared.analyze(1, cancel=cancelled.is_set)
    assert list(shared.analyze_stream([1, 2], cancel=lambda: True)) == []
    shared._turns.release()
    assert shared.analyze(3) == 3
