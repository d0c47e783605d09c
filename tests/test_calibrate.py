"""Calibration: the image-score threshold, the pixel threshold, and a model copy that carries
them with its default inference mode."""

from __future__ import annotations

import numpy as np
import pytest

from ncl_core.cli import EXIT_OK, main
from ncl_core.evaluation.calibrate import (
    PIXEL_THRESHOLDS,
    _f1_by_threshold,
    _flagged_by_threshold,
    pixel_threshold,
    score_threshold,
)
from ncl_core.evaluation.metrics import pixel_metrics
from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import read_model_info
from ncl_core.settings import InferenceSettings

from imaging import pattern


def test_score_threshold_separates_when_it_can():
    scores = [0.50, 0.51, 0.52, 0.53, 0.56, 0.57, 0.58]
    labels = [False, False, False, True, True, True, True]
    t, acc = score_threshold(scores, labels)
    assert 0.52 < t < 0.53 and acc == 1.0
    # Overlapping scores: the threshold still gives the best balanced accuracy there is.
    t, acc = score_threshold([0.1, 0.6, 0.4, 0.9], [False, False, True, True])
    assert acc == pytest.approx(0.75)
    with pytest.raises(ValueError, match="authentic"):
        score_threshold([0.5, 0.6], [True, True])


def test_score_threshold_can_bound_the_false_alarms():
    # Balanced accuracy alone picks 0.35 (half the authentic images flagged); at most one in
    # four flagged forces the threshold above the second-highest authentic score.
    scores = [0.1, 0.3, 0.4, 0.7, 0.35, 0.5, 0.6, 0.8]
    labels = [False, False, False, False, True, True, True, True]
    t, _ = score_threshold(scores, labels)
    assert t < 0.4
    t, acc = score_threshold(scores, labels, max_false_alarm=0.25)
    assert 0.4 < t <= 0.5 and acc == pytest.approx(0.5 * (3 / 4 + 3 / 4))
    t, _ = score_threshold(scores, labels, max_false_alarm=0.0)
    assert t > 0.7


def test_f1_by_threshold_matches_the_metrics():
    rng = np.random.default_rng(0)
    prob = rng.random((40, 50)).astype(np.float32)
    gt = rng.random((40, 50)) < 0.2
    grid = _f1_by_threshold(prob, gt)
    for k, t in enumerate(PIXEL_THRESHOLDS):
        assert grid[k] == pytest.approx(pixel_metrics(prob, gt, threshold=t).f1, abs=1e-9)


def test_pixel_threshold_keeps_authentic_images_quiet():
    # Forgeries localize best at a low threshold; the authentic maps are warm (0.2-0.6), so
    # that threshold would flag most of every authentic image. With the bound, the threshold
    # is the best F1 among those that flag at most 5 % of the median authentic image.
    rng = np.random.default_rng(1)
    gt = np.zeros((60, 60), bool)
    gt[10:40, 10:40] = True
    forged = np.where(gt, 0.3 + 0.6 * rng.random(gt.shape), 0.25 * rng.random(gt.shape))
    authentic = [0.2 + 0.4 * rng.random((60, 60)) for _ in range(5)]
    mean_f1 = _f1_by_threshold(forged.astype(np.float32), gt)
    flagged = np.array([_flagged_by_threshold(a) for a in authentic])
    loud = PIXEL_THRESHOLDS[pixel_threshold(mean_f1, flagged, None)]
    quiet = PIXEL_THRESHOLDS[pixel_threshold(mean_f1, flagged, 0.05)]
    assert loud < 0.35 < quiet
    k = PIXEL_THRESHOLDS.index(quiet)
    assert np.median(flagged[:, k]) <= 0.05 < np.median(flagged[:, k - 1])
    # No authentic images: the best F1 alone; nothing quiet enough: the highest threshold.
    assert pixel_threshold(mean_f1, None, 0.05) == int(np.argmax(mean_f1))
    assert pixel_threshold(mean_f1, np.ones_like(flagged), 0.05) == len(PIXEL_THRESHOLDS) - 1
    # The flagged share is what a mask at that threshold marks.
    for k in (0, 30, 60):
        assert flagged[0, k] == pytest.approx((authentic[0] >= PIXEL_THRESHOLDS[k]).mean())


def test_calibrate_writes_a_copy_that_carries_its_calibration(
    tmp_path, tiny_dataset, tiny_model_path, capsys
):
    out = tmp_path / "calibrated.safetensors"
    code = main(
        [
            "calibrate",
            "--model",
            str(tiny_model_path),
            "--data",
            str(tiny_dataset),
            "--mode",
            "tiled",
            "--tile",
            "64",
            "--out",
            str(out),
        ]
    )
    assert code == EXIT_OK
    assert "image score threshold" in capsys.readouterr().out
    before, after = read_model_info(tiny_model_path), read_model_info(out)
    assert before.inference == {}  # the input model is left as it was
    inference = after.inference
    assert inference["mode"] == "tiled" and inference["tile"] == 64
    assert inference["threshold"] in PIXEL_THRESHOLDS
    calibration = inference["calibration"]
    assert (calibration["n_tampered"], calibration["n_authentic"]) == (8, 2)
    assert before.validation_summary() == "not calibrated on labeled data"
    assert after.validation_summary().startswith("calibrated on 8 manipulated and 2 authentic")
    assert "floor" in after.validation_summary()
    assert 0 < calibration["at_0.5"]["floor_f1"] < 1
    # The copy analyzes in its own mode and records its calibrated score threshold.
    result = Predictor.load(out, device="cpu").analyze(pattern(70, 90))
    assert result.settings["mode"] == "tiled"
    assert result.settings["score_threshold"] == inference["score_threshold"]


def test_calibrate_refuses_to_write_into_the_data(tmp_path, tiny_dataset, tiny_model_path):
    code = main(
        [
            "calibrate",
            "--model",
            str(tiny_model_path),
            "--data",
            str(tiny_dataset),
            "--out",
            str(tiny_dataset / "m.safetensors"),
        ]
    )
    assert code != EXIT_OK and not (tiny_dataset / "m.safetensors").exists()


def test_threshold_at_half_moves_the_map_and_keeps_its_ranking(
    tmp_path, tiny_dataset, tiny_model_path
):
    out = tmp_path / "moved.safetensors"
    args = ["calibrate", "--model", str(tiny_model_path), "--data", str(tiny_dataset)]
    resize = ["--mode", "resize", "--input-size", "64"]
    assert main([*args, *resize, "--threshold-at-half", "--out", str(out)]) == EXIT_OK
    inference = read_model_info(out).inference
    shift = inference["logit_shift"]
    assert shift == inference["calibration"]["logit_shift"] and shift != 0
    image = pattern(70, 90)
    settings = InferenceSettings(mode="resize", input_size=64)
    plain = Predictor.load(tiny_model_path, device="cpu").analyze(image, settings=settings)
    moved = Predictor.load(out, device="cpu").analyze(image, settings=settings)
    p = np.clip(plain.probability.astype(np.float64), 1e-6, 1 - 1e-6)
    expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - shift)))
    np.testing.assert_allclose(moved.probability, expected, atol=2e-3)
    assert moved.settings["logit_shift"] == pytest.approx(shift)


def test_calibrate_stores_the_fused_sizes_it_calibrated(tmp_path, tiny_dataset, tiny_model_path):
    out = tmp_path / "fused.safetensors"
    args = ["calibrate", "--model", str(tiny_model_path), "--data", str(tiny_dataset)]
    resize = ["--mode", "resize", "--input-size", "64", "--fuse-sizes", "96"]
    assert main([*args, *resize, "--out", str(out)]) == EXIT_OK
    inference = read_model_info(out).inference
    assert inference["input_size"] == 64 and inference["fuse_sizes"] == [96]
    result = Predictor.load(out, device="cpu").analyze(pattern(70, 90))
    assert result.settings["fuse_sizes"] == [96]
    # Refused before the model loads: a size out of range, fused sizes in tiled mode.
    bad = tmp_path / "bad.safetensors"
    assert main([*args, "--fuse-sizes", "8", "--out", str(bad)]) != EXIT_OK
    assert main([*args, "--mode", "tiled", "--fuse-sizes", "96", "--out", str(bad)]) != EXIT_OK
    assert not bad.exists()


def test_calibrate_stores_the_margin_it_calibrated(tmp_path, tiny_dataset, tiny_model_path):
    out = tmp_path / "framed.safetensors"
    args = ["calibrate", "--model", str(tiny_model_path), "--data", str(tiny_dataset)]
    resize = ["--mode", "resize", "--input-size", "64"]
    assert main([*args, *resize, "--margin", "0.125", "--out", str(out)]) == EXIT_OK
    assert read_model_info(out).inference["margin"] == 0.125
    image = pattern(70, 90)
    framed = Predictor.load(out, device="cpu").analyze(image)
    assert framed.settings["margin"] == 0.125
    asked = InferenceSettings(mode="resize", input_size=64, margin=0.125)
    by_hand = Predictor.load(tiny_model_path, device="cpu").analyze(image, settings=asked)
    np.testing.assert_allclose(framed.probability, by_hand.probability, atol=2e-3)  # fp16 file
    # Without the flag none is stored; out of range or in tiled mode it is refused first.
    plain = tmp_path / "plain.safetensors"
    assert main([*args, *resize, "--out", str(plain)]) == EXIT_OK
    assert "margin" not in read_model_info(plain).inference
    bad = tmp_path / "bad.safetensors"
    assert main([*args, *resize, "--margin", "0.75", "--out", str(bad)]) != EXIT_OK
    assert main([*args, "--mode", "tiled", "--margin", "0.1", "--out", str(bad)]) != EXIT_OK
    assert not bad.exists()
