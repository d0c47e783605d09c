"""Hostile report folders and file names: a batch never deletes or rewrites anything outside its
report folder, and its tables cannot be turned into formulas or shifted columns."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from hostile_files import hashes
from tqdm import tqdm

from ncl_core.cli import EXIT_USAGE, main
from ncl_core.models.registry import ModelRegistry
from ncl_core.report.artefacts import remove_stale_folders
from ncl_core.report.rows import RESULTS_CSV, csv_text, empty_row

from imaging import pattern, save


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    for i in range(3):
        save(folder / f"img{i}.png", pattern(24, 32, seed=i))
    return folder


def test_resume_refuses_a_report_folder_holding_a_link_to_evidence(
    tmp_path: Path, evidence: Path, narrow_model: Path, capsys
) -> None:
    before = hashes(evidence)
    report = tmp_path / "report"
    args = ["batch", str(evidence), "--report", str(report), "--model", str(narrow_model)]
    assert main([*args, "--mode", "resize"]) == 0
    # A stale-looking picture folder that is really a link to the evidence folder.
    (report / "images" / "00009").symlink_to(evidence, target_is_directory=True)
    capsys.readouterr()
    assert main([*args, "--mode", "resize", "--resume"]) == EXIT_USAGE
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "symbolic link" in errors[0] and "images/00009" in errors[0]
    assert "Traceback" not in err
    assert hashes(evidence) == before
    assert (report / "images" / "00009").is_symlink()


def test_stale_folder_cleanup_never_follows_links(tmp_path: Path, evidence: Path) -> None:
    before = hashes(evidence)
    images = tmp_path / "report" / "images"
    images.mkdir(parents=True)
    (images / "00002").symlink_to(evidence, target_is_directory=True)
    stale = images / "00003"
    stale.mkdir()
    (stale / "mask.png").write_bytes(b"x")
    (stale / "linked.png").symlink_to(evidence / "img0.png")
    real_stale = images / "00004"
    real_stale.mkdir()
    (real_stale / "mask.png").write_bytes(b"x")
    remove_stale_folders(tmp_path / "report", keep=set())
    assert hashes(evidence) == before
    assert (images / "00002").is_symlink()  # the link itself is left: refused earlier
    assert (stale / "linked.png").is_symlink()  # a folder holding a link is not ours
    assert not real_stale.exists()


def test_carriage_return_in_a_name_cannot_start_a_row_or_a_formula(tmp_path: Path) -> None:
    hostile = "x.png\r=1+1.png"
    rows = []
    for i, name in enumerate([hostile, "y.png\n@SUM(A1)", "=cmd|' /C calc'!A0.png"], start=1):
        row = empty_row(i, str(tmp_path / name))
        row["exif_software"] = "Photoshop\r\n+HYPERLINK(1)"
        rows.append(row)
    text = csv_text(rows)
    path = tmp_path / RESULTS_CSV
    path.write_text(text, encoding="utf-8", newline="")
    with open(path, encoding="utf-8", newline="") as fh:
        parsed = list(csv.reader(fh))
    assert len(parsed) == 1 + len(rows)  # no row split by a line break
    assert all(len(r) == len(parsed[0]) for r in parsed)
    for record in parsed[1:]:
        for cell in record:
            for line in cell.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                assert not line.startswith(("=", "+", "-", "@")), cell
    # Every field is quoted, so a spreadsheet keeps a line break inside its cell.
    assert text.splitlines()[1].startswith('"1","') and "\r=1+1" not in text
    name_cell = parsed[1][1]
    assert name_cell.endswith("\r'=1+1.png") and name_cell.startswith(os.fspath(tmp_path))


def test_resumed_progress_starts_at_the_files_already_done(
    tmp_path: Path, evidence: Path, narrow_model: Path, monkeypatch
) -> None:
    from ncl_core.cli import batch

    shown = io.StringIO()
    monkeypatch.setattr(
        batch,
        "progress",
        lambda total, desc, unit="img": tqdm(total=total, desc=desc, file=shown, mininterval=0),
    )
    report = tmp_path / "report"
    args = ["batch", str(evidence), "--report", str(report), "--model", str(narrow_model)]
    assert main([*args, "--mode", "resize"]) == 0
    save(evidence / "img3.png", pattern(24, 32, seed=3))  # one more file since the kill
    shown.truncate(0)
    shown.seek(0)
    assert main([*args, "--mode", "resize", "--resume"]) == 0
    counts = re.findall(r"(\d+)/4\b", shown.getvalue())
    assert counts and counts[0] == "3" and counts[-1] == "4" and "0" not in counts


def test_a_killed_import_leaves_no_temporary_copy_behind(tiny_model_path: Path) -> None:
    registry = ModelRegistry()
    registry.root.mkdir(parents=True)
    stale = registry.root / ".tiny-0123456789ab.safetensors.0a1b2c3d.tmp"
    stale.write_bytes(b"x" * 31)
    empty = registry.root / ".other.safetensors.4e5f6a7b.tmp"
    empty.write_bytes(b"")
    fresh = registry.root / ".busy.safetensors.8c9d0e1f.tmp"
    fresh.write_bytes(b"being written")
    hour_ago = time.time() - 7200
    for path in (stale, empty):
        os.utime(path, (hour_ago, hour_ago))
    registry.import_model(tiny_model_path)
    assert not stale.exists() and not empty.exists()
    assert fresh.exists()  # possibly another import, still writing


def test_views_work_on_a_bounded_copy_of_a_huge_image(
    tmp_path: Path, evidence: Path, narrow_model: Path, monkeypatch, capsys
) -> None:
    """The 110 MP case by its bound: the limit is lowered to 300 px for 24 x 32 images."""
    from ncl_core.report import forensic_views as report_views
    from ncl_core.views import compute_views

    monkeypatch.setattr(report_views, "VIEW_MAX_PIXELS", 300)
    seen: list[tuple[int, int]] = []

    def spy(names, source, params=None):
        seen.append(source.image.shape[:2])
        return compute_views(names, source, params)

    monkeypatch.setattr(report_views, "compute_views", spy)
    monkeypatch.setattr("ncl_core.views.compute_views", spy)
    before = hashes(evidence)
    report = tmp_path / "report"
    model = ["--model", str(narrow_model), "--mode", "resize", "--views", "all"]
    assert main(["batch", str(evidence), "--report", str(report), *model]) == 0
    assert seen and all(h * w <= 300 for h, w in seen)
    rows = [json.loads(x) for x in (report / "results.jsonl").read_text("utf-8").splitlines()[1:]]
    assert all(any("scaled down to" in w for w in r["warnings"]) for r in rows)
    seen.clear()
    image = evidence / "img0.png"
    assert main(["analyze", str(image), *model, "--out", str(tmp_path / "out")]) == 0
    assert seen and all(h * w <= 300 for h, w in seen)
    assert "scaled down to" in capsys.readouterr().out
    assert hashes(evidence) == before


def test_a_right_to_left_override_in_a_name_is_marked_in_the_html(tmp_path: Path) -> None:
    from ncl_core.report.html import _e

    assert _e("invoice\u202egnp.exe") == "invoice[U+202E]gnp.exe"
    assert _e("a\u2066b<") == "a[U+2066]b&lt;"
