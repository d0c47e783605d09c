"""The self-supervised stage (ncl_core/training/chains.py, pretrain.py, ``ncl-forensics pretrain``):
processing chains, the views, the loss, the encoder file, resuming, and a network started from
it. Tiny crops and a few steps; what is checked is behaviour, not how well it learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ncl_core.cli import main
from ncl_core.errors import ModelFileError
from ncl_core.models.modelfile import load_model, read_model_info, save_model
from ncl_core.network.net_config import ModelConfig
from ncl_core.training.chains import Chain, ChainViews, chain_pair, random_chain
from ncl_core.training.pretrain import (
    ENCODER_PREFIXES,
    LOG_NAME,
    Pretrainer,
    chain_loss,
    network_from_encoder,
    read_encoder,
)
from ncl_core.training.pretrain_config import PretrainConfig
from ncl_core.training.run_setup import initial_model

from imaging import pattern, save
from tiny import TINY_CONFIG, tiny_train_config


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(4):
        save(folder / f"p{i}.jpg", pattern(160, 224, seed=i), quality=95)
    save(folder / "small.png", pattern(70, 90, seed=9))  # smaller than a region: scaled up
    return folder


def _config(tmp_path: Path, photos: Path, **overrides) -> PretrainConfig:
    settings = dict(
        photos=(str(photos),),
        out=str(tmp_path / "encoder.safetensors"),
        run_dir=str(tmp_path / "run"),
        model=ModelConfig(**TINY_CONFIG),
        crop=64,
        batch_size=2,
        steps=2,
        workers=0,
        amp=False,
        log_every=1,
        checkpoint_every=1,
    )
    settings.update(overrides)
    return PretrainConfig(**settings)


def test_chains_apply_deterministically_and_pairs_differ() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        first, second = chain_pair(rng)
        assert first.differs_from(second) and second.differs_from(first)
    chains = [random_chain(rng) for _ in range(400)]
    assert 0.4 < np.mean([c.scale != 1.0 for c in chains]) < 0.8
    assert 0.7 < np.mean([bool(c.qualities) for c in chains]) < 0.9
    image = pattern(96, 128, seed=1)
    chain = Chain(scale=0.5, qualities=(70, 90), chroma="420", blur=3, noise=2.0)
    out = chain.apply(image, seed=5)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out, chain.apply(image, seed=5))
    assert not np.array_equal(Chain(qualities=(60,)).apply(image, 0), image)
    assert np.array_equal(Chain().apply(image, 0), image)  # the empty chain changes nothing
    assert not Chain(qualities=(90,)).differs_from(Chain(qualities=(92,)))
    assert Chain(qualities=(90,)).differs_from(Chain(qualities=(90,), chroma="444"))


def test_views_are_three_crops_the_same_for_the_same_seed(photos: Path) -> None:
    paths = sorted(photos.iterdir())
    views = ChainViews(paths, crop=64, length=10, seed=3)
    items = [views[i] for i in range(len(views))]
    for item in items:
        assert item.shape == (3, 3, 64, 64) and torch.isfinite(item).all()
        assert not torch.equal(item[0], item[1])  # two places of the region
    assert torch.equal(views[4], items[4])
    assert not torch.equal(ChainViews(paths, 64, 10, seed=4)[4], items[4])
    # An offset is the same run further on: what a resumed run sees.
    assert torch.equal(ChainViews(paths, 64, 6, seed=3, offset=4)[0], items[4])


@pytest.mark.parametrize("scales", [(1.0, 1.0), (0.6, 1.0), (1.0, 0.55)])
def test_the_other_chains_crop_shows_what_the_first_shows(photos, monkeypatch, scales) -> None:
    from ncl_core.training import chains

    first, second = Chain(scale=scales[0]), Chain(scale=scales[1], qualities=(95,))
    monkeypatch.setattr(chains, "chain_pair", lambda rng: (first, second))
    views = ChainViews(sorted(photos.iterdir()), crop=64, length=6, seed=1)
    for item in views:
        # The same content: nearer to crop 0 than crop 1 (another place) is, by far.
        same_place = (item[2] - item[0]).abs().mean()
        assert same_place < 0.5 * (item[1] - item[0]).abs().mean(), same_place
        if scales[0] == scales[1]:
            assert same_place < 0.1  # only the JPEG differs


def test_the_loss_rewards_pairs_and_punishes_the_other_chain() -> None:
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    other = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    good, stats = chain_loss(a, a.clone(), other, tau=0.1)
    assert stats == {"pair_accuracy": 1.0, "beats_other_chain": 1.0}
    # The pair drawn apart and the other chain's crop put where the pair should be.
    bad, stats = chain_loss(a, other, a.clone(), tau=0.1)
    assert stats["beats_other_chain"] == 0.0 and bad > good + 5
    # The duel term alone: what the pair-against-the-other-chain choice adds.
    plain, _ = chain_loss(a, other, a.clone(), tau=0.1, hard_weight=0.0)
    assert bad - plain > 3
    z = torch.randn(24, 16, requires_grad=True)
    loss, _ = chain_loss(*torch.nn.functional.normalize(z, dim=1).split(8), tau=0.1)
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_an_encoder_file_starts_a_network_and_is_no_model(tmp_path: Path, photos: Path) -> None:
    lines: list[str] = []
    path = Pretrainer(_config(tmp_path, photos), lines.append).fit()
    assert path is not None and path.is_file()
    assert any("encoder written" in line for line in lines)
    config, tensors, summary = read_encoder(path)
    assert config.backbone == "resnet18" and summary["steps"] == 2 and summary["photos"] == 5
    assert tensors and all(k.startswith(ENCODER_PREFIXES) for k in tensors)
    assert any(k.startswith("aspp.") for k in tensors)
    # The model loaders say what it is and what to do with it.
    for load in (load_model, read_model_info):
        with pytest.raises(ModelFileError, match="pretrain.*init-encoder"):
            load(path)
    # A network started from it: the encoder's weights and settings, a new decoder.
    asked = ModelConfig(backbone="resnet50", output_stride=8)
    net = network_from_encoder(path, asked, seed=0)
    assert net.config.backbone == "resnet18" and net.config.output_stride == 16
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in tensors.items())
    fresh = network_from_encoder(path, asked, seed=0).state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in state.items())  # the decoder by the seed
    # train --init-encoder: the run's config takes the encoder's network settings.
    cfg = tiny_train_config(tmp_path, photos, init_encoder=str(path))
    model, parent = initial_model(cfg)
    assert parent is None and cfg.model == model.config
    assert torch.equal(
        model.state_dict()["backbone.conv1.weight"], tensors["backbone.conv1.weight"]
    )
    save_model(tmp_path / "model.safetensors", model)
    with pytest.raises(ModelFileError, match="not an encoder.*finetune --model"):
        read_encoder(tmp_path / "model.safetensors")
    with pytest.raises(ModelFileError, match="cannot be read as an encoder"):
        read_encoder(tmp_path / "run" / "pretrain-checkpoint.pt")


def test_a_cancelled_run_resumes_where_it_stopped(tmp_path: Path, photos: Path) -> None:
    config = _config(tmp_path, photos, steps=4)
    trainer = Pretrainer(config, lambda line: trainer.cancel() if "step 2/" in line else None)
    assert trainer.fit() is None  # cancelled: no encoder, a checkpoint
    assert not Path(config.out).exists()
    resumed = Pretrainer.resume(config.run_dir, lambda line: None)
    path = resumed.fit()
    assert path is not None and read_encoder(path)[2]["steps"] == 4
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / LOG_NAME).open()]
    assert steps == [1, 2, 3, 4]


def test_the_command_checks_before_it_loads(tmp_path: Path, photos: Path, capsys) -> None:
    out = str(tmp_path / "e.safetensors")
    assert main(["pretrain", "--photos", str(tmp_path / "none"), "--out", out]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["pretrain", "--photos", str(photos), "--out", out, "--batch-size", "1"]) == 2
    assert "batch_size must be at least 2" in capsys.readouterr().err
    assert main(["pretrain", "--photos", str(photos), "--out", out, "--crop", "100"]) == 2
    assert main(["pretrain", "--photos", str(photos)]) == 2
    assert main(["pretrain", "--resume", str(tmp_path / "no-run")]) == 2
    assert main(["pretrain", "--photos", str(photos), "--out", out, "--more-time", "5"]) == 2
    capsys.readouterr()
    missing = str(tmp_path / "missing.safetensors")
    assert main(["train", "--synthetic", str(photos), "--init-encoder", missing]) == 2
    assert "no such encoder file" in capsys.readouterr().err
    assert not Path(out).exists()


def test_the_command_writes_an_encoder(tmp_path: Path, photos: Path) -> None:
    out = tmp_path / "enc.safetensors"
    argv = ["pretrain", "--photos", str(photos), "--out", str(out), "--crop", "64"]
    argv += ["--batch-size", "2", "--steps", "1", "--workers", "0", "--no-amp"]
    assert main(argv) == 0
    assert read_encoder(out)[2]["steps"] == 1
    assert (tmp_path / "enc-run" / "pretrain-checkpoint.pt").is_file()
