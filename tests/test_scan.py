"""Scanning dropped files and folders (ncl_core.evidence.scan)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ncl_core.evidence import scan as scan_module
from ncl_core.evidence.scan import scan_inputs

from imaging import deny_folder


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_files_folders_hidden_files_sorted(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    b = _touch(root / "b.jpg")
    a = _touch(root / "sub" / "deep" / "a.png")
    hidden = _touch(root / ".hidden.jpg")
    note = _touch(root / "notes.txt")
    extra = _touch(tmp_path / "single.tif")
    result = scan_inputs([extra, root])
    assert result.files == sorted([b, a, hidden, note, extra], key=str)
    assert result.problems == []
    assert all(p.is_absolute() for p in result.files)


def test_symlink_loop_is_reported_and_ends(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    inner = _touch(root / "x" / "img.jpg")
    os.symlink("..", root / "x" / "up")  # x/up -> drop: a cycle
    os.symlink("self", root / "self")  # a link to itself (ELOOP)
    result = scan_inputs([root])
    assert result.files == [inner]
    messages = {p.path.name: p.message for p in result.problems}
    assert "loop" in messages["up"] and "loop" in messages["self"]


def test_links_to_files_and_folders_count_once(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    real = _touch(root / "real" / "img.jpg")
    os.symlink(real, root / "alias.jpg")
    os.symlink(root / "real", root / "again")  # the same folder under a second name
    result = scan_inputs([root, real])
    assert len(result.files) == 1 and result.files[0].name in ("img.jpg", "alias.jpg")
    assert result.files == [root / "again" / "img.jpg"]  # first in sorted order
    assert result.problems == []
    # The other names are listed with the name they were merged into, not dropped silently.
    kept = root / "again" / "img.jpg"
    assert sorted(result.aliases) == [(root / "alias.jpg", kept), (real, kept)]


def test_hard_links_are_merged_and_listed(tmp_path: Path) -> None:
    first = _touch(tmp_path / "a.jpg")
    os.link(first, tmp_path / "b.jpg")
    result = scan_inputs([tmp_path, first])  # a file given twice is not an alias of itself
    assert result.files == [first]
    assert result.aliases == [(tmp_path / "b.jpg", first)]


def test_missing_broken_and_special_paths_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    good = _touch(root / "ok.png")
    os.symlink(root / "gone.png", root / "broken.png")
    os.mkfifo(root / "pipe.png")  # opening it would block forever
    result = scan_inputs([root, tmp_path / "nope"])
    assert result.files == [good]
    messages = {p.path.name: p.message for p in result.problems}
    assert "broken" in messages["broken.png"]
    assert "not a regular file" in messages["pipe.png"]
    assert "not found" in messages["nope"]


def test_unreadable_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "drop"
    good = _touch(root / "ok.png")
    _touch(root / "locked" / "secret.png")
    deny_folder(monkeypatch, scan_module)  # chmod 000 does not stop root, the CI user
    result = scan_inputs([root])
    assert result.files == [good]
    assert [(p.path.name, p.message) for p in result.problems] == [
        ("locked", "cannot read folder: permission denied")
    ]


def test_exclude_leaves_out_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    keep = _touch(root / "keep.png")
    _touch(root / "report" / "index.html")
    result = scan_inputs([root], exclude=[root / "report"])
    assert result.files == [keep]
