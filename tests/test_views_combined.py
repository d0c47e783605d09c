"""The combined view: the cues ranked per image and weighed by the stored combiner."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.evidence.image import Evidence
from ncl_core.views import VIEWS, compute_view
from ncl_core.views.combined import (
    CUES,
    FEATURES,
    RANKED,
    VALUED,
    combine,
    fit,
    load_weights,
    ranks,
)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _forged() -> tuple[Evidence, np.ndarray]:
    rng = np.random.default_rng(3)
    host = np.clip(rng.normal(128, 20, (128, 160, 3)), 0, 255).astype(np.uint8)
    host = np.asarray(Image.open(io.BytesIO(_jpeg(host, 70)))).copy()
    host[32:80, 48:112] = np.clip(rng.normal(128, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
    data = _jpeg(host, 90)
    gt = np.zeros((128, 160), bool)
    gt[32:80, 48:112] = True
    return Evidence.from_bytes(data, "f.jpg"), gt


def test_ranks_are_in_0_1_and_a_constant_map_is_a_half():
    r = ranks(np.array([[3.0, 1.0], [2.0, 2.0]]))
    assert r.min() == 0.0 and r.max() == 1.0 and r[1, 0] == r[1, 1]
    assert np.all(ranks(np.ones((4, 4))) == 0.5)


def test_stored_weights_are_plain_numbers_for_every_cue():
    stored = load_weights()
    for key in ("with_model", "without_model"):
        assert set(stored[key]["weights"]) == set(FEATURES)
        assert isinstance(stored[key]["bias"], float)
    assert stored["without_model"]["weights"]["model"] == 0.0
    assert stored["without_model"]["weights"]["model:value"] == 0.0


def test_combined_map_is_image_sized_and_uses_the_model_map_when_given():
    evidence, gt = _forged()
    plain = compute_view("combined", evidence)
    assert plain.applicable and plain.map.shape == (128, 160) and plain.map.dtype == np.float32
    assert not plain.details["with_model"] and "without the model" in plain.summary
    model_map = gt.astype(np.float32) * 0.8 + 0.1  # a model that marks the region
    found = compute_view("combined", evidence, model_map=model_map)
    assert found.details["with_model"]
    assert abs(sum(found.details["shares"].values()) - 1.0) < 1e-3
    assert "model" in found.summary and "%" in found.summary
    assert found.map[gt].mean() > found.map[~gt].mean() + 0.05
    assert VIEWS["combined"].has_map


def test_clone_detection_enters_by_its_value_and_lights_a_copied_region():
    assert "clone" in CUES and "clone" in VALUED and "clone" not in RANKED
    assert "clone:value" in FEATURES and "clone" not in FEATURES
    rng = np.random.default_rng(11)
    small = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    image = cv2.resize(small, (288, 240), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    image[150:214, 190:254] = image[30:94, 20:84]  # a plain copy-move, nothing else
    copy = np.zeros(image.shape[:2], bool)
    copy[150:214, 190:254] = True
    source = np.zeros_like(copy)
    source[30:94, 20:84] = True
    evidence = Evidence.from_bytes(_jpeg(image, 95), "copied.jpg")

    found = compute_view("combined", evidence)  # the weights shipped, without a model map

    assert found.details["shares"]["clone"] > 0.2
    assert "clone detection" in found.summary
    rest = ~(copy | source)
    assert found.map[copy].mean() > found.map[rest].mean() + 0.3
    assert (found.map[copy] >= 0.5).mean() > 0.8
    # Clone detection computed beside it is reused, not computed again.
    from ncl_core.views import compute_views

    together = compute_views(("clone", "combined"), evidence)
    assert np.allclose(together["combined"].map, found.map, atol=1e-6)
    # With clone detection's map blank, the copy is no longer singled out: it was that cue.
    no_clone = compute_view(
        "combined", evidence, given={"clone": np.zeros(image.shape[:2], np.float32)}
    )
    assert found.map[copy].mean() > no_clone.map[copy].mean() + 0.3


def test_the_combined_finding_comes_from_the_stored_image_threshold(tmp_path):
    import json

    evidence, gt = _forged()
    model_map = gt.astype(np.float32) * 0.8 + 0.1
    shipped = compute_view("combined", evidence, model_map=model_map)
    threshold = load_weights()["with_model"]["image_threshold"]
    score = shipped.details["image_score"]
    assert 0.0 <= score <= 1.0 and shipped.details["image_threshold"] == threshold
    assert shipped.details["indicated"] == (score >= threshold)
    said = "manipulation indicated" if score >= threshold else "none indicated"
    assert shipped.summary.startswith(said)

    stored = load_weights()
    for value, said in ((0.0, "manipulation indicated"), (1.01, "none indicated")):
        path = tmp_path / f"weights-{value}.json"
        with_model = {**stored["with_model"], "image_threshold": value}
        path.write_text(json.dumps({**stored, "with_model": with_model}))
        found = compute_view("combined", evidence, model_map=model_map, weights_path=str(path))
        assert found.summary.startswith(said) and found.details["image_score"] == score
        assert np.array_equal(found.map, shipped.map)  # the threshold moves no cell
    # Without the model's map there is no calibrated finding: the score alone.
    plain = compute_view("combined", evidence)
    assert plain.details["indicated"] is None and plain.summary.startswith("image score")


def test_fit_learns_the_informative_cue():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4000, len(FEATURES))).astype(np.float32)
    y = (rng.uniform(0, 1, 4000) < x[:, 1]).astype(np.uint8)  # only ELA says anything
    w = fit([x], [y], CUES)["weights"]
    assert w["ela"] > 2.0 and max(abs(w[f]) for f in FEATURES if f != "ela") < 0.5
    assert set(w) == set(FEATURES) and len(CUES) < len(FEATURES)


@pytest.mark.parametrize("share", [0.05, 0.2])
def test_fit_moves_the_map_so_the_median_authentic_image_marks_the_share_asked(share):
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for i in range(40):
        x = rng.uniform(0, 1, (500, len(FEATURES))).astype(np.float32)
        x[:, 1] += rng.normal(0, 0.3)  # images differ in their level, not only cell to cell
        forged = i % 2 == 0
        y = (rng.uniform(0, 1, 500) < x[:, 1] * 0.5).astype(np.uint8) if forged else np.zeros(500)
        xs.append(x)
        ys.append(y.astype(np.uint8))
    weights = fit(xs, ys, CUES, authentic_share=share)
    marked = [float((combine(x, weights) >= 0.5).mean()) for x, y in zip(xs, ys) if not y.any()]
    assert abs(float(np.median(marked)) - share) < 0.01
    assert max(marked) > share + 0.02 and min(marked) < share - 0.02  # a median, not each image


def test_analyze_writes_the_combined_map_with_the_model_as_a_cue(tmp_path, tiny_model_path):
    import json

    from ncl_core.cli import EXIT_OK, main

    evidence, _ = _forged()
    (tmp_path / "evidence").mkdir()
    path = tmp_path / "evidence" / "forged.jpg"
    path.write_bytes(evidence.data)
    out = tmp_path / "out"
    args = ["analyze", str(path), "--views", "combined", "--out", str(out)]
    code = main([*args, "--model", str(tiny_model_path), "--input-size", "64"])
    assert code == EXIT_OK
    with Image.open(out / "forged.combined.png") as im:
        assert im.mode == "L" and im.size == (160, 128)
    record = json.loads((out / "forged.json").read_text())["views"]["combined"]
    assert record["details"]["with_model"] and "model" in record["details"]["shares"]


def test_combined_reuses_its_cue_views_computed_beside_it():
    from ncl_core.views import compute_views

    evidence, gt = _forged()
    model_map = gt.astype(np.float32)
    alone = compute_view("combined", evidence, model_map=model_map)
    found = compute_views(
        ("noise", "ela", "dq", "combined"), evidence, {"combined": {"model_map": model_map}}
    )
    assert np.allclose(found["combined"].map, alone.map, atol=1e-6)
