"""Batch view: dropping a folder, error rows, cancel, opening a row, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.main_window import TAB_ANALYSIS, TAB_BATCH

from qt_helpers import drop_paths


def _folder_with_one_corrupt_file(root: Path) -> Path:
    folder = root / "case"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg", "sub/c.png"):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(folder / name)
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not an image")
    return folder


def test_dropping_a_folder_with_a_corrupt_file_gives_one_error_row(qtbot, window, tmp_path):
    folder = _folder_with_one_corrupt_file(tmp_path)
    drop_paths(window, [folder])
    assert window.tabs.currentIndex() == TAB_BATCH
    batch = window.batch
    qtbot.waitUntil(lambda: batch.table.rowCount() == 4 and not batch.is_busy(), timeout=30_000)
    rows = {name: (status, note) for name, status, note in batch.row_status()}
    assert {n: s for n, (s, _) in rows.items()} == {
        "a.png": "ok",
        "b.jpg": "ok",
        "c.png": "ok",
        "broken.png": "error",
    }
    assert "broken.png" in rows["broken.png"][1]
    assert "4 in the queue" in batch.summary_label.text()
    assert batch.progress.value() == batch.progress.maximum() == 4
    assert batch.export_button.isEnabled()
    # Every ok row has a thumbnail and a score.
    for row in range(4):
        if batch.table.item(row, 2).text() == "ok":
            assert not batch.table.item(row, 0).icon().isNull()
            assert float(batch.table.item(row, 3).text()) >= 0


def test_clicking_a_row_opens_it_in_the_analysis_view_without_new_inference(
    qtbot, window, tmp_path, monkeypatch
):
    from ncl_core.infer import Predictor

    folder = _folder_with_one_corrupt_file(tmp_path)
    window.batch.add_paths([folder])
    qtbot.waitUntil(
        lambda: not window.batch.is_busy() and window.batch.table.rowCount() == 4, timeout=30_000
    )
    monkeypatch.setattr(Predictor, "analyze", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    row = next(r for r in range(4) if window.batch.table.item(r, 1).text() == "c.png")
    window.batch.table.cellClicked.emit(row, 1)
    view = window.analysis
    assert window.tabs.currentIndex() == TAB_ANALYSIS
    qtbot.waitUntil(lambda: view.analysis is not None and not view.is_busy(), timeout=10_000)
    assert Path(view.analysis.source).name == "c.png"


def test_cancel_keeps_the_finished_rows(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{i:02}.png"
        )
    batch = window.batch
    batch.add_paths([folder])
    qtbot.waitUntil(lambda: "ok" in [s for _, s, _ in batch.row_status()], timeout=30_000)
    batch.cancel()
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=30_000)
    statuses = [s for _, s, _ in batch.row_status()]
    assert len(statuses) == 12
    assert statuses.count("ok") >= 1
    assert set(statuses) <= {"ok", "cancelled"}
    assert "cancelled" in window.statusBar().currentMessage().lower()


def test_export_report_writes_the_report_folder(qtbot, window, tmp_path):
    folder = _folder_with_one_corrupt_file(tmp_path)
    batch = window.batch
    batch.add_paths([folder])
    qtbot.waitUntil(lambda: not batch.is_busy() and batch.table.rowCount() == 4, timeout=30_000)
    out = tmp_path / "report"
    batch.export(out, analyst="A. Analyst", case_id="CASE-1")
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    assert (out / "index.html").is_file()
    assert (out / "results.jsonl").is_file()
    assert batch.open_report_button.isEnabled()
    assert (
        "4 ok" not in window.statusBar().currentMessage()
    )  # the corrupt file is an error in it too
    assert "3 ok, 1 errors" in window.statusBar().currentMessage()
