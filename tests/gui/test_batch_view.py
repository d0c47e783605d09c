"""Batch view: dropping a folder, error rows, cancel, opening a row, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
    from ncl_core.inference.predictor import Predictor

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


def _wait_idle(qtbot, batch, rows: int, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: batch.table.rowCount() == rows and not batch.is_busy(), timeout=timeout)


def test_exporting_reuses_the_rows_analyses_instead_of_running_the_model_again(
    qtbot, window, tmp_path, monkeypatch
):
    import json

    from ncl_core.inference.predictor import Predictor

    folder = _folder_with_one_corrupt_file(tmp_path)
    batch = window.batch
    batch.add_paths([folder])
    _wait_idle(qtbot, batch, 4)
    scores = {Path(p).name: a.score for p, a in batch.results.items()}
    assert sorted(scores) == ["a.png", "b.jpg", "c.png"]

    analyzed: list[str] = []  # every file the model is asked about from now on
    stream, analyze = Predictor.analyze_stream, Predictor.analyze

    def counted_stream(self, sources, *args, **kwargs):
        sources = list(sources)
        analyzed.extend(Path(getattr(s, "path", None) or s).name for s in sources)
        return stream(self, sources, *args, **kwargs)

    def counted(self, source, *args, **kwargs):
        analyzed.append(Path(getattr(source, "path", None) or source).name)
        return analyze(self, source, *args, **kwargs)

    monkeypatch.setattr(Predictor, "analyze_stream", counted_stream)
    monkeypatch.setattr(Predictor, "analyze", counted)
    window.analysis.set_threshold(0.3)  # another threshold needs no inference either
    out = tmp_path / "report"
    batch.export(out)
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    assert batch.progress.format() == "report: complete"
    assert analyzed == ["broken.png"]  # errors are not reused: tried again, still an error
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    rows = {r["name"]: r for r in rows if r["record"] == "row"}
    assert {n: r["status"] for n, r in rows.items()} == {
        "a.png": "ok",
        "b.jpg": "ok",
        "c.png": "ok",
        "broken.png": "error",
    }
    for name, score in scores.items():
        assert rows[name]["score"] == pytest.approx(score)
        assert rows[name]["threshold"] == 0.3


def test_samples_are_never_exported_with_casework(qtbot, window, tmp_path):
    import json

    from app.resources import sample_images

    batch = window.batch
    samples = sample_images()
    window.open_samples()  # asked for: the samples are in the queue
    _wait_idle(qtbot, batch, len(samples))
    assert all("bundled sample" in note for _, _, note in batch.row_status())

    # Samples alone are no report.
    assert batch.export(tmp_path / "samples-report") is None
    assert "only the bundled samples" in window.message_bar.text()
    assert not (tmp_path / "samples-report").exists()

    folder = _folder_with_one_corrupt_file(tmp_path)
    batch.add_paths([folder])
    _wait_idle(qtbot, batch, len(samples) + 4)
    out = tmp_path / "report"
    batch.export(out, analyst="A. Analyst", case_id="CASE-2")
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    header = json.loads((out / "report.json").read_text())
    assert header["inputs"] == [str(folder)]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    names = {r["name"] for r in rows if r["record"] == "row"}
    assert names == {"a.png", "b.jpg", "c.png", "broken.png"}
    assert not any(p.name in (out / "index.html").read_text() for p in samples)


def test_report_messages_are_never_stale(qtbot, window, tmp_path):
    folder = _folder_with_one_corrupt_file(tmp_path)
    batch = window.batch
    batch.add_paths([folder])
    _wait_idle(qtbot, batch, 4)

    # Refused (inside the evidence): says so, not "done".
    batch.export(folder / "report")
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=30_000)
    assert batch.progress.format() == "report: not written"
    assert batch.progress.value() == batch.progress.minimum()  # an empty bar, not a full one
    assert window.message_bar.level == "error"
    assert window.message_bar.text().startswith("Report not written")
    assert not (folder / "report").exists()

    # A later success replaces the banner.
    batch.export(tmp_path / "report")
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    assert batch.progress.format() == "report: complete"
    assert "Report not written" not in window.message_bar.text()
    assert window.message_bar.level != "error"


def test_an_empty_folder_says_so(qtbot, window, tmp_path):
    empty = tmp_path / "empty-case"
    empty.mkdir()
    window.batch.add_paths([empty])
    qtbot.waitUntil(lambda: window.message_bar.level == "warning", timeout=10_000)
    assert "empty-case" in window.message_bar.text() and "no files" in window.message_bar.text()


def test_files_that_are_not_images_are_skipped_apart_from_errors(qtbot, window, tmp_path):
    import json

    folder = _folder_with_one_corrupt_file(tmp_path)
    (folder / "README.md").write_text("# case notes\n")
    (folder / "sub" / "statement.docx").write_bytes(b"PK\x03\x04 not an image")
    batch = window.batch
    batch.add_paths([folder])
    _wait_idle(qtbot, batch, 6)
    rows = {name: (status, note) for name, status, note in batch.row_status()}
    assert rows["README.md"] == ("skipped", "skipped: not an image")
    assert rows["statement.docx"] == ("skipped", "skipped: not an image")
    assert rows["broken.png"][0] == "error"  # named like an image, cannot be decoded
    assert "3 ok · 1 error(s) · 2 skipped (not images)" in batch.summary_label.text()

    out = tmp_path / "report"
    batch.export(out)
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    header = json.loads((out / "report.json").read_text())
    assert (header["n_ok"], header["n_errors"], header["n_skipped"]) == (3, 1, 2)
    assert "3 ok, 1 errors, 2 skipped" in window.statusBar().currentMessage()


def test_add_folder_shows_the_batch_and_rows_sort_by_score_with_their_model(
    qtbot, window, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from app.batch.table import COL_MODEL, COL_SCORE

    folder = _folder_with_one_corrupt_file(tmp_path)
    window.tabs.setCurrentIndex(TAB_ANALYSIS)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    add = next(a for a in window.findChildren(type(window.save_actions[0])) if "folder" in a.text())
    add.trigger()
    assert window.tabs.currentIndex() == TAB_BATCH
    batch = window.batch
    _wait_idle(qtbot, batch, 4)

    batch.sort_by(COL_SCORE)  # a header click: highest score first, errors last
    scores = [batch.table.item(r, COL_SCORE).text() for r in range(4)]
    numbers = [float(s) for s in scores if s]
    assert len(numbers) == 3 and numbers == sorted(numbers, reverse=True)
    assert scores[-1] == ""
    batch.sort_by(COL_SCORE)  # again: lowest first
    assert batch.table.item(0, COL_SCORE).text() == ""
    numbers = [float(batch.table.item(r, COL_SCORE).text()) for r in range(1, 4)]
    assert numbers == sorted(numbers)
    model = window.models.info.name
    assert {batch.table.item(r, COL_MODEL).text() for r in range(4)} == {model, ""}
    # Rows still update and open correctly after sorting.
    statuses = {name: status for name, status, _ in batch.row_status()}
    assert statuses["broken.png"] == "error" and statuses["c.png"] == "ok"


def test_failed_rows_can_be_retried(qtbot, make_window, gui_model_path, tmp_path):
    from ncl_core.models.modelfile import ModelRegistry

    window = make_window()  # no model: every row fails
    batch = window.batch
    folder = _folder_with_one_corrupt_file(tmp_path)
    batch.add_paths([folder])
    _wait_idle(qtbot, batch, 4)
    assert [s for _, s, _ in batch.row_status()] == ["error"] * 4
    assert batch.retry_button.isEnabled()

    window.models.set_model(ModelRegistry().import_model(gui_model_path))
    batch.retry_button.click()
    qtbot.waitUntil(
        lambda: not batch.is_busy() and "queued" not in str(batch.row_status()), timeout=60_000
    )
    rows = {name: status for name, status, _ in batch.row_status()}
    assert rows == {"a.png": "ok", "b.jpg": "ok", "c.png": "ok", "broken.png": "error"}
    assert batch.table.rowCount() == 4


def test_the_export_dialog_remembers_the_analyst_and_shows_mode_and_threshold(
    qtbot, window, tmp_path, monkeypatch
):
    import json

    from PySide6.QtWidgets import QDialog

    from app.batch.report import ReportDialog

    batch = window.batch
    batch.add_paths([_folder_with_one_corrupt_file(tmp_path)])
    _wait_idle(qtbot, batch, 4)
    window.analysis.set_threshold(0.42)
    dialog = batch.make_report_dialog()
    assert "tiled" in dialog.settings_label.text() and "0.42" in dialog.settings_label.text()
    assert dialog.analyst.text() == "" and dialog.case_id.text() == ""

    out = tmp_path / "report"

    def fill(self):
        self.analyst.setText("A. Analyst")
        self.case_id.setText("CASE-9")
        self.folder.set_text(str(out))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ReportDialog, "exec", fill)
    batch.export_dialog()
    qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
    header = json.loads((out / "report.json").read_text())
    assert (header["mode"], header["threshold"]) == ("tiled", 0.42)
    assert (header["analyst"], header["case_id"]) == ("A. Analyst", "CASE-9")
    again = batch.make_report_dialog()
    assert (again.analyst.text(), again.case_id.text()) == ("A. Analyst", "CASE-9")


def test_the_export_dialog_puts_the_combined_evidence_on_each_page_unless_unticked(
    qtbot, window, tmp_path, monkeypatch
):
    import json

    from PySide6.QtWidgets import QDialog

    from app.batch.report import ReportDialog

    batch = window.batch
    batch.add_paths([_folder_with_one_corrupt_file(tmp_path)])
    _wait_idle(qtbot, batch, 4)
    assert batch.make_report_dialog().combined_check.isChecked()  # by default
    ticks = iter([True, False])

    def fill(self):
        tick = next(ticks)
        self.combined_check.setChecked(tick)
        self.folder.set_text(str(tmp_path / f"report-{tick}"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ReportDialog, "exec", fill)
    for tick in (True, False):
        batch.export_dialog()
        qtbot.waitUntil(lambda: not batch.is_busy(), timeout=60_000)
        lines = (tmp_path / f"report-{tick}" / "results.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in lines if json.loads(x).get("record") == "row"]
        done = [r for r in rows if r["status"] == "ok"]
        assert len(done) == 3
        if tick:
            for row in done:
                summary = row["views"]["combined"]["summary"]
                assert summary.startswith(("manipulation indicated", "none indicated"))
            assert "Combined evidence" in (tmp_path / "report-True" / "index.html").read_text()
        else:
            assert all(not r.get("views") for r in done)
    assert not batch.make_report_dialog().combined_check.isChecked()  # remembered


def test_each_row_shows_the_combined_evidence_unless_unticked(qtbot, window, tmp_path):
    from app.batch.table import COL_COMBINED, COL_NAME, COL_SCORE

    batch = window.batch
    assert batch.combined_check.isChecked()  # by default
    batch.add_paths([_folder_with_one_corrupt_file(tmp_path)])
    _wait_idle(qtbot, batch, 4)
    cells = {
        batch.table.item(r, COL_NAME).text(): batch.table.item(r, COL_COMBINED) for r in range(4)
    }
    assert cells["broken.png"].text() == ""
    for name in ("a.png", "b.jpg", "c.png"):
        said, score = cells[name].text().split()
        assert said in ("indicated", "none") and 0.0 <= float(score) <= 1.0
        assert (
            cells[name]
            .toolTip()
            .startswith(
                "Combined evidence: "
                + {"indicated": "manipulation indicated", "none": "none indicated"}[said]
            )
        )
    batch.sort_by(COL_COMBINED)  # a header click: the highest combined score first
    column = [batch.table.item(r, COL_COMBINED).text() for r in range(4)]
    numbers = [float(text.split()[1]) for text in column if text]
    assert numbers == sorted(numbers, reverse=True) and column[-1] == ""
    batch.sort_by(COL_SCORE)

    batch.combined_check.setChecked(False)  # remembered, and files added from now on
    assert not window.batch.settings.get("batch/combined")
    more = tmp_path / "more"
    more.mkdir()
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(more / "d.png")
    batch.add_paths([more])
    _wait_idle(qtbot, batch, 5)
    row = batch.table.row_of(more / "d.png")
    assert batch.table.status(row) == "ok" and batch.table.item(row, COL_COMBINED).text() == ""
