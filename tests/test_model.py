import sys
from pathlib import Path

import pytest
import torch

from ncl_core.network.backbones import BACKBONES, REGISTRY
from ncl_core.network.losses import total_loss
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import LossConfig, ModelConfig

PROJECT = Path(__file__).resolve().parents[1]
PRESETS = [(b, s) for b in BACKBONES for s in (8, 16)]

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


@pytest.mark.parametrize("name", BACKBONES)
def test_registry_channels_match_the_network(name):
    """Each entry's channels are those of the network it builds (layer1 and layer4)."""
    entry = REGISTRY[name]
    net = entry.build((False, False, True))
    assert net.layer1[-1].conv1.in_channels == entry.low_channels
    features = net.layer4(net.layer3(net.layer2(net.layer1(torch.zeros(1, 64, 16, 16)))))
    assert features.shape[1] == entry.high_channels


def test_unknown_backbone_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="resnet18"):
        ModelConfig(backbone="vgg16")


def test_config_json_round_trip():
    config = ModelConfig(backbone="resnet50", output_stride=16, patch_cells=4, pivot=False)
    assert ModelConfig.from_json(config.to_json()) == config
    loss = LossConfig(contour_mode="drop", max_negatives=None)
    assert LossConfig.from_json(loss.to_json()) == loss
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"backbone": "resnet18", "bakbone": "x"})
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(backbone="vgg16")


def test_noise_stem_sees_residuals_and_keeps_bayars_constraint(tmp_path):
    from ncl_core.models.modelfile import load_model, save_model

    from tiny import TINY_CONFIG

    torch.manual_seed(0)
    model = NCLNet(ModelConfig(**{**TINY_CONFIG, "noise_stem": True}))
    stem = model.noise_stem
    # A flat image has no high-frequency content: every residual channel is zero inside.
    flat = torch.full((1, 3, 32, 32), 0.3)
    out = stem(flat)
    assert out.shape == (1, 9, 32, 32)
    assert torch.allclose(out[:, 3:, 4:-4, 4:-4], torch.zeros(1, 6, 24, 24), atol=1e-5)
    # One step of training breaks the constraint, apply_constraints restores it.
    images, masks = torch.randn(2, 3, 64, 64), torch.zeros(2, 1, 64, 64)
    masks[:, :, 8:40, 8:40] = 1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    total_loss(model(images, masks), masks, LossConfig(max_negatives=8))["total"].backward()
    optimizer.step()
    from ncl_core.network.model import apply_constraints

    apply_constraints(model)
    w = stem.bayar.weight
    assert torch.allclose(w[:, :, 2, 2], torch.full((3, 3), -1.0))
    assert torch.allclose(w.sum(dim=(2, 3)), torch.zeros(3, 3), atol=1e-5)  # rest sums to 1
    # The fixed SRM filters are saved with the model and come back unchanged.
    path = save_model(tmp_path / "stem.safetensors", model)
    loaded, info = load_model(path)
    assert info.config.noise_stem and torch.equal(loaded.noise_stem.srm, stem.srm)
    assert loaded(torch.randn(1, 3, 40, 56)).shape == (1, 1, 40, 56)


def test_pc_loss_options_weight_manipulated_pixels():
    from ncl_core.network.losses import pc_stage_losses

    logits = [torch.zeros(1, 1, 16, 16)]
    masks = torch.zeros(1, 1, 16, 16)
    masks[..., :4, :4] = 1
    labels = torch.zeros(1, 1, 1, dtype=torch.long)
    plain = pc_stage_losses(logits, masks, labels, mu=0.0)[0]
    weighted = pc_stage_losses(logits, masks, labels, mu=0.0, pos_weight=5.0)[0]
    dice = pc_stage_losses(logits, masks, labels, mu=0.0, dice=1.0)[0]
    # Uniform 0.5 predictions: BCE ln 2 everywhere; weighting scales the 1/16 manipulated part.
    assert plain.item() == pytest.approx(0.6931, abs=1e-4)
    assert weighted.item() == pytest.approx(0.6931 * (1 + 4 / 16), abs=1e-4)
    assert dice.item() > plain.item()
