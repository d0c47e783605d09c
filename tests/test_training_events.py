"""Training events: the typed events match what a run emits and logs, one text for each event
(the CLI prints it, the GUI shows it), and reading a run folder does not load torch."""

import json
import subprocess
import sys
import typing

from ncl_core.cli import _train_printer
from ncl_core.training import Trainer, format_event
from ncl_core.training import events as ev

from tiny import tiny_train_config

TYPED = {
    "start": ev.StartEvent,
    "step": ev.StepEvent,
    "epoch": ev.EpochEvent,
    "validation": ev.ValidationEvent,
    "checkpoint": ev.CheckpointEvent,
    "snapshot": ev.SnapshotEvent,
    "log": ev.LogEvent,
    "dataset": ev.DatasetEvent,
    "cancelled": ev.CancelledEvent,
    "finished": ev.FinishedEvent,
    "failed": ev.FailedEvent,
}


def test_every_event_of_a_run_has_its_typed_keys_and_one_line_of_text(tmp_path, tiny_dataset):
    emitted = []
    config = tiny_train_config(tmp_path, tiny_dataset, steps=2, ema_decay=0.9)
    config.snapshot_every_s = 1e-9  # a snapshot after every step
    Trainer(config, emitted.append).fit()
    logged = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    assert logged == json.loads(json.dumps(emitted))
    assert {e["type"] for e in emitted} >= set(TYPED) - {"cancelled", "failed"}
    for event in emitted:
        kind = TYPED[event["type"]]
        keys = typing.get_type_hints(kind)
        assert kind.__required_keys__ <= set(event) <= set(keys), event["type"]
        text = format_event(event)
        assert (text is None) == (event["type"] == "epoch")
        assert text is None or "\n" not in text


def test_format_event_of_each_kind():
    start = ev.StartEvent(
        type="start",
        total_steps=10,
        epochs=2,
        steps_per_epoch=5,
        device="cpu",
        processes=2,
        amp="off",
        n_train=8,
        n_val=2,
        run_dir="/runs/a",
    )
    assert format_event(start) == (
        "training on cpu and 1 more process(es) (AMP off): 8 training / 2 validation items, "
        "10 steps; run folder /runs/a"
    )
    metrics = {"f1": 0.5, "auc": float("nan"), "iou": 0.25}
    validation = ev.ValidationEvent(type="validation", epoch=1, step=5, metrics=metrics)
    assert format_event(validation) == "epoch 1 validation: f1 0.500, iou 0.250"
    assert format_event(ev.log_event("careful", "warning")) == "warning: careful"
    cancelled = ev.CancelledEvent(type="cancelled", step=3, checkpoint="/runs/a/checkpoint.pt")
    assert format_event(cancelled) == "cancelled at step 3; resume with --resume /runs/a"
    step = ev.StepEvent(
        type="step",
        step=3,
        total_steps=10,
        epoch=1,
        losses={"total": 1.0, "ncl": 0.5, "pc": 0.25, "pc_stage1": 0.1},
        lr=0.001,
        images_per_s=2.0,
        eta_s=3725.0,
    )
    assert format_event(step) == (
        "step 3 / 10 · epoch 1 · total 1.0000  ncl 0.5000  pc 0.2500 · lr 1.00e-03 · "
        "2.0 img/s · ETA 1:02:05"
    )
    assert format_event({"type": "history", "events": []}) is None  # not the trainer's


def test_the_cli_prints_format_event_validation_on_stdout_and_no_failure(capsys):
    on_event, close = _train_printer()
    events = [
        ev.log_event("resumed from step 2"),
        ev.ValidationEvent(type="validation", epoch=1, step=2, metrics={"f1": 0.5}),
        ev.FailedEvent(type="failed", message="printed once, as the command's error"),
        ev.FinishedEvent(
            type="finished",
            model_path="/m.safetensors",
            metrics={},
            steps=2,
            total_steps=2,
            stopped_by_time_limit=False,
            duration_s=1.0,
        ),
    ]
    for event in events:
        on_event(event)
    close()
    out, err = capsys.readouterr()
    assert out.splitlines() == [format_event(events[1])]
    assert err.splitlines() == [format_event(events[0]), format_event(events[3])]


def test_reading_a_run_folder_loads_no_torch():
    code = (
        "import sys\n"
        "from ncl_core.training.run_dir import list_runs\n"
        "from ncl_core.training.events import format_event\n"
        "list_runs('.')\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
