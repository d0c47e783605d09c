"""The GPU burst script, end to end on the CPU with a tiny budget: it warm-starts, follows the
clock, leaves fp16 snapshots while it runs and stops by itself inside its window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from ncl_core.models.modelfile import read_model_info

from imaging import pattern, save

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_gpu.sh"


def test_burst_continues_a_model_and_stops_inside_its_window(
    tmp_path, tiny_dataset, tiny_model_path
):
    data = tmp_path / "data"
    for i in range(3):
        save(data / "train" / f"p{i}" / "photo.png", pattern(90, 120, seed=i, noise=20))
    (data / "val").symlink_to(tiny_dataset, target_is_directory=True)
    out = tmp_path / "out"
    cli = tmp_path / "ncl"
    cli.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ncl_core "$@"\n')
    cli.chmod(0o755)
    env = {
        **os.environ,
        "NCL": str(cli),
        "DEVICE": "cpu",
        "BASE": str(tiny_model_path),
        "BURST_MIN": "0.12",
        "SNAPSHOT_S": "2",
        "BATCH": "2",
        "WORKERS": "0",
        "SIZE": "64",
        "VAL_LIMIT": "4",
        "EPOCH_STEPS": "1000",
        "SEED": "5",
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), "burst", str(data), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = out / "burst"
    events = [json.loads(line) for line in (run / "events.jsonl").open()]
    finished = next(e for e in events if e["type"] == "finished")
    assert finished["stopped_by_time_limit"]  # it ended by the clock, not by its step budget
    assert finished["duration_s"] < 0.12 * 60 + 20
    assert any(e["type"] == "snapshot" for e in events)
    lrs = [e["lr"] for e in events if e["type"] == "step"]
    assert lrs[-1] < 0.5 * max(lrs)  # the schedule followed the clock down
    snapshot = read_model_info(run / "snapshot.safetensors")
    assert snapshot.parent == read_model_info(tiny_model_path).sha256  # warm-started
    with safe_open(str(run / "snapshot.safetensors"), framework="pt") as fh:
        dtypes = {fh.get_slice(key).get_dtype() for key in fh.keys()}  # noqa: SIM118
    assert dtypes <= {"F16", "I64"}  # fp16 weights (the counters stay integers)
    assert (run / "best.safetensors").is_file()
