import json

import pytest
import torch

from ncl_core.models.modelfile import read_model_info
from ncl_core.network.net_config import LossConfig, ModelConfig
from ncl_core.training import CHECKPOINT_NAME, TrainConfig, Trainer, TrainingError

from tiny import TINY_CONFIG, tiny_train_config


def _losses(events):
    return [e["losses"]["total"] for e in events if e["type"] == "step"]


def test_events_checkpoint_and_model_file(tmp_path, tiny_dataset):
    events = []
    path = Trainer(tiny_train_config(tmp_path, tiny_dataset), events.append).fit()
    kinds = [e["type"] for e in events]
    for kind in ("start", "step", "epoch", "validation", "checkpoint", "finished"):
        assert kind in kinds
    step = next(e for e in events if e["type"] == "step")
    assert {"total", "ncl", "pc", "ncl_term1", "pc_stage4"} <= set(step["losses"])
    assert step["lr"] > 0 and step["images_per_s"] > 0
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    info = read_model_info(path)
    assert info.config == ModelConfig(**TINY_CONFIG)
    assert info.trained_on["n_train"] + info.trained_on["n_val"] == 10
    assert "f1" in info.metrics
    # The event log is kept beside the checkpoint.
    logged = [json.loads(line)["type"] for line in (tmp_path / "run" / "events.jsonl").open()]
    assert logged == kinds


def test_resume_follows_the_uninterrupted_trajectory(tmp_path, tiny_dataset):
    full = []
    Trainer(tiny_train_config(tmp_path / "a", tiny_dataset, steps=5), full.append).fit()

    first = []
    trainer = Trainer(tiny_train_config(tmp_path / "b", tiny_dataset, steps=5), first.append)

    def cancel_after_two(event):
        first.append(event)
        if event["type"] == "step" and event["step"] == 2:
            trainer.cancel()

    trainer.on_event = cancel_after_two
    assert trainer.fit() is None
    assert any(e["type"] == "cancelled" for e in first)
    assert len(_losses(first)) == 2

    rest = []
    resumed = Trainer.resume(tmp_path / "b" / "run", rest.append)
    assert resumed.fit() is not None
    assert _losses(first) + _losses(rest) == pytest.approx(_losses(full), rel=1e-5)


def test_finetune_names_its_parent(tmp_path, tiny_dataset, tiny_model_path):
    parent = read_model_info(tiny_model_path)
    config = tiny_train_config(tmp_path, tiny_dataset, base_model=str(tiny_model_path), steps=2)
    assert config.base_lr() == pytest.approx(0.1 * 0.007 * 2 / 4)
    child = read_model_info(Trainer(config).fit())
    assert child.parent == parent.sha256
    assert child.trained_on["datasets"][0]["root"] == str(tiny_dataset)


@pytest.mark.filterwarnings("error::UserWarning")  # no lr_scheduler order warning either
def test_non_finite_losses_stop_with_a_clear_message(tmp_path, tiny_dataset, monkeypatch):
    import ncl_core.training.steps as train_module

    def nan_loss(outputs, masks, config, generator):
        zero = outputs["logits"].sum() * 0
        return {"total": zero + float("nan"), "ncl": zero, "pc": zero}

    monkeypatch.setattr(train_module, "total_loss", nan_loss)
    events = []
    with pytest.raises(TrainingError, match="non-finite"):
        Trainer(
            tiny_train_config(tmp_path, tiny_dataset, steps=10, max_nonfinite=3), events.append
        ).fit()
    warnings = [e for e in events if e["type"] == "log" and e["level"] == "warning"]
    assert len(warnings) == 3
    assert events[-1]["type"] == "failed"


def test_no_data_is_a_training_error(tmp_path):
    config = tiny_train_config(tmp_path, tmp_path)
    config.data = ()
    with pytest.raises(TrainingError, match="no training data"):
        Trainer(config).fit()


def test_train_config_json_round_trip(tmp_path):
    config = tiny_train_config(tmp_path, "somewhere", loss=LossConfig(contour_mode="drop"))
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert isinstance(again.model, ModelConfig) and again.loss.contour_mode == "drop"


def test_resume_refuses_a_folder_without_checkpoint(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        Trainer.resume(tmp_path)
    torch.save({"format": "something else"}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(TrainingError, match="not an NCL Forensics checkpoint"):
        Trainer.resume(tmp_path)


def test_time_limit_stops_cleanly_and_the_run_resumes_exactly(tmp_path, tiny_dataset):
    full = []
    Trainer(tiny_train_config(tmp_path / "a", tiny_dataset, steps=5), full.append).fit()

    first = []
    # A limit far shorter than one step: the run stops after its first step.
    cfg = tiny_train_config(tmp_path / "b", tiny_dataset, steps=5, time_limit_min=1e-6)
    path = Trainer(cfg, first.append).fit()
    finished = next(e for e in first if e["type"] == "finished")
    assert finished["stopped_by_time_limit"] and finished["steps"] == 1
    assert finished["total_steps"] == 5
    # Stopping validated the weights it had and kept them as the model file.
    assert any(e["type"] == "validation" and e["step"] == 1 for e in first)
    assert path is not None and read_model_info(path).metrics
    assert any("time limit" in e.get("message", "") for e in first if e["type"] == "log")

    rest = []
    resumed = Trainer.resume(tmp_path / "b" / "run", rest.append)
    resumed.config.time_limit_min = None
    assert resumed.fit() is not None
    assert _losses(first) + _losses(rest) == pytest.approx(_losses(full), rel=1e-5)


def test_warmup_ramps_the_learning_rate_then_the_poly_decay_takes_over(tmp_path, tiny_dataset):
    events = []
    cfg = tiny_train_config(tmp_path, tiny_dataset, steps=8, warmup_steps=4, lr=0.01)
    Trainer(cfg, events.append).fit()
    lrs = [e["lr"] for e in events if e["type"] == "step"]
    # Step k reports the rate of the next step: base * poly(k) * min(1, (k + 1) / warmup).
    expected = [0.01 * (1 - k / 8) ** 0.9 * min(1.0, (k + 1) / 4) for k in range(1, 9)]
    assert lrs == pytest.approx(expected)
    assert lrs[0] < lrs[1] < lrs[2]  # the ramp is visible despite the decay
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
    with pytest.raises(ValueError, match="time_limit_min"):
        TrainConfig(time_limit_min=0)


def test_ema_weights_are_validated_beside_the_raw_ones_and_resume(tmp_path, tiny_dataset):
    events = []
    cfg = tiny_train_config(tmp_path, tiny_dataset, steps=4, ema_decay=0.9)
    trainer = Trainer(cfg, events.append)
    path = trainer.fit()
    compared = [e for e in events if e["type"] == "log" and "ema_metrics" in e]
    assert compared and {"f1", "auc"} <= set(compared[-1]["ema_metrics"])
    # The average is not the last weights: a step moved the weights away from it.
    model_state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    ema, raw = model_state["ema"], model_state["model"]
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], ema[k])]
    assert moved
    kept = read_model_info(path).metrics
    best = max(
        (compared[-1]["ema_metrics"], compared[-1]["raw_metrics"]),
        key=lambda m: (m["f1"], m["auc"]),
    )
    assert kept["f1"] == pytest.approx(best["f1"]) and ("ema" in kept) == (
        best is compared[-1]["ema_metrics"]
    )


def test_schedule_by_time_decays_with_the_clock(tmp_path, tiny_dataset, monkeypatch):
    # A fake clock: each step takes 6 s of a 0.5 min (30 s) budget, so the run stops after
    # 5 steps of 1000 and the learning rate has fallen on the way, not by step count.
    import ncl_core.training.trainer as train_module

    now = [0.0]

    def clock():
        now[0] += 3.0  # the loop reads the clock twice per step
        return now[0]

    monkeypatch.setattr(train_module.time, "perf_counter", clock)
    events = []
    cfg = tiny_train_config(
        tmp_path, tiny_dataset, steps=1000, time_limit_min=0.5, schedule_by_time=True
    )
    Trainer(cfg, events.append).fit()
    lrs = [e["lr"] for e in events if e["type"] == "step"]
    assert 3 <= len(lrs) <= 8
    assert lrs[-1] < 0.35 * lrs[0]  # by step count alone it would still be above 99 %
    with pytest.raises(ValueError, match="time limit"):
        TrainConfig(schedule_by_time=True)


@pytest.mark.parametrize("mode", ["native", "resize"])
def test_validation_sees_images_as_the_inference_mode_does(tmp_path, tiny_dataset, mode):
    cfg = tiny_train_config(tmp_path, tiny_dataset, size=32, val_mode=mode, val_fraction=0.5)
    (tmp_path / "run").mkdir()
    _, val, _ = Trainer(cfg)._datasets()
    shapes = {tuple(val[i]["image"].shape[-2:]) for i in range(len(val))}
    if mode == "resize":
        assert shapes == {(32, 32)}
    else:
        assert shapes and all(s != (32, 32) for s in shapes)  # the fixture's 64 px, unresized


def test_the_kept_weights_can_be_picked_by_the_quiet_f1():
    from ncl_core.training.keeping import ranks_higher

    loud = {"f1": 0.30, "auc": 0.70, "quiet_f1": 0.05}  # hot everywhere: good at 0.5 only
    quiet = {"f1": 0.25, "auc": 0.70, "quiet_f1": 0.15}
    assert ranks_higher(loud, quiet) and not ranks_higher(quiet, loud)
    assert ranks_higher(quiet, loud, "quiet_f1") and not ranks_higher(loud, quiet, "quiet_f1")
    # No authentic validation images, no quiet figure: F1 at 0.5 decides.
    assert ranks_higher({"f1": 0.3, "auc": 0.6}, {"f1": 0.2, "auc": 0.6}, "quiet_f1")
    assert ranks_higher(quiet, {}, "quiet_f1")  # the first measurement is the best so far
    with pytest.raises(ValueError, match="select_by"):
        TrainConfig(select_by="loss")
