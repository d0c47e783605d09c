"""Dead decoder channels: found, revived without changing the output, and learning again."""

import pytest
import torch

from ncl_core.models.modelfile import load_model, save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig
from ncl_core.training import Trainer
from ncl_core.training.revive import STAGES, active_fractions, dead_channels, revive_dead_channels

from tiny import TINY_CONFIG, tiny_train_config


def _model_with_dead_channels(seed=0):
    """A tiny network whose ``stage4`` channels 0-2 and ``stage3`` channel 5 never fire, as
    training at a high decoder learning rate leaves them: a batch norm shift far below zero."""
    torch.manual_seed(seed)
    model = NCLNet(ModelConfig(**TINY_CONFIG))
    # Batch norms as after training: their running statistics are those of the images (a new
    # network's 0 and 1 would leave channels silent by chance).
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = 1.0
    with torch.no_grad():
        model(_probe(seed=9), None)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = 0.1
    model.eval()
    with torch.no_grad():
        model.stage4[1].bias[:3] = -1e3
        model.stage3[1].bias[5] = -1e3
        model.head4.weight[0, :3] = 0.5  # channels the head would weigh positively
    return model


def _probe(n=4, side=64, seed=1):
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_dead_channels_are_found_and_only_those():
    model = _model_with_dead_channels()
    dead = dead_channels(model, _probe())
    assert dead["stage4"].tolist() == [0, 1, 2]
    assert dead["stage3"].tolist() == [5]
    assert dead["stage3_reduce"].tolist() == []


def test_revival_keeps_the_output_and_the_channels_fire_again():
    model = _model_with_dead_channels()
    images, other = _probe(), _probe(seed=2)  # the output is kept on images not probed too
    with torch.no_grad():
        before = [model(images), model(other)]
    counts = revive_dead_channels(model, images, seed=3)
    assert counts == {"stage3_reduce": (0, 32), "stage3": (1, 32), "stage4": (3, 16)}
    with torch.no_grad():
        after = [model(images), model(other)]
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    active = active_fractions(model, images)
    # Centred on the probe: each revived channel is active on a good part of the pixels.
    assert ((active["stage4"][:3] > 0.2) & (active["stage4"][:3] < 0.8)).all()
    assert 0.2 < active["stage3"][5] < 0.8
    assert not any(len(v) for v in dead_channels(model, images).values())
    # Its readers do not see it yet: what keeps the output.
    assert (model.head4.weight[0, :3] == 0).all()
    assert (model.stage4[0].weight[:, 5] == 0).all() and model.head3.weight[0, 5] == 0


def test_a_revived_channel_learns_where_a_dead_one_cannot():
    images = _probe()
    grads = {}
    for revive in (False, True):
        model = _model_with_dead_channels()
        if revive:
            revive_dead_channels(model, images)
        model.train()
        model(images, None)["logits"].mean().backward()
        grads[revive] = model.head4.weight.grad[0, :3].abs().sum().item()
    assert grads[False] == 0.0  # no gradient through a ReLU that never fires
    assert grads[True] > 0.0


def test_the_same_probe_and_seed_revive_alike():
    a, b = _model_with_dead_channels(), _model_with_dead_channels()
    revive_dead_channels(a, _probe(), seed=4)
    revive_dead_channels(b, _probe(), seed=4)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_stages_name_real_layers():
    model = NCLNet(ModelConfig(**TINY_CONFIG))
    for stage in STAGES:
        block = model.get_submodule(stage.block)
        for reader in stage.readers:
            assert model.get_submodule(reader).in_channels == block[0].out_channels


@pytest.mark.parametrize("revive", [False, True])
def test_finetune_revives_at_the_start_only_when_asked(tmp_path, tiny_dataset, revive):
    base = tmp_path / "base.safetensors"
    save_model(base, _model_with_dead_channels(), name="dying")
    events = []
    cfg = tiny_train_config(
        tmp_path, tiny_dataset, base_model=str(base), steps=1, revive_dead=revive
    )
    path = Trainer(cfg, events.append).fit()
    logs = [e["message"] for e in events if e["type"] == "log"]
    said = [m for m in logs if m.startswith("dead decoder channels revived")]
    assert bool(said) == revive
    if revive:
        assert "stage4 3 of 16" in said[0] and "stage3 1 of 32" in said[0]
    trained, _ = load_model(path)
    probe = _probe()
    still_dead = dead_channels(trained, probe)["stage4"].tolist()
    assert (still_dead == []) == revive


def test_a_new_network_is_not_revived(tmp_path, tiny_dataset):
    events = []
    cfg = tiny_train_config(tmp_path, tiny_dataset, steps=1, revive_dead=True)
    Trainer(cfg, events.append).fit()
    logs = [(e["level"], e["message"]) for e in events if e["type"] == "log"]
    assert ("warning", "--revive-dead has no effect on a new network") in logs
    assert not any(m.startswith("dead decoder channels revived") for _, m in logs)
