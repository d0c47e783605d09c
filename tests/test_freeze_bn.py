"""Fine-tuning with frozen batch norms: the running statistics stay the model's, the rest learns."""

import pytest
import torch

from ncl_core.models.modelfile import load_model
from ncl_core.training import TrainConfig, Trainer
from ncl_core.training.keeping import validate
from ncl_core.training.run_data import build_datasets, scan_sources
from ncl_core.training.steps import evaluating, train_mode

from tiny import tiny_train_config

STATISTICS = ("running_mean", "running_var")


def _tensors(model, statistics: bool) -> dict[str, torch.Tensor]:
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if v.is_floating_point() and k.endswith(STATISTICS) == statistics
    }


def test_train_mode_leaves_only_the_batch_norms_in_eval_mode():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5)
    )
    train_mode(model, freeze_bn=True)
    assert [m.training for m in model] == [True, False, True]
    train_mode(model, freeze_bn=False)
    assert all(m.training for m in model)


def test_evaluating_gives_every_layer_back_its_mode_also_after_an_error():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    train_mode(model, freeze_bn=True)
    with pytest.raises(RuntimeError), evaluating(model):
        assert not any(m.training for m in model.modules())
        raise RuntimeError("a failed forward")
    assert [m.training for m in model.modules()] == [True, True, False]


def test_validation_gives_every_layer_back_its_mode(tiny_dataset, tiny_model_path):
    cfg = TrainConfig(data=(str(tiny_dataset),), size=64, workers=0, val_fraction=0.25)
    data = build_datasets(cfg, scan_sources(cfg))
    model, _ = load_model(tiny_model_path)
    train_mode(model, freeze_bn=True)
    before = [m.training for m in model.modules()]
    validate(model, data.val, torch.device("cpu"), None, 0)
    assert [m.training for m in model.modules()] == before
    assert any(before) and not all(before)


@pytest.mark.parametrize("freeze", [False, True])
def test_finetuning_keeps_the_statistics_only_when_frozen(
    tmp_path, tiny_dataset, tiny_model_path, freeze
):
    base, _ = load_model(tiny_model_path)
    cfg = tiny_train_config(
        tmp_path, tiny_dataset, base_model=str(tiny_model_path), steps=3, freeze_bn=freeze
    )
    tuned, _ = load_model(Trainer(cfg, lambda event: None).fit())
    before, after = _tensors(base, statistics=True), _tensors(tuned, statistics=True)
    assert before and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before) == freeze
    # The rest learns either way, the batch norms' scale and shift among it.
    w0, w1 = _tensors(base, statistics=False), _tensors(tuned, statistics=False)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k.endswith("bn1.weight"))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if ".conv" in k)


def test_a_frozen_backbone_stays_bit_for_bit_while_the_decoder_learns(
    tmp_path, tiny_dataset, tiny_model_path
):
    base, _ = load_model(tiny_model_path)
    cfg = tiny_train_config(
        tmp_path, tiny_dataset, base_model=str(tiny_model_path), steps=3, freeze_backbone=True
    )
    tuned, _ = load_model(Trainer(cfg, lambda event: None).fit())
    before, after = base.state_dict(), tuned.state_dict()
    backbone = [k for k in before if k.startswith("backbone.") and before[k].is_floating_point()]
    rest = [k for k in before if not k.startswith("backbone.") and before[k].is_floating_point()]
    assert backbone and rest
    assert all(torch.equal(before[k], after[k]) for k in backbone)  # statistics included
    assert any(not torch.equal(before[k], after[k]) for k in rest if k.endswith(".weight"))


def test_train_mode_with_a_frozen_backbone_and_the_config_that_refuses_it_from_scratch(
    tiny_model_path,
):
    model, _ = load_model(tiny_model_path)
    train_mode(model, freeze_backbone=True)
    assert not any(m.training for m in model.backbone.modules())
    assert all(m.training for name, m in model.named_children() if name != "backbone")
    with pytest.raises(ValueError, match="freeze_backbone"):
        TrainConfig(synthetic="photos", freeze_backbone=True)
