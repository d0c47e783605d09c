"""Processes killed with SIGKILL (crashes and resources).

A real ``python -m ncl_core`` process is killed mid-run, as a power cut or the OOM killer
would; nothing in it gets to clean up. What it wrote must be whole, and ``--resume`` must
finish the job. (tests/test_report.py covers a batch that raises mid-way; this is the harder
case of a process that simply stops.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ncl_core.cli import EXIT_FAILED, EXIT_OK, main
from ncl_core.models.modelfile import load_model
from ncl_core.report import RESULTS_JSONL
from ncl_core.training import CHECKPOINT_NAME
from reliability.hostile import read_jsonl

from imaging import pattern, save

TIMEOUT_S = 120


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """``python -m ncl_core ARGS`` with one torch thread, its output in ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ncl_core", *args], stdout=out, stderr=out, env=env
        )


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], log: Path) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fails if it ended first or took too long."""
    deadline = time.monotonic() + TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before it could be killed:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nothing to kill on after {TIMEOUT_S} s:\n{log.read_text()}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _lines_of(path: Path, kind: str) -> int:
    try:
        return path.read_text("utf-8").count(kind)
    except FileNotFoundError:
        return 0


class CheckpointWatcher(threading.Thread):
    """Loads ``checkpoint.pt`` over and over while training runs: any moment's file must load.

    Opening the file first and loading from the handle reads exactly one version of it, even
    when a new checkpoint replaces it meanwhile.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.steps: list[int] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with open(self.path, "rb") as fh:
                    checkpoint = torch.load(fh, map_location="cpu", weights_only=True)
                self.steps.append(int(checkpoint["step"]))
            except FileNotFoundError:
                time.sleep(0.01)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                self.failures.append(f"{type(exc).__name__}: {exc}")


def test_training_killed_mid_run_resumes_from_a_whole_checkpoint(
    tmp_path: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, model = tmp_path / "run", tmp_path / "model.safetensors"
    args = ["train", "--data", str(tiny_dataset), "--size", "64", "--patch-cells", "2"]
    args += ["--batch-size", "2", "--workers", "0", "--steps", "4", "--checkpoint-every", "1"]
    args += ["--run-dir", str(run), "--out", str(model)]
    # The watcher reads checkpoint.pt throughout: while the first process writes it, after the
    # kill, and while the resumed run replaces it step after step.
    watcher = CheckpointWatcher(run / CHECKPOINT_NAME)
    watcher.start()
    try:
        proc = _start(args, tmp_path / "train.log")
        _kill_when(
            proc,
            lambda: _lines_of(run / "events.jsonl", '"type": "checkpoint"') >= 1,
            tmp_path / "train.log",
        )
        # What the killed process left: a checkpoint that loads, and no half-written model.
        checkpoint = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
        killed_at = int(checkpoint["step"])
        assert 1 <= killed_at < 4 and checkpoint["batch_in_epoch"] > 0  # mid-epoch
        if model.exists():
            load_model(model)
        assert main(["train", "--resume", str(run)]) == EXIT_OK
    finally:
        watcher.stop.set()
        watcher.join()
    capsys.readouterr()
    assert watcher.failures == []
    assert len(set(watcher.steps)) >= 2  # it saw the file replaced, and every version loaded

    events = [json.loads(line) for line in (run / "events.jsonl").open()]
    resumed = max(i for i, e in enumerate(events) if e["type"] == "start")
    after = events[resumed:]
    steps = [e["step"] for e in after if e["type"] == "step"]
    assert steps == list(range(killed_at + 1, 5))  # continues where it stopped, no step twice
    assert after[-1]["type"] == "finished" and after[-1]["steps"] == 4
    assert any(e.get("message", "").startswith(f"resumed from step {killed_at}") for e in events)
    load_model(model)
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


def test_batch_killed_mid_way_keeps_its_rows_and_resumes_without_duplicates(
    tmp_path: Path, small_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = tmp_path / "evidence"
    for i in range(20):
        save(evidence / f"img{i:02d}.png", pattern(96, 128, seed=i))
    (evidence / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    report = tmp_path / "report"
    args = ["batch", str(evidence), "--report", str(report), "--model", str(small_model_path)]
    proc = _start(args, tmp_path / "batch.log")
    _kill_when(
        proc,
        lambda: _lines_of(report / RESULTS_JSONL, '"record": "row"') >= 3,
        tmp_path / "batch.log",
    )

    records = read_jsonl(report / RESULTS_JSONL)  # every complete line parses
    header, before = records[0], [r for r in records if r["record"] == "row"]
    assert header["status"] == "running" and 3 <= len(before) < 21
    assert [r["index"] for r in before] == list(range(1, len(before) + 1))

    assert main([*args, "--resume"]) == EXIT_FAILED  # broken.jpg is an error row
    capsys.readouterr()
    records = read_jsonl(report / RESULTS_JSONL)
    header, rows = records[0], [r for r in records if r["record"] == "row"]
    assert header["status"] == "complete" and len(header["resumed_utc"]) == 1
    assert len(rows) == 21 and len({r["path"] for r in rows}) == 21
    assert sorted(r["index"] for r in rows) == list(range(1, 22))
    kept = ("index", "path", "sha256_start", "status", "score", "analyzed_utc")
    for old in before:  # rows written before the kill are kept as they were
        new = next(r for r in rows if r["path"] == old["path"])
        assert {k: new[k] for k in kept} == {k: old[k] for k in kept}
    assert [p for p in report.rglob("*") if p.name.endswith(".tmp")] == []
    sums = (report / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len([p for p in report.rglob("*") if p.is_file()]) - 1
