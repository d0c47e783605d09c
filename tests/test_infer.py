from dataclasses import replace

import numpy as np
import pytest
import torch

from ncl_core.data.io import ImageReadError
from ncl_core.inference.predictor import (
    Cancelled,
    InferenceSettings,
    Predictor,
    blend_window,
    image_score,
    tile_starts,
)

from imaging import pattern, save

# Resize mode at 64 px keeps these tests fast; the 512 px default is exercised once below.
SMALL = InferenceSettings(mode="resize", input_size=64)


@pytest.fixture(scope="module")
def predictor(tiny_model_path):
    return Predictor.load(tiny_model_path, device="cpu")


def test_analysis_has_the_contract_fields(predictor, tmp_path):
    path = save(tmp_path / "a.jpg", pattern(70, 90))
    result = predictor.analyze(path).at(0.3)
    assert result.probability.shape == (70, 90) and result.probability.dtype == np.float32
    assert result.mask.dtype == bool and np.array_equal(result.mask, result.probability >= 0.3)
    assert 0.0 <= result.score <= 1.0 and 0.0 <= result.area_fraction <= 1.0
    import hashlib

    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.model_sha256 == predictor.model_sha256 and result.device == "cpu"
    assert result.image_format == "JPEG" and result.settings["mode"] == "resize"
    # Seen at another threshold, the record names that one, and only that one; the map is
    # shared, not computed or copied again.
    other = result.at(0.7)
    summary = other.summary()
    assert summary["threshold"] == 0.7 and "threshold" not in summary["settings"]
    assert other.probability is result.probability and result.threshold == 0.3
    assert summary["area_fraction"] == pytest.approx(float((result.probability >= 0.7).mean()))
    assert predictor.analyze(path).threshold == 0.5  # the default, where calibration puts it


def test_tiled_and_resize_agree_when_neither_resamples(predictor):
    # A 128 px image: resize mode at input size 128 is the identity, and one 512 px tile
    # covers it, so both modes must run the network on the same pixels.
    image = pattern(128, 128)
    resized = predictor.analyze(image, settings=InferenceSettings(mode="resize", input_size=128))
    tiled = predictor.analyze(image, InferenceSettings(mode="tiled"))
    assert np.allclose(resized.probability, tiled.probability, atol=1e-6)


def test_tiled_blend_of_identical_tiles_is_seamless(predictor):
    # A constant image: every tile sees the same content, so blending must not create seams
    # at tile borders beyond what the network itself does near image borders.
    image = np.full((192, 192, 3), 128, np.uint8)
    single = predictor.analyze(image[:64, :64], InferenceSettings(mode="tiled")).probability
    tiled = predictor.analyze(
        image, settings=InferenceSettings(mode="tiled", tile=64, overlap=0)
    ).probability
    assert np.allclose(tiled[64:128, 64:128], single, atol=1e-5)


def test_tiles_blend_back_to_the_network_output_on_overlaps(predictor):
    image = pattern(160, 200, seed=3)
    settings = InferenceSettings(mode="tiled", tile=96, overlap=32)
    result = predictor.analyze(image, settings=settings)
    assert result.probability.shape == (160, 200)
    assert np.isfinite(result.probability).all()
    # Every pixel is a convex combination of the tiles' predictions: bounded by them.
    assert result.probability.min() >= 0 and result.probability.max() <= 1


def test_tile_geometry():
    assert tile_starts(100, 512, 128) == [0]
    starts = tile_starts(1000, 512, 128)
    assert starts[0] == 0 and starts[-1] == 1000 - 512
    assert all(b - a <= 512 - 128 for a, b in zip(starts, starts[1:]))
    window = blend_window(8)
    assert window.shape == (8, 8) and window.min() > 0 and np.allclose(window, window.T)


def test_overlapping_tiles_cross_fade_to_one():
    # Where two tiles overlap their weights sum to 1, and inside a tile the weight is 1: a
    # constant map stays constant and no seam is drawn at a tile edge.
    ramp = blend_window(64, 16)[32]
    assert np.allclose(ramp[16:48], 1.0)
    assert np.allclose(ramp[48:] + ramp[:16], 1.0, atol=1e-3)


def test_auto_mode_follows_the_model_file(tiny_model_path, tmp_path):
    from ncl_core.models.modelfile import export_half

    plain = Predictor.load(tiny_model_path, device="cpu")
    assert plain.default_mode == "resize"
    assert plain.analyze(pattern(40, 50)).settings["mode"] == "resize"
    tiled_file = export_half(
        tiny_model_path, tmp_path / "tiled.safetensors", {"mode": "tiled", "tile": 96}
    )
    tiled = Predictor.load(tiled_file, device="cpu")
    result = tiled.analyze(pattern(100, 150))
    assert result.settings["mode"] == "tiled" and result.settings["tile"] == 96
    # An explicit choice still wins over the model's default.
    assert tiled.analyze(pattern(40, 50), settings=SMALL).settings["mode"] == "resize"


def test_tiled_mode_reports_progress_and_cancels(predictor):
    image = pattern(200, 200)
    seen = []
    settings = InferenceSettings(mode="tiled", tile=64, overlap=16, tile_batch=2)
    predictor.analyze(image, settings=settings, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 2
    with pytest.raises(Cancelled):
        predictor.analyze(image, settings=settings, cancel=lambda: True)


def test_tiny_and_odd_sizes(predictor):
    for shape in ((1, 1), (3, 200), (33, 17)):
        for settings in (SMALL, InferenceSettings(mode="tiled", tile=64, overlap=16)):
            result = predictor.analyze(pattern(*shape), settings=settings)
            assert result.probability.shape == shape


def test_image_score_ignores_one_hot_pixel_and_sees_a_region():
    prob = np.zeros((100, 100), np.float32)
    prob[0, 0] = 1.0
    assert image_score(prob) < 0.05
    prob[:20, :20] = 0.9
    assert image_score(prob) == pytest.approx(0.9, abs=0.02)


def test_analyze_many_keeps_order_and_reports_errors(predictor, tmp_path):
    good = [save(tmp_path / f"{i}.png", pattern(40, 50, seed=i)) for i in range(3)]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    missing = tmp_path / "missing.png"
    paths = [good[0], bad, good[1], missing, good[2]]
    results = list(predictor.analyze_many(paths, settings=SMALL))
    assert [r.source for r in results] == [str(p) for p in paths]
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert "broken.jpg" in results[1].message
    assert results[1].sha256 is not None and results[3].sha256 is None
    # Same numbers as one-by-one analysis.
    single = predictor.analyze(good[1], settings=SMALL)
    assert np.allclose(results[2].probability, single.probability)


def test_bad_file_raises_a_named_error(predictor, tmp_path):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        predictor.analyze(bad)


def test_settings_are_validated(tiny_model_path):
    with pytest.raises(ValueError, match="mode"):
        InferenceSettings(mode="fast")
    with pytest.raises(TypeError):
        InferenceSettings(threshold=0.5)  # not an input of the network: Analysis.at
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="threshold"):
        Predictor.load(tiny_model_path, device="cpu").analyze(image).at(2)


@pytest.fixture(scope="module")
def varied_predictor(tmp_path_factory):
    """An untrained model whose map varies over the image: its batch-norm statistics taken
    from a few random batches (the fresh ones make every map a constant)."""
    import torch

    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    from tiny import TINY_CONFIG

    torch.manual_seed(0)
    net = NCLNet(ModelConfig(**TINY_CONFIG))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average of the batches
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(2, 3, 64, 64))
    path = save_model(tmp_path_factory.mktemp("varied") / "varied.safetensors", net.eval())
    return Predictor.load(path, device="cpu")


def test_fused_sizes_average_the_maps_and_keep_the_first_sizes_score(varied_predictor):
    predictor = varied_predictor
    image = pattern(70, 90)
    one = predictor.analyze(image, settings=SMALL)
    other = predictor.analyze(image, settings=InferenceSettings(mode="resize", input_size=96))
    fused = predictor.analyze(
        image, settings=InferenceSettings(mode="resize", input_size=64, fuse_sizes=(96,))
    )
    np.testing.assert_allclose(
        fused.probability, (one.probability + other.probability) / 2, atol=1e-6
    )
    assert one.probability.std() > 0.01 and np.abs(one.probability - other.probability).max() > 0.01
    assert fused.score == one.score and image_score(fused.probability) != one.score
    assert fused.settings["fuse_sizes"] == [96] and one.settings["fuse_sizes"] == []
    with pytest.raises(ValueError, match="fuse sizes"):
        InferenceSettings(fuse_sizes=(8,))


def test_margin_frames_the_image_by_its_reflection(varied_predictor, monkeypatch):
    """With a margin the network sees the resized image inside its own mirror image (so its
    border is seen with content around it, not zero padding) and only the image's part of
    the map comes back; without one, the resized image alone."""
    predictor = varied_predictor
    image = pattern(70, 90)
    seen = []
    predict = predictor._predict

    def spy(batch, precision="fp32"):
        seen.append(batch[0].clone())
        return predict(batch, precision)

    monkeypatch.setattr(predictor, "_predict", spy)
    plain = predictor.analyze(image, settings=SMALL)
    framed = predictor.analyze(image, settings=replace(SMALL, margin=0.25))
    inner, outer = seen
    assert inner.shape[-2:] == (64, 64) and outer.shape[-2:] == (96, 96)  # 16 px each edge
    torch.testing.assert_close(outer[:, 16:-16, 16:-16], inner)
    torch.testing.assert_close(outer[:, :16, 16:-16], outer[:, 17:33, 16:-16].flip(-2))
    assert framed.probability.shape == plain.probability.shape == (70, 90)
    assert np.abs(framed.probability - plain.probability).max() > 1e-3
    assert framed.settings["margin"] == 0.25 and plain.settings["margin"] == 0.0
    with pytest.raises(ValueError, match="margin"):
        InferenceSettings(margin=0.9)


def test_fused_sizes_follow_the_model_file_unless_the_size_is_chosen(tiny_model_path, tmp_path):
    from ncl_core.models.modelfile import export_half

    path = export_half(
        tiny_model_path,
        tmp_path / "fused.safetensors",
        {"mode": "resize", "input_size": 64, "fuse_sizes": [96]},
    )
    fused = Predictor.load(path, device="cpu")
    image = pattern(70, 90)
    own = fused.analyze(image)
    assert own.settings["fuse_sizes"] == [96] and own.settings["input_size"] == 64
    both = fused.analyze(image, settings=InferenceSettings(mode="resize", fuse_sizes=(96,)))
    np.testing.assert_array_equal(own.probability, both.probability)
    # A size chosen by hand is that size alone, unless fused sizes are chosen too; () is none.
    assert fused.analyze(image, settings=SMALL).settings["fuse_sizes"] == []
    alone = fused.analyze(image, settings=InferenceSettings(mode="resize", fuse_sizes=()))
    np.testing.assert_array_equal(
        alone.probability, fused.analyze(image, settings=SMALL).probability
    )
    # Tiled mode analyzes at its tile size only.
    assert (
        fused.analyze(image, settings=InferenceSettings(mode="tiled")).settings["fuse_sizes"] == []
    )
