"""Where a run's model goes without --out, resuming with more time, and registration after a
resume."""

from __future__ import annotations

import os
import time

import pytest
import torch

from ncl_core.cli import EXIT_OK, EXIT_USAGE, main
from ncl_core.models.modelfile import read_model_info
from ncl_core.training import CHECKPOINT_NAME, TrainConfig, Trainer, TrainingError

from tiny import tiny_train_config


def _steps(events):
    return [e for e in events if e["type"] == "step"]


def test_without_out_the_model_goes_into_the_run_folder(tmp_path, tiny_dataset):
    cfg = tiny_train_config(tmp_path, tiny_dataset, steps=1, out=None)
    path = Trainer(cfg).fit()
    assert path.parent == tmp_path / "run"
    assert read_model_info(path).name == "ncl-run" == cfg.name
    assert TrainConfig().out is None


def test_a_run_out_of_time_resumes_only_with_more_time_and_continues_its_schedule(
    tmp_path, tiny_dataset
):
    limit = 1e-6  # far shorter than one step: the run stops after its first
    cfg = tiny_train_config(
        tmp_path, tiny_dataset, steps=6, time_limit_min=limit, schedule_by_time=True
    )
    first = []
    Trainer(cfg, first.append).fit()
    finished = next(e for e in first if e["type"] == "finished")
    assert finished["stopped_by_time_limit"] and finished["steps"] == 1
    # The ETA never promises more than the time left.
    assert all(e["eta_s"] <= 60 * limit for e in _steps(first))

    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="more time"):
        Trainer.resume(run)
    # What a killed process left half-written: removed on resume once a minute old.
    left = run / ".snapshot.safetensors.0a1b2c3d.tmp"
    fresh = run / ".checkpoint.pt.4e5f6a7b.tmp"
    left.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"")
    os.utime(left, (time.time() - 120, time.time() - 120))

    rest = []
    used_min = torch.load(run / CHECKPOINT_NAME, weights_only=True)["elapsed_s"] / 60
    resumed = Trainer.resume(run, rest.append, more_minutes=5.0)
    assert not left.exists() and fresh.exists()
    # The time used so far (one step, past the limit) plus the five minutes given.
    assert resumed.config.time_limit_min == pytest.approx(max(limit, used_min) + 5.0)
    resumed.fit()
    steps = _steps(rest)
    assert [e["step"] for e in steps] == [2, 3, 4, 5, 6]  # the rest of the run, not one step
    assert steps[0]["lr"] > 0
    assert next(e for e in rest if e["type"] == "finished")["stopped_by_time_limit"] is False
    # The longer limit is the run's from now on.
    assert TrainConfig.from_json((run / "config.json").read_text()).time_limit_min > 5.0
    with pytest.raises(TrainingError, match="positive"):
        Trainer.resume(run, more_minutes=0)


def _finetune_args(tmp_path, data, model, *extra):
    return [
        "finetune",
        "--model",
        str(model),
        "--data",
        str(data),
        "--size",
        "64",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--time-limit",
        "0",
        "--device",
        "cpu",
        *extra,
    ]


def test_finetune_without_out_registers_and_writes_nothing_here(
    tmp_path, tiny_dataset, tiny_model_path, monkeypatch, capsys
):
    from ncl_core.models.registry import ModelRegistry
    from ncl_core.paths import runs_dir

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    args = _finetune_args(tmp_path, tiny_dataset, tiny_model_path, "--steps", "1")
    args += ["--contour-mode", "drop", "--name", "mine"]
    assert main(args) == EXIT_OK
    assert list(here.iterdir()) == []
    assert "registered as mine" in capsys.readouterr().err
    (info,) = [m for m in ModelRegistry().list() if m.name == "mine"]
    assert info.path.parent == ModelRegistry().root
    assert any(runs_dir().glob("*/mine.safetensors"))


def test_a_registered_finetune_registers_after_a_resume(
    tmp_path, tiny_dataset, tiny_model_path, monkeypatch, capsys
):
    from ncl_core.models.registry import ModelRegistry
    from ncl_core.training import Trainer as RealTrainer

    run = tmp_path / "run"
    out = tmp_path / "out.safetensors"
    args = _finetune_args(tmp_path, tiny_dataset, tiny_model_path, "--steps", "3")
    args += ["--contour-mode", "drop", "--register", "--out", str(out), "--run-dir", str(run)]
    args += ["--name", "resumed-ft"]

    # The first session is stopped after a step, as Ctrl-C (or a kill after a checkpoint) would.
    real_fit = RealTrainer.fit

    def fit_then_cancel(self):
        on_event = self.on_event

        def listen(event):
            on_event(event)
            if event["type"] == "step":
                self.cancel()

        self.on_event = listen
        return real_fit(self)

    monkeypatch.setattr(RealTrainer, "fit", fit_then_cancel)
    assert main(args) != EXIT_OK
    monkeypatch.setattr(RealTrainer, "fit", real_fit)
    assert not [m for m in ModelRegistry().list() if m.name == "resumed-ft"]

    assert main(["finetune", "--resume", str(run)]) == EXIT_OK  # no --register this time
    assert "registered as resumed-ft" in capsys.readouterr().err
    assert [m for m in ModelRegistry().list() if m.name == "resumed-ft"]
    assert main(["finetune", "--more-time", "5"]) == EXIT_USAGE
