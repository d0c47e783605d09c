"""How a report shares a small CPU (ncl_core.cpu): torch's idle threads sleep for the commands
that analyze, the drawing threads yield to the model, and a row is never left waiting on a
drawing thread that gets no core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ncl_core import cpu
from ncl_core.inference.predictor import Predictor
from ncl_core.report import ReportOptions, run_batch, runner, stream
from ncl_core.report.verification import verify_report

from imaging import pattern, save

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_openmp_threads_sleep_unless_the_user_said_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != cpu.OMP_WAIT_POLICY}
    code = "from ncl_core import cpu; import os; print(cpu.prefer_sleeping_threads(), os.environ.get('OMP_WAIT_POLICY'))"
    assert _python(code, env) == "True PASSIVE"
    assert _python(code, {**env, cpu.OMP_WAIT_POLICY: "active"}) == "False active"
    # Too late once torch is loaded: the setting is not pretended.
    late = "import torch; " + code
    assert _python(late, env) == "False None"


def test_the_commands_that_analyze_load_the_model_with_sleeping_threads(
    tiny_model_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != cpu.OMP_WAIT_POLICY}
    code = (
        "import argparse, gc, os, sys; from ncl_core.cli.common import load_predictor; "
        f"load_predictor(argparse.Namespace(model={str(tiny_model_path)!r}, device='cpu')); "
        "print(os.environ.get('OMP_WAIT_POLICY'), gc.get_freeze_count() > 1000)"
    )
    assert _python(code, env).splitlines()[-1] == "PASSIVE True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities: Linux only")
def test_a_drawing_thread_takes_the_lowest_priority() -> None:
    seen = {}

    def lower() -> None:
        seen["lowered"] = cpu.yield_to_other_threads()
        tid = threading.get_native_id()
        seen["policy"] = os.sched_getscheduler(tid)
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)

    thread = threading.Thread(target=lower)
    thread.start()
    thread.join()
    assert seen["lowered"]
    assert seen["policy"] == os.SCHED_IDLE or seen["nice"] == 19
    # The caller's own thread is untouched.
    assert os.sched_getscheduler(threading.get_native_id()) != os.SCHED_IDLE


class _StarvedPool(ThreadPoolExecutor):
    """Drawing threads that never get a core: nothing submitted ever runs."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        self.submitted += 1


def _jpegs(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "evidence"
    for i in range(n):
        save(folder / f"img{i}.jpg", pattern(40, 56, seed=i), quality=90)
    return folder


def _keep_pools(monkeypatch: pytest.MonkeyPatch, make) -> list:
    """The report's drawing pools, made by ``make`` and kept here for the test to inspect."""
    pools: list = []
    monkeypatch.setattr(runner, "drawing_pool", lambda: pools.append(make()) or pools[-1])
    return pools


def test_a_report_completes_when_its_drawing_threads_never_run(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _jpegs(tmp_path, 5)
    (folder / "notes.txt").write_text("not an image")
    pools = _keep_pools(monkeypatch, _StarvedPool)
    predictor = Predictor.load(tiny_model_path, device="cpu")
    summary = run_batch([folder], predictor, tmp_path / "report", ReportOptions())
    assert pools[0].submitted == 6  # every row was offered to the drawing threads...
    assert summary.complete and summary.n_ok == 5 and summary.n_skipped == 1
    rows = [json.loads(line) for line in (tmp_path / "report" / "results.jsonl").open()]
    drawn = [r for r in rows if r.get("status") == "ok"]
    assert len(drawn) == 5  # ...and drawn by the model's thread instead
    assert all((tmp_path / "report" / r["overlay_path"]).is_file() for r in drawn)
    result = verify_report(tmp_path / "report")
    assert result.intact and result.n_files > 0, result.problems


def test_a_row_whose_drawing_thread_stalls_is_drawn_again_and_written_once(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _jpegs(tmp_path, 4)
    release = threading.Event()
    stalled: list[int] = []
    real_draw = stream.draw_row

    def draw(*args, **kwargs):
        if threading.current_thread().name.startswith("ncl-report-draw"):
            stalled.append(args[0])  # started by a drawing thread that then gets no core
            if not release.wait(20):  # the report waited for it instead of drawing it again
                raise RuntimeError("stalled drawing thread waited for")
        return real_draw(*args, **kwargs)

    pools = _keep_pools(monkeypatch, runner.drawing_pool)
    monkeypatch.setattr(stream, "draw_row", draw)
    monkeypatch.setattr(stream, "RESCUE_AFTER_S", 0.05)
    predictor = Predictor.load(tiny_model_path, device="cpu")
    report = tmp_path / "report"
    try:
        summary = run_batch([folder], predictor, report, ReportOptions())
        assert stalled, "no drawing thread started a row"
        assert summary.complete and summary.n_ok == 4
        written = {p: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    finally:
        release.set()
        pools[0].shutdown(wait=True)
    # The stalled drawing finished after the report: it wrote nothing, changed nothing.
    assert {p: p.read_bytes() for p in report.rglob("*") if p.is_file()} == written
    result = verify_report(report)
    assert result.intact and result.n_files > 0, result.problems
