"""The training ledger's page and the model card's curve come from one record."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ledger_module():
    spec = importlib.util.spec_from_file_location("ledger", ROOT / "scripts" / "ledger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(sha: str, f1: float) -> dict:
    """A bench_yardstick JSON holding one model's summary."""
    summary = {"nist16-B": {"f1": f1, "floor": 0.1, "auc": 0.7}, "image_auc": 0.6}
    return {"cpu": "test cpu", "results": {"m": {"sha256": sha, "summary": summary}}}


def _ledger_in(ledger, folder: Path) -> None:
    """Point the module's record, page and card (an empty curve) into ``folder``."""
    card = folder / "card.md"
    card.write_text(f"{ledger.CURVE_BEGIN}\n{ledger.CURVE_END}\n")
    ledger.LEDGER, ledger.PAGE, ledger.CARD = folder / "log.json", folder / "page.md", card


def test_render_writes_the_curve_into_the_page_and_between_the_cards_markers(tmp_path):
    ledger = _ledger_module()
    figures = {"sets": {"nist16-B": {"f1": 0.2, "floor_f1": 0.1, "auc": 0.7}}, "image_auc": 0.6}
    segment = {
        "segment": 0,
        "started": "2026-12-01T00:00:00",
        "result_model_sha256": "ab" * 32,
        "images_seen": 1000,
        "after": figures,
    }
    (tmp_path / "log.json").write_text(
        json.dumps({"segments": [segment, {**segment, "segment": 1}]})
    )
    card = tmp_path / "card.md"
    card.write_text(f"before\n{ledger.CURVE_BEGIN}\nold\n{ledger.CURVE_END}\nafter\n")
    ledger.LEDGER, ledger.PAGE, ledger.CARD = tmp_path / "log.json", tmp_path / "page.md", card
    ledger.render()
    text = card.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| 1,000") or line.startswith("| 2,000")
    ]
    assert len(rows) == 2  # images seen add up over the segments
    assert rows[0] in (tmp_path / "page.md").read_text()


def test_the_committed_page_and_card_are_rendered_from_the_committed_record(tmp_path):
    ledger = _ledger_module()
    page, card = tmp_path / "page.md", tmp_path / "card.md"
    card.write_text(ledger.CARD.read_text())
    ledger.PAGE, ledger.CARD = page, card
    ledger.render()
    assert page.read_text() == (ROOT / "docs" / "TRAINING_LOG.md").read_text()
    assert card.read_text() == (ROOT / "resources" / "models" / "MODEL_CARD.md").read_text()


def test_an_average_is_recorded_with_its_ingredients_and_no_training(tmp_path):
    import argparse

    import torch

    from ncl_core.models.average import save_average
    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    from tiny import NARROW_CONFIG

    ledger = _ledger_module()
    parts = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        parts.append(
            save_model(tmp_path / f"p{seed}.safetensors", NCLNet(ModelConfig(**NARROW_CONFIG)))
        )
    soup = save_average(tmp_path / "soup.safetensors", parts, [1, 3])
    start, result = ledger.sha256(parts[0]), ledger.sha256(soup)
    (tmp_path / "before.json").write_text(json.dumps(_bench(start, 0.15)))
    (tmp_path / "after.json").write_text(json.dumps(_bench(result, 0.18)))
    _ledger_in(ledger, tmp_path)
    args = argparse.Namespace(
        model=soup,
        start_sha=start,
        before=tmp_path / "before.json",
        after=tmp_path / "after.json",
        code_commit="abc",
        data=None,
        decision="shipped",
        note=None,
    )
    ledger.add_average(args)
    (entry,) = json.loads(ledger.LEDGER.read_text())["segments"]
    assert entry["kind"] == "average" and entry["steps"] == 0 and entry["images_seen"] == 0
    made_of = entry["recipe"]["average_of"]
    assert [m["sha256"] for m in made_of] == [start, ledger.sha256(parts[1])]
    assert [m["weight"] for m in made_of] == [0.25, 0.75]
    assert entry["before"]["nist16-B"]["f1"] == 0.15 and entry["after"]["nist16-B"]["f1"] == 0.18
    assert "weight average of 2 models" in (tmp_path / "page.md").read_text()
    args.model = parts[1]  # a model that is no average is refused
    with pytest.raises(SystemExit, match="not an average"):
        ledger.add_average(args)


def test_a_segment_that_began_with_the_self_supervised_stage_records_and_counts_it(tmp_path):
    import argparse

    ledger = _ledger_module()
    run, stage = tmp_path / "run", tmp_path / "pt"
    run.mkdir()
    stage.mkdir()
    import torch
    from safetensors.torch import save_file

    encoder = tmp_path / "encoder.safetensors"  # what the stage wrote, with its own summary
    summary = {"steps": 44, "cpu_or_gpu_minutes": 21.0}
    save_file({"w": torch.zeros(2)}, str(encoder), metadata={"pretrain": json.dumps(summary)})
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"a model")
    events = [
        {"type": "start", "time": "2026-12-01T00:00:00+00:00", "device": "cpu", "amp": "bf16"},
        *({"type": "step", "step": n, "time": "2026-12-01T00:30:00+00:00"} for n in (1, 2, 3)),
        {"type": "finished", "time": "2026-12-01T01:00:00+00:00"},
    ]
    (run / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    config = {
        "batch_size": 8,
        "base_model": None,
        "init_encoder": str(encoder),
        "loss": {"tau": 0.1},
        "model": {"backbone": "resnet18"},
    }
    (run / "config.json").write_text(json.dumps(config))
    stage_config = {"batch_size": 16, "crop": 96, "lr": 0.05, "model": {"noise_stem": False}}
    (stage / "pretrain-config.json").write_text(json.dumps(stage_config))
    rows = [
        {"step": 20, "loss": 3.6, "elapsed_s": 600.0},
        {"step": 40, "loss": 3.1, "elapsed_s": 1200.0},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 60, "lo'  # cut short
    (stage / "pretrain.jsonl").write_text(text)
    (tmp_path / "after.json").write_text(json.dumps(_bench(ledger.sha256(model), 0.1)))
    _ledger_in(ledger, tmp_path)
    args = argparse.Namespace(
        run=run,
        model=model,
        before=tmp_path / "after.json",
        after=tmp_path / "after.json",
        start_sha=None,
        code_commit="abc",
        data="from scratch",
        cores=1,
        decision="not shipped",
        note=None,
        pretrain=stage,
    )
    ledger.add(args)
    (entry,) = json.loads(ledger.LEDGER.read_text())["segments"]
    assert entry["start_model_sha256"] is None and entry["before"] is None
    assert entry["steps"] == 3 and entry["wall_min"] == 60.0
    # the encoder's own count (the log has every 20th step), and the stage's hash
    assert entry["pretrain"]["steps"] == 44 and entry["pretrain"]["crops_seen"] == 44 * 16 * 3
    assert entry["pretrain"]["wall_min"] == 21.0
    assert entry["pretrain"]["encoder_sha256"] == ledger.sha256(encoder)
    assert entry["pretrain"]["recipe"] == {
        "batch_size": 16,
        "crop": 96,
        "lr": 0.05,
        "noise_stem": False,
    }
    assert entry["core_min"] == 81.0  # 60 min of the run and 21 of the stage, on one core
    # without the encoder, the log's last line gives the stage's steps and minutes
    stage_only = ledger.pretrain_summary(stage)
    assert (stage_only["steps"], stage_only["wall_min"]) == (40, 20.0)
    assert "first the self-supervised stage" in (tmp_path / "page.md").read_text()
