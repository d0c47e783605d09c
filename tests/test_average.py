"""Averaging the weights of several models (ncl_core/models/average.py, ``ncl-forensics average``)."""

import pytest
import torch

from ncl_core.cli import main
from ncl_core.errors import ModelFileError
from ncl_core.models.average import average_models, ingredient_weights, save_average
from ncl_core.models.modelfile import load_model, read_model_info, save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig

from tiny import NARROW_CONFIG


def _models(tmp_path, seeds, config=NARROW_CONFIG, stem="m"):
    paths = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = NCLNet(ModelConfig(**config))
        # Batch-norm statistics of their own, as trained models have.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked.fill_(seed + 1)
        path = tmp_path / f"{stem}{seed}.safetensors"
        save_model(path, model, name=f"{stem}{seed}", trained_on={"seed": seed})
        paths.append(path)
    return paths


def _state(path):
    return load_model(path, "cpu")[0].state_dict()


def test_the_average_is_the_weighted_mean_of_every_float_tensor(tmp_path):
    paths = _models(tmp_path, (1, 2, 3))
    states = [_state(p) for p in paths]
    model, infos, shares = average_models(paths, [1, 1, 2])
    assert shares == [0.25, 0.25, 0.5]
    assert [i.name for i in infos] == ["m1", "m2", "m3"]
    averaged = model.state_dict()
    floats = [k for k, v in averaged.items() if v.is_floating_point()]
    assert any("running_var" in k for k in floats)
    for key in floats:
        expected = 0.25 * states[0][key] + 0.25 * states[1][key] + 0.5 * states[2][key]
        torch.testing.assert_close(averaged[key], expected, rtol=1e-5, atol=1e-6)
    counters = [k for k, v in averaged.items() if not v.is_floating_point()]
    assert counters and all(torch.equal(averaged[k], states[0][k]) for k in counters)
    assert not model.training


def test_the_average_of_copies_is_the_model_itself(tmp_path):
    (path,) = _models(tmp_path, (4,))
    model, _, _ = average_models([path, path])
    original = _state(path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, original[key], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "n, weights, message",
    [
        (1, None, "two models or more"),
        (2, [1.0], "one weight per model"),
        (2, [1.0, -1.0], "not negative"),
        (2, [1.0, float("nan")], "finite"),
        (2, [0.0, 0.0], "not all be zero"),
    ],
)
def test_bad_weights_are_refused(n, weights, message):
    with pytest.raises(ValueError, match=message):
        ingredient_weights(n, weights)


def test_another_architecture_is_refused_naming_the_file(tmp_path):
    narrow = _models(tmp_path, (1,))
    wider = _models(tmp_path, (2,), config={**NARROW_CONFIG, "decoder_channels": 24}, stem="w")
    with pytest.raises(ModelFileError, match=r"w2\.safetensors.*decoder_channels"):
        average_models(narrow + wider)


def test_the_file_says_what_it_is_made_of_and_is_not_calibrated(tmp_path):
    paths = _models(tmp_path, (1, 2))
    out = save_average(tmp_path / "soup.safetensors", paths, [3, 1], half=True)
    info = read_model_info(out)
    made_of = info.trained_on["average_of"]
    assert [m["name"] for m in made_of] == ["m1", "m2"]
    assert [m["weight"] for m in made_of] == [0.75, 0.25]
    assert [m["sha256"] for m in made_of] == [read_model_info(p).sha256 for p in paths]
    assert made_of[0]["trained_on"] == {"seed": 1}
    assert info.parent == read_model_info(paths[0]).sha256
    assert info.inference == {} and info.metrics == {}
    load_model(out, "cpu")  # a model like any other


def test_the_command_checks_before_loading_and_writes_a_model(tmp_path, capsys):
    paths = [str(p) for p in _models(tmp_path, (1, 2))]
    out = tmp_path / "avg.safetensors"
    assert main(["average", paths[0], "--out", str(out)]) == 2
    assert "two models or more" in capsys.readouterr().err
    assert main(["average", *paths, "--out", str(tmp_path / "avg.pt")]) == 2
    assert main(["average", *paths, "--weights", "1", "--out", str(out)]) == 2
    assert main(["average", paths[0], str(tmp_path / "nope.safetensors"), "--out", str(out)]) == 2
    assert "nope.safetensors" in capsys.readouterr().err
    assert main(["average", *paths, "--out", paths[0]]) == 2
    assert not out.exists()
    assert main(["average", *paths, "--out", str(out), "--name", "soup"]) == 0
    assert "calibrate" in capsys.readouterr().err
    assert read_model_info(out).name == "soup"
