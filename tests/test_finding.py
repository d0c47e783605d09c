"""``ncl_core.inference.finding``: one finding, worded the same in the panel, the CLI, the JSON and reports."""

from __future__ import annotations

import json

import numpy as np

from ncl_core.inference.finding import (
    FINDING_POSITIVE,
    MIN_REGION_FRACTION,
    REGION_GRID_PX,
    count_regions,
    image_finding,
    model_quality,
)
from ncl_core.models.modelfile import read_model_info
from ncl_core.paths import bundled_model_path

CALIBRATED = {"score_threshold": 0.74}


def _map(*boxes, shape=(100, 100)) -> np.ndarray:
    prob = np.zeros(shape, np.float32)
    for y0, y1, x0, x1 in boxes:
        prob[y0:y1, x0:x1] = 0.9
    return prob


def test_a_concentrated_map_is_localized_with_its_area_and_regions():
    found = image_finding(0.8, _map((10, 30, 10, 30)), 0.5, CALIBRATED)
    assert found.indicated and found.localized and found.regions == 1
    assert found.text == (
        f"{FINDING_POSITIVE} (score 0.80 at or above the model's calibrated 0.74); "
        "localized: 4.0 % of the image in 1 region at 0.50"
    )


def test_a_large_or_scattered_map_is_no_localisation():
    large = image_finding(0.8, _map((0, 60, 0, 60)), 0.5, CALIBRATED)  # 36 % of the image
    assert not large.localized and "spread over the image: no localisation (36.0 %" in large.text
    specks = [(y, y + 4, x, x + 4) for y in range(0, 100, 20) for x in range(0, 100, 20)]
    scattered = image_finding(0.8, _map(*specks), 0.5, CALIBRATED)  # 4 % in 25 regions
    assert scattered.regions == 25 and not scattered.localized
    assert "no localisation (4.0 % of the image in 25 regions" in scattered.text


def test_below_the_calibrated_threshold_nothing_is_indicated_nor_localized():
    found = image_finding(0.564, _map((10, 30, 10, 30)), 0.5, CALIBRATED)
    assert not found.indicated and not found.localized
    assert found.text.startswith("none indicated (score 0.56 below the model's calibrated 0.74)")
    assert "the map marks 4.0 % of the image in 1 region" in found.text
    empty = image_finding(0.1, _map(), 0.5, CALIBRATED)
    assert empty.text.endswith("the map marks no region at 0.50")


def test_uncalibrated_and_fine_tuned_models_say_so():
    plain = image_finding(0.6, _map(), 0.5, {"score_threshold": None})
    assert "at or above 0.5; uncalibrated model" in plain.text and not plain.calibrated
    tuned = image_finding(0.3, _map(), 0.5, {"model_quality": {"fine_tuned": True}})
    assert "below 0.5; fine-tuned model, not calibrated" in tuned.text


def test_a_map_near_the_floor_is_called_a_hint_with_its_figure():
    near = {"f1": 0.128, "floor_f1": 0.128, "measured_on": "calibration"}
    found = image_finding(0.8, _map((10, 30, 10, 30)), 0.5, {**CALIBRATED, "model_quality": near})
    assert found.text.endswith(
        "the model's map is a hint, not a localisation (F1 0.13 on real forgeries, floor 0.13)"
    )
    good = {"f1": 0.5, "floor_f1": 0.12, "measured_on": "calibration"}
    assert image_finding(0.8, _map(), 0.5, {"model_quality": good}).hint is None


def test_the_bundled_model_is_calibrated_and_near_the_floor():
    quality = model_quality(read_model_info(bundled_model_path()))
    assert quality["measured_on"] == "calibration" and quality["fine_tuned"] is True
    assert quality["f1"] < 1.5 * quality["floor_f1"]
    json.dumps(quality)  # recorded in every analysis's settings


def test_regions_are_counted_without_speckle_and_on_a_bounded_grid():
    mask = np.zeros((3000, 2000), bool)
    mask[100:400, 100:400] = True
    mask[2000:2300, 1500:1900] = True
    mask[1000, 1000] = True  # a lone pixel: speckle
    assert count_regions(mask) == 2
    assert count_regions(np.zeros((10, 10), bool)) == 0


def test_regions_on_a_coarse_grid_are_those_of_the_cells_any_pixel_sets():
    """The grid's cells against a plain definition (pad, then any pixel of each cell), on
    sizes that do not divide by the step and regions that touch the edges."""
    import cv2

    rng = np.random.default_rng(5)
    for height, width in ((1030, 777), (2049, 1500), (513, 4000)):
        mask = rng.random((height, width)) > 0.9995  # speckle everywhere
        for _ in range(6):
            y, x = rng.integers(0, height), rng.integers(0, width)
            mask[y : y + rng.integers(5, 200), x : x + rng.integers(5, 200)] = True
        step = -(-max(height, width) // REGION_GRID_PX)
        padded = np.pad(mask, ((0, -height % step), (0, -width % step)))
        cells = padded.reshape(padded.shape[0] // step, step, -1, step).any(axis=(1, 3))
        n, _, stats, _ = cv2.connectedComponentsWithStats(cells.astype(np.uint8), connectivity=8)
        min_cells = max(1.0, MIN_REGION_FRACTION * cells.size)
        expected = int((stats[1:n, cv2.CC_STAT_AREA] >= min_cells).sum())
        assert expected >= 2 and count_regions(mask) == expected
