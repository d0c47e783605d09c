"""The CPU's inference copy of the network: BatchNorm folded, channels-last, bf16 where native.

Behaviour only: the same function as the trained model (fp32 to rounding, bf16 close), the
same map whatever the tile batch, and the precision used recorded with the result.
"""

import numpy as np
import pytest
import torch
from torch import nn

from ncl_core.inference.predictor import InferenceSettings, Predictor, fold_batchnorm

from imaging import pattern
from tiny import TINY_CONFIG


def _model_with_real_statistics(seed: int = 0):
    """The tiny network with BatchNorm statistics and affine terms far from the identity, so
    that folding them is tested on more than a no-op."""
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(seed)
    model = NCLNet(ModelConfig(**TINY_CONFIG)).eval()
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model


@pytest.fixture(scope="module")
def varied_predictor(tmp_path_factory):
    from ncl_core.models.modelfile import save_model

    path = tmp_path_factory.mktemp("models") / "varied.safetensors"
    save_model(path, _model_with_real_statistics(), name="varied")
    return Predictor.load(path, device="cpu")


def test_folding_batchnorm_keeps_the_function():
    model = _model_with_real_statistics()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    # The model itself is left as it was (its BatchNorms are still there).
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    images = torch.randn(2, 3, 96, 80)
    with torch.inference_mode():
        expected, got = model(images), folded(images)
    assert torch.allclose(expected, got, atol=1e-4, rtol=1e-4)


def test_fp32_map_matches_the_unfolded_model(varied_predictor):
    from ncl_core.data.transforms import to_tensor

    image = pattern(96, 128, seed=1)
    result = varied_predictor.analyze(
        image, settings=InferenceSettings(mode="tiled", tile=64, precision="fp32")
    )
    assert result.settings["precision"] == "fp32"
    # One whole-image pass of the model as loaded, in fp32, against one of the fast copy.
    with torch.inference_mode():
        logits = varied_predictor.model(to_tensor(image)[None])
    plain = torch.sigmoid(logits - varied_predictor.logit_shift)[0, 0].numpy()
    fast = varied_predictor._predict(to_tensor(image)[None], "fp32")[0]
    assert np.abs(plain - fast).max() < 1e-5


def test_bf16_map_is_close_to_fp32(varied_predictor):
    image = pattern(160, 200, seed=2)
    for mode in ("resize", "tiled"):
        common = dict(mode=mode, input_size=96, tile=64, overlap=32)
        fp32 = varied_predictor.analyze(image, settings=InferenceSettings(**common))
        bf16 = varied_predictor.analyze(
            image, settings=InferenceSettings(**common, precision="bf16")
        )
        assert bf16.settings["precision"] == "bf16"
        diff = np.abs(fp32.probability - bf16.probability)
        assert diff.max() < 0.03 and diff.mean() < 0.005, mode
        assert fp32.probability.std() > 10 * diff.mean()  # a map that varies, not a constant


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tiles_batched_give_the_map_of_one_at_a_time(varied_predictor, precision):
    image = pattern(150, 170, seed=4)
    maps = [
        varied_predictor.analyze(
            image,
            settings=InferenceSettings(
                mode="tiled", tile=64, overlap=32, tile_batch=batch, precision=precision
            ),
        ).probability
        for batch in (1, 5, 64)
    ]
    tolerance = 1e-5 if precision == "fp32" else 2e-2
    for other in maps[1:]:
        assert np.abs(other - maps[0]).max() <= tolerance


def test_auto_precision_follows_the_cpu(varied_predictor, monkeypatch):
    image = pattern(40, 50)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(varied_predictor, "_cpu_bf16", native)
        result = varied_predictor.analyze(image, settings=InferenceSettings(mode="resize"))
        assert result.settings["precision"] == expected
    fp32 = InferenceSettings(mode="resize", precision="fp32")
    monkeypatch.setattr(varied_predictor, "_cpu_bf16", True)
    assert varied_predictor.analyze(image, settings=fp32).settings["precision"] == "fp32"


def test_precision_and_tile_batch_are_validated():
    with pytest.raises(ValueError, match="precision"):
        InferenceSettings(precision="int8")
    with pytest.raises(ValueError, match="tile_batch"):
        InferenceSettings(tile_batch=0)
