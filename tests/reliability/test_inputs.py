"""Hostile inputs through the library, the CLI and the batch report (inputs).

Library-level reading of most cases is proven in tests/test_data_io.py and folder walking in
tests/test_scan.py; here every case goes through the layers an analyst uses, and the cases
those files do not hold are added. docs/RELIABILITY.md maps each case to its test.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from ncl_core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ncl_core.data.io import ImageReadError, read_image, read_mask
from ncl_core.evidence import scan as scan_module
from ncl_core.inference.predictor import InferenceSettings
from ncl_core.report import INDEX_HTML, RESULTS_JSONL
from reliability.hostile import (
    BAD_CASES,
    CASES_BY_ID,
    GOOD_CASES,
    HTML_NAME,
    INPUT_CASES,
    LONG_NAME,
    assert_clean_console,
    check_warnings,
    read_jsonl,
    write_inputs,
)

from imaging import deny_folder, pattern, save, write_mask


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input case in one folder, plus a symlink loop and a sub-folder to lock."""
    folder = tmp_path_factory.mktemp("hostile") / "evidence"
    write_inputs(folder)
    (folder / "nested").mkdir()
    os.symlink("..", folder / "nested" / "loop")  # nested/loop -> evidence: a cycle
    save(folder / "locked" / "hidden-from-us.png", pattern(8, 8))
    return folder


@pytest.fixture
def locked_subfolder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the sub-folder ``locked`` unreadable. Simulated: root ignores ``chmod 000``."""
    deny_folder(monkeypatch, scan_module)


# --- library -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda c: c.id)
def test_every_case_reads_or_fails_with_one_named_error(tmp_path: Path, case) -> None:
    path = write_inputs(tmp_path, (case,))[case.id]
    if case.error is not None:
        with pytest.raises(ImageReadError) as caught:
            read_image(path)
        message = str(caught.value)
        assert message.startswith(str(path)) and "\n" not in message
        assert re.search(case.error, message)
        return
    image, warnings = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (*case.shape, 3)
    check_warnings(case, warnings)


def test_extreme_shapes_analyze_in_both_modes(
    tiny_predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_inputs(tmp_path, (CASES_BY_ID["one_pixel"], CASES_BY_ID["strip_20000_x_3"]))
    for case_id, path in paths.items():
        result = tiny_predictor.analyze(path, settings=InferenceSettings())
        assert result.probability.shape == CASES_BY_ID[case_id].shape
        assert np.isfinite(result.probability).all() and 0.0 <= result.score <= 1.0
    # Tiled mode: hundreds of 3 x 64 tiles along the strip. The network on such thin tiles is
    # tests/test_infer.py's job; a constant stand-in makes any gap or double count visible.
    monkeypatch.setattr(
        tiny_predictor,
        "_predict",
        lambda b, *precision: np.full((len(b), *b.shape[2:]), 0.25, np.float32),
    )
    tiled = InferenceSettings(mode="tiled", tile=64, overlap=16)
    for case_id, path in paths.items():
        result = tiny_predictor.analyze(path, settings=tiled)
        assert result.probability.shape == CASES_BY_ID[case_id].shape
        np.testing.assert_allclose(result.probability, 0.25, rtol=1e-5)


def test_analyze_many_gives_one_result_per_file_in_order(tiny_predictor, hostile_dir) -> None:
    paths = [hostile_dir / case.name for case in INPUT_CASES]
    settings = InferenceSettings()
    results = list(tiny_predictor.analyze_many(paths, settings=settings))
    assert [r.source for r in results] == [str(p) for p in paths]
    for case, result in zip(INPUT_CASES, results):
        if case.error is None:
            assert result.ok and result.probability.shape == case.shape, case.id
            check_warnings(case, result.warnings)
        else:
            assert not result.ok and result.message.startswith(str(hostile_dir / case.name))
            assert re.search(case.error, result.message), case.id


# --- masks ---------------------------------------------------------------------------------------


def _mask_dataset(root: Path, mask_hw: tuple[int, int], white: bool) -> Path:
    for i in range(4):
        save(root / "images" / f"img{i}.png", pattern(64, 64, seed=i))
        write_mask(root / "masks" / f"img{i}.png", np.full(mask_hw, white, bool))
    return root


TRAIN_FAST = ["--size", "64", "--patch-cells", "2", "--batch-size", "2", "--steps", "1"]


def test_wrong_size_mask_is_one_line_naming_both_files(
    tmp_path: Path, small_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _mask_dataset(tmp_path / "data", (32, 32), white=True)
    # A DataLoader worker process (the default --workers 2) re-raises the dataset's error with
    # the worker's traceback in its message; the user must still see one line.
    args = ["train", "--data", str(data), *TRAIN_FAST, "--workers", "1"]
    code = main([*args, "--out", str(tmp_path / "m.safetensors"), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    (line,) = [
        x
        for x in assert_clean_console(err, ("error: ", "dataset ", "training on "))
        if x.startswith("error: ")
    ]
    assert re.search(r"masks/img\d\.png: mask is 32x32 px but its image .*images/img\d\.png", line)
    failed = [json.loads(x) for x in (tmp_path / "r" / "events.jsonl").open()][-1]
    assert failed["type"] == "failed" and "\n" not in failed["message"]

    # eval measures what it can read: each bad pair is one line, and the run exits 1.
    code = main(["eval", "--data", str(data), "--model", str(small_model_path)])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    lines = assert_clean_console(err, ("error: ", "model ", "4 of 4 image(s) could not be read"))
    errors = [x for x in lines if x.startswith("error")]
    assert len(errors) == 4
    for line in errors:
        assert re.search(
            r"masks/img\d\.png: mask is 32x32 px but its image .*images/img\d\.png", line
        )


def test_all_white_mask_trains_and_evaluates(
    tmp_path: Path, small_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _mask_dataset(tmp_path / "data", (64, 64), white=True)
    mask, warnings = read_mask(data / "masks" / "img0.png", (64, 64))
    assert mask.all() and warnings == []
    run = tmp_path / "run"
    args = ["train", "--data", str(data), *TRAIN_FAST, "--workers", "0", "--run-dir", str(run)]
    assert main([*args, "--out", str(tmp_path / "m.safetensors")]) == EXIT_OK
    events = [json.loads(x) for x in (run / "events.jsonl").open()]
    step = next(e for e in events if e["type"] == "step")
    assert all(np.isfinite(v) for v in step["losses"].values())
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--model",
                str(small_model_path),
                "--json",
                str(report),
            ]
        )
        == EXIT_OK
    )
    overall = json.loads(report.read_text())["results"][0]["overall"]
    assert overall["n_images"] == 4 and 0.0 <= overall["f1"] <= 1.0
    capsys.readouterr()


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_analyze_reports_each_bad_file_in_one_line_and_goes_on(
    hostile_dir: Path, small_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    paths = [str(hostile_dir / case.name) for case in INPUT_CASES]
    code = main(["analyze", *paths, "--out", str(out), "--model", str(small_model_path)])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    lines = assert_clean_console(captured.err, ("error: ", "model ", f"{len(BAD_CASES)} of "))
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == len(BAD_CASES)
    for case in BAD_CASES:
        (line,) = [e for e in errors if e.startswith(f"error: {hostile_dir / case.name}: ")]
        assert re.search(case.error, line), case.id
    # Every good file was analyzed and its four outputs written, however odd its name.
    records = {}
    for summary in out.glob("*.json"):
        record = json.loads(summary.read_text("utf-8"))
        records[Path(record["source"]).name] = record
        assert all(Path(p).is_file() for p in record["outputs"].values())
    assert set(records) == {case.name for case in GOOD_CASES}
    for case in GOOD_CASES:
        record = records[case.name]
        assert (record["height"], record["width"]) == case.shape
        check_warnings(case, record["warnings"])
        assert f"{hostile_dir / case.name}: score " in captured.out
    assert all(len(os.fsencode(p.name)) <= 255 for p in out.iterdir())
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_batch_report_has_a_row_per_file_and_goes_on(
    hostile_dir: Path,
    small_model_path: Path,
    tmp_path: Path,
    locked_subfolder: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report"
    args = ["batch", str(hostile_dir), "--report", str(report), "--model", str(small_model_path)]
    code = main([*args])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    lines = assert_clean_console(
        captured.err, ("error: ", "warning: ", "model ", f"{len(BAD_CASES)} of ")
    )
    assert sum(line.startswith("error: ") for line in lines) == len(BAD_CASES)
    # The loop and the locked folder are reported; neither stopped the batch.
    assert any(re.search(r"nested/loop: symbolic link loop", line) for line in lines)
    assert f"warning: {hostile_dir / 'locked'}: cannot read folder: permission denied" in lines
    assert f"({len(GOOD_CASES)} analyzed, {len(BAD_CASES)} error(s))" in captured.out

    records = read_jsonl(report / RESULTS_JSONL)
    header, rows = records[0], [r for r in records if r["record"] == "row"]
    assert header["status"] == "complete" and len(rows) == len(INPUT_CASES)
    by_name = {row["name"]: row for row in rows}
    for case in INPUT_CASES:
        row = by_name[case.name]
        assert row["sha256_start"], case.id
        if case.error is None:
            assert row["status"] == "ok" and (row["height"], row["width"]) == case.shape
            check_warnings(case, row["warnings"])
            assert (report / row["overlay_path"]).is_file()
        else:
            assert row["status"] == "error" and re.search(case.error, row["error"]), case.id
            assert str(hostile_dir / case.name) in row["error"]
    page = (report / INDEX_HTML).read_text("utf-8")
    assert html.escape(HTML_NAME) in page and "<b onmouseover" not in page
    assert LONG_NAME in page


@pytest.mark.timeout(60)
def test_cli_analyze_of_a_fifo_or_a_folder_does_not_hang(
    tmp_path: Path, small_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would block until someone writes
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    # No input is a file: refused before the model loads, naming the folder and what to use.
    code = main(["analyze", str(fifo), str(folder), "--model", str(small_model_path)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{folder} is a folder" in err and "ncl-forensics batch" in err
    # The pipe alone is read as nothing: one error line, no wait for a writer.
    code = main(["analyze", str(fifo), "--model", str(small_model_path)])
    assert code == EXIT_FAILED
    lines = assert_clean_console(capsys.readouterr().err, ("error: ", "model ", "1 of 1"))
    assert f"error: {fifo}: not a file; choose an image file." in lines
