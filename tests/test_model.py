import sys
from pathlib import Path

import pytest
import torch

from ncl_core.config import LossConfig, ModelConfig
from ncl_core.losses import total_loss
from ncl_core.model import NCLNet

PROJECT = Path(__file__).resolve().parents[1]
PRESETS = [(b, s) for b in ("resnet18", "resnet50", "resnet101") for s in (8, 16)]

_audit = {"active": False, "events": []}


def _hook(event, args):
    if _audit["active"] and (event == "open" or event.startswith(("socket.", "urllib."))):
        _audit["events"].append((event, args[0] if args else None))


sys.addaudithook(_hook)


def test_building_every_preset_downloads_and_reads_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pre-trained weight download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    allowed = [PROJECT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    _audit["events"].clear()
    _audit["active"] = True
    try:
        for backbone, stride in PRESETS:
            NCLNet(ModelConfig(backbone=backbone, output_stride=stride))
    finally:
        _audit["active"] = False
    network = [e for e in _audit["events"] if e[0] != "open"]
    assert network == []
    outside = []
    for _, target in _audit["events"]:
        if isinstance(target, (str, bytes, Path)):
            path = Path(target if not isinstance(target, bytes) else target.decode()).resolve()
            if not any(path.is_relative_to(root) for root in allowed):
                outside.append(str(path))
    assert outside == []


def _hooked_calls(model):
    called = []
    for name in ("head1", "head2", "head3", "pivot_pos", "pivot_neg", "head4"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: called.append(name))
    return called


def test_eval_forward_runs_only_the_final_head():
    model = NCLNet(ModelConfig(backbone="resnet18")).eval()
    called = _hooked_calls(model)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 1, 64, 64)
    assert called == ["head4"]


def test_training_forward_runs_every_head_and_both_pivots():
    model = NCLNet(ModelConfig(backbone="resnet18", patch_cells=2)).train()
    called = _hooked_calls(model)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 3:30, 5:50] = 1
    out = model(torch.randn(2, 3, 64, 64), masks)
    assert sorted(called) == sorted(["head1", "head2", "head3", "head4", "pivot_pos", "pivot_neg"])
    k = (64 // 8) ** 2
    d = 64 * 2 * 2
    assert out["patch_feats"].shape == (2, k, d)
    assert torch.allclose(out["patch_feats"].norm(dim=2), torch.ones(2, k), atol=1e-5)
    assert out["patch_labels"].shape == (2, k)
    assert out["se_pos"].shape == (2, d) and out["se_neg"].shape == (2, d)
    assert out["has_contour"].tolist() == [True, True]
    assert torch.allclose(out["se_pos"].norm(dim=1), torch.ones(2), atol=1e-5)
    sizes = [tuple(t.shape[-2:]) for t in out["stage_logits"]]
    assert sizes == [(8, 8), (16, 16), (32, 32), (64, 64)]
    assert out["logits"] is out["stage_logits"][-1]


def test_training_forward_without_masks_has_no_labels_or_pivots():
    model = NCLNet(ModelConfig(backbone="resnet18")).train()
    called = _hooked_calls(model)
    out = model(torch.randn(2, 3, 64, 64))
    assert out["patch_labels"] is None and out["se_pos"] is None
    assert "pivot_pos" not in called


def test_pivot_skipped_for_images_without_contour():
    model = NCLNet(ModelConfig(backbone="resnet18", patch_cells=2)).train()
    masks = torch.zeros(2, 1, 64, 64)
    masks[1, :, 3:30, 5:50] = 1
    out = model(torch.randn(2, 3, 64, 64), masks)
    assert out["has_contour"].tolist() == [False, True]
    assert out["se_pos"][0].abs().sum() == 0


@pytest.mark.parametrize("size", [(1, 1), (37, 51), (100, 64)])
def test_eval_accepts_any_size(size):
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 1, *size)
    assert torch.isfinite(out).all()


def test_training_refuses_sides_off_the_patch_grid():
    model = NCLNet(ModelConfig(backbone="resnet18")).train()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(2, 3, 48, 64), torch.zeros(2, 1, 48, 64))


@pytest.mark.parametrize("backbone,stride", PRESETS)
def test_one_training_step_per_preset(backbone, stride):
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone=backbone, output_stride=stride)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, :, 10:60, 12:64] = 1
    before = model.head4.weight.detach().clone()
    parts = total_loss(model(torch.randn(2, 3, 64, 64), masks), masks, LossConfig())
    optimizer.zero_grad()
    parts["total"].backward()
    optimizer.step()
    assert torch.isfinite(parts["total"])
    assert not torch.equal(before, model.head4.weight)


def test_config_json_round_trip():
    config = ModelConfig(backbone="resnet50", output_stride=16, patch_cells=4, pivot=False)
    assert ModelConfig.from_json(config.to_json()) == config
    loss = LossConfig(contour_mode="drop", max_negatives=None)
    assert LossConfig.from_json(loss.to_json()) == loss
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"backbone": "resnet18", "bakbone": "x"})
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(backbone="vgg16")
