"""describe_run / list_runs: a run folder read without its checkpoint, damaged ones included."""

import json
import os
from datetime import datetime

from ncl_core.training import CHECKPOINT_NAME as TRAINER_CHECKPOINT
from ncl_core.training import Trainer
from ncl_core.training import run_dir as run_dir_module
from ncl_core.training.run_dir import CHECKPOINT_NAME, describe_run, list_runs, model_label

from tiny import tiny_train_config


def test_a_real_cancelled_run_is_described_from_its_config_and_event_log(
    tmp_path, tiny_dataset, monkeypatch
):
    assert CHECKPOINT_NAME == TRAINER_CHECKPOINT
    config = tiny_train_config(tmp_path, tiny_dataset, steps=4, name="casia-ft")
    trainer = Trainer(config)

    def cancel_after_one(event):
        if event["type"] == "step" and event["step"] == 1:
            trainer.cancel()

    trainer.on_event = cancel_after_one
    before = datetime.now().replace(microsecond=0)
    assert trainer.fit() is None

    # The checkpoint is never opened: describing a run must not need torch.load.
    monkeypatch.setattr("torch.load", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    run = describe_run(tmp_path / "run")
    assert run.resumable and run.state == "cancelled" and run.notes == []
    assert run.name == "casia-ft" and run.backbone == "resnet18" and run.base_model is None
    assert run.model_text() == "casia-ft: resnet18 from scratch"
    assert run.data == (str(tiny_dataset),) and run.data_text() == tiny_dataset.name
    # Cancelled after step 1: the checkpoint written on cancelling is at step 1.
    assert (run.step, run.total_steps) == (1, 4)
    assert run.progress_text() == "step 1 of 4 (25 %)"
    assert before <= run.started <= run.updated <= datetime.now()
    assert run.date_text().startswith(f"started {run.started:%Y-%m-%d %H:%M}")

    assert [r.path for r in list_runs(tmp_path)] == [tmp_path / "run"]


def _local(text: str) -> datetime:
    """A zoned ISO time as naive local time, as ``describe_run`` gives it."""
    return datetime.fromisoformat(text).astimezone().replace(tzinfo=None)


def _write_run(folder, config=None, events=(), checkpoint=True, raw_events=None):
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(
            config if isinstance(config, str) else json.dumps(config)
        )
    if raw_events is not None:
        (folder / "events.jsonl").write_bytes(raw_events)
    elif events:
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if checkpoint:
        (folder / CHECKPOINT_NAME).write_bytes(b"not read")
    return folder


def test_fine_tuning_on_synthetic_photos_reads_the_tail_of_a_long_log(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir_module, "_TAIL_CHUNK", 256)  # many chunks, lines cut across
    base = "/models/casia-v1-0123456789ab.safetensors"
    config = {
        "name": "street-ft",
        "base_model": base,
        "model": {"backbone": "resnet50"},
        "data": [],
        "synthetic": "/photos/street pool",
        "steps": None,
        "some_future_field": 1,
    }
    events = [{"type": "start", "total_steps": 900, "time": "2024-05-01T12:00:00+00:00"}]
    for step in range(1, 301):
        events.append({"type": "step", "step": step, "total_steps": 900, "losses": {"t": 1.0}})
        if step % 100 == 0:
            events.append(
                {
                    "type": "checkpoint",
                    "step": step,
                    "time": f"2024-05-02T0{step // 100}:00:00+00:00",
                }
            )
    events.append({"type": "step", "step": 301, "total_steps": 900})
    run = describe_run(_write_run(tmp_path / "20240501-120000", config, events))
    assert model_label(base) == "casia-v1"
    assert run.model_text() == "street-ft: fine-tuning casia-v1 (resnet50)"
    assert run.data_text() == "synthetic forgeries of street pool"
    assert run.progress_text() == "step 300 of 900 (33 %)"
    assert run.state == "interrupted" and run.notes == []  # killed: no closing event
    # The times are shown in local time: the log's UTC instants, in this machine's zone.
    assert run.started == _local("2024-05-01T12:00:00+00:00")
    assert run.updated == _local("2024-05-02T03:00:00+00:00")  # the last checkpoint's


def test_damaged_runs_are_still_described_with_a_note(tmp_path):
    # A log cut short in its last line, a config that is not JSON.
    cut = (
        json.dumps({"type": "start", "total_steps": 50, "time": "2024-05-01T12:00:00"})
        + "\n"
        + json.dumps({"type": "checkpoint", "step": 20, "time": "2024-05-01T12:30:00"})
        + "\n"
        + '{"type": "step", "st'
    ).encode()
    broken = describe_run(_write_run(tmp_path / "a", "{not json", raw_events=cut))
    assert broken.resumable and (broken.step, broken.total_steps) == (20, 50)
    assert broken.model_text() == "unknown model" and broken.data_text() == "unknown data"
    assert any("config.json cannot be read" in note for note in broken.notes)

    # Neither file: the folder's name still dates it; a binary log is not a crash.
    bare_dir = _write_run(tmp_path / "20231224-180000", raw_events=b"\x00\xff" * 50)
    saved = datetime(2023, 12, 24, 18, 30).timestamp()
    os.utime(bare_dir / CHECKPOINT_NAME, (saved, saved))
    bare = describe_run(bare_dir)
    assert bare.updated == datetime(2023, 12, 24, 18, 30)  # the checkpoint file's date
    assert bare.started == datetime(2023, 12, 24, 18, 0, 0)
    assert bare.progress_text() == "no step recorded"
    assert any("no config.json" in n for n in bare.notes)
    assert any("no readable event" in n for n in bare.notes)

    # A failed run says why; a folder without checkpoint is not listed as resumable.
    failed = _write_run(
        tmp_path / "c",
        {"name": "x", "model": {"backbone": "resnet18"}, "data": ["/d/CASIA2"]},
        [
            {"type": "checkpoint", "step": 7, "time": "2024-05-03T10:00:00"},
            {"type": "failed", "message": "disk full", "time": "2024-05-03T10:01:00"},
        ],
    )
    described = describe_run(failed)
    assert described.state == "failed" and "failed: disk full" in described.notes
    _write_run(tmp_path / "d", {"name": "y"}, checkpoint=False)
    assert not describe_run(tmp_path / "d").resumable
    # The most recently saved first; the folder without checkpoint is left out.
    assert [r.path.name for r in list_runs(tmp_path)] == ["c", "a", "20231224-180000"]
    assert list_runs(tmp_path / "missing") == []
