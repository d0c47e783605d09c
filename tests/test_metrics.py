"""Every metric against an independent, naive computation on random maps with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ncl_core.evaluation.metrics import (
    MetricAccumulator,
    all_manipulated_f1,
    image_metrics,
    pixel_metrics,
)


def naive_auc(scores, labels):
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (len(pos) * len(neg)))


def naive_counts(prob, gt, threshold):
    pred = prob >= threshold
    return int((pred & gt).sum()), int((pred & ~gt).sum()), int((~pred & gt).sum())


def naive_f1(prob, gt, threshold):
    tp, fp, fn = naive_counts(prob, gt, threshold)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def naive_best_f1(prob, gt):
    return max(naive_f1(prob, gt, t) for t in np.concatenate([np.unique(prob), [np.inf]]))


def random_case(seed, shape=(20, 24), levels=7):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) < rng.uniform(0.1, 0.6)
    # Few distinct levels -> many ties; correlated with gt so AUC is away from 0.5.
    prob = np.round(np.clip(0.35 * gt + rng.random(shape) * 0.8, 0, 1) * (levels - 1)) / (
        levels - 1
    )
    return prob.astype(np.float32), gt


@pytest.mark.parametrize("seed", range(8))
def test_pixel_metrics_match_naive(seed):
    prob, gt = random_case(seed)
    m = pixel_metrics(prob, gt)
    tp, fp, fn = naive_counts(prob, gt, 0.5)
    assert tp > 0
    assert m.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m.iou == pytest.approx(tp / (tp + fp + fn))
    assert m.precision == pytest.approx(tp / (tp + fp))
    assert m.recall == pytest.approx(tp / (tp + fn))
    assert m.auc == pytest.approx(naive_auc(prob.ravel(), gt.ravel()), abs=1e-12)
    assert m.best_f1 == pytest.approx(naive_best_f1(prob, gt), abs=1e-12)
    assert naive_f1(prob, gt, m.best_threshold) == pytest.approx(m.best_f1)
    assert m.best_f1 >= m.f1


def test_textbook_auc_and_threshold_inclusive():
    m = pixel_metrics(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert m.auc == 0.75
    # prob == threshold counts as a positive prediction
    m = pixel_metrics(np.array([0.5, 0.2]), np.array([True, False]))
    assert (m.f1, m.precision, m.recall, m.iou) == (1.0, 1.0, 1.0, 1.0)


def test_all_ties_give_half_auc():
    gt = np.zeros((4, 4), bool)
    gt[:2] = True
    assert pixel_metrics(np.full((4, 4), 0.3), gt).auc == 0.5


def test_one_class_ground_truth():
    prob = np.random.default_rng(0).random((8, 8))
    authentic = pixel_metrics(prob, np.zeros((8, 8), bool))
    assert math.isnan(authentic.auc) and authentic.f1 == 0 and authentic.best_f1 == 0
    full = pixel_metrics(prob, np.ones((8, 8), bool))
    assert math.isnan(full.auc) and full.recall == pytest.approx((prob >= 0.5).mean())
    assert full.best_f1 == 1.0  # the lowest threshold predicts everything


def test_no_true_positive_is_zero():
    gt = np.zeros((4, 4), bool)
    gt[0, 0] = True
    m = pixel_metrics(np.zeros((4, 4)), gt)
    assert (m.f1, m.iou, m.precision, m.recall) == (0.0, 0.0, 0.0, 0.0)


def test_numpy_and_torch_inputs_and_mask_encodings_agree():
    prob, gt = random_case(11)
    ref = pixel_metrics(prob, gt).to_dict()
    assert pixel_metrics(torch.from_numpy(prob), torch.from_numpy(gt)).to_dict() == ref
    assert pixel_metrics(
        prob.astype(np.float64), gt.astype(np.uint8) * 255
    ).to_dict() == pytest.approx(ref)
    assert pixel_metrics(prob, gt.astype(np.float32)).to_dict() == pytest.approx(ref)
    with pytest.raises(ValueError, match="shape"):
        pixel_metrics(prob, gt[:-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_give_the_same_metrics():
    prob, gt = random_case(5, shape=(64, 64))
    ref = pixel_metrics(prob, gt).to_dict()
    out = pixel_metrics(torch.from_numpy(prob).cuda(), torch.from_numpy(gt).cuda()).to_dict()
    assert out == pytest.approx(ref)
    acc = MetricAccumulator()
    acc.add(torch.from_numpy(prob).cuda(), torch.from_numpy(gt).cuda(), score=0.7)
    assert acc.result()["f1"] == pytest.approx(ref["f1"])


@pytest.mark.parametrize("seed", range(5))
def test_image_metrics_match_naive(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.5
    scores = np.round(np.clip(labels * 0.3 + rng.random(60) * 0.7, 0, 1), 1)  # ties
    out = image_metrics(scores, labels)
    pred = scores >= 0.5
    tp, fp, fn = (pred & labels).sum(), (pred & ~labels).sum(), (~pred & labels).sum()
    assert out["auc"] == pytest.approx(naive_auc(scores, labels), abs=1e-12)
    assert out["accuracy"] == pytest.approx((pred == labels).mean())
    assert out["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert math.isnan(image_metrics([0.2, 0.9], [1, 1])["auc"])


def test_accumulator_means_over_tampered_unless_asked():
    cases = [random_case(s) for s in range(4)]
    authentic_prob = np.random.default_rng(9).random((20, 24)).astype(np.float32)
    acc = MetricAccumulator()
    scores = [0.9, 0.4, 0.8, 0.7]
    for (prob, gt), score in zip(cases, scores):
        acc.add(prob, gt, score=score)
    acc.add(authentic_prob, np.zeros((20, 24), bool), score=0.6)
    per = [pixel_metrics(p, g) for p, g in cases]

    tampered_only = acc.result()
    assert (
        tampered_only["n_images"],
        tampered_only["n_tampered"],
        tampered_only["n_authentic"],
    ) == (4, 4, 1)
    assert tampered_only["f1"] == pytest.approx(np.mean([m.f1 for m in per]))
    assert tampered_only["iou"] == pytest.approx(np.mean([m.iou for m in per]))
    assert tampered_only["auc"] == pytest.approx(np.mean([m.auc for m in per]))
    assert tampered_only["best_f1"] == pytest.approx(np.mean([m.best_f1 for m in per]))

    everything = acc.result(include_authentic=True)
    assert everything["n_images"] == 5 and everything["n_auc"] == 4
    assert everything["f1"] == pytest.approx(sum(m.f1 for m in per) / 5)  # authentic F1 is 0
    assert everything["auc"] == pytest.approx(tampered_only["auc"])  # NaN AUC left out

    labels = np.array([True, True, True, True, False])
    expected = image_metrics(np.array(scores + [0.6]), labels)
    assert (
        tampered_only["image_auc"]
        == pytest.approx(expected["auc"])
        == pytest.approx(naive_auc(np.array(scores + [0.6]), labels))
    )
    assert tampered_only["image_accuracy"] == pytest.approx(3 / 5)
    assert tampered_only["n_scored"] == 5
    # How much of the authentic image is marked at 0.5: a false alarm's size.
    assert tampered_only["authentic_flagged_median"] == pytest.approx(
        (authentic_prob >= 0.5).mean()
    )


def test_accumulator_explicit_label_and_empty_result():
    acc = MetricAccumulator()
    assert math.isnan(acc.result()["f1"]) and "image_auc" not in acc.result()
    # An image known to be tampered whose change is too small to show in the resized mask.
    acc.add(np.zeros((4, 4)), np.zeros((4, 4), bool), tampered=True)
    assert acc.result()["n_images"] == 1 and acc.result()["f1"] == 0.0


def test_large_map_is_exact():
    rng = np.random.default_rng(0)
    gt = rng.random((512, 512)) < 0.2
    levels = rng.integers(0, 256, (512, 512))
    levels[gt] = np.minimum(levels[gt] + 25, 255)
    prob = (levels / 255).astype(np.float32)
    # Independent exact AUC via the count of negatives below each positive, by grey level.
    neg_hist = np.bincount(levels[~gt], minlength=300)
    below = np.cumsum(neg_hist) - neg_hist
    expected = (below[levels[gt]] + 0.5 * neg_hist[levels[gt]]).sum() / (gt.sum() * (~gt).sum())
    assert pixel_metrics(prob, gt).auc == pytest.approx(expected, abs=1e-12)


def test_all_manipulated_floor_is_the_f1_of_marking_everything():
    gt = np.zeros((10, 10), bool)
    gt[:2, :5] = True  # r = 0.1
    everything = np.ones((10, 10), np.float32)
    m = pixel_metrics(everything, gt)
    assert m.floor_f1 == pytest.approx(2 * 0.1 / 1.1) == pytest.approx(m.f1)
    assert all_manipulated_f1(0.0) == 0.0 and all_manipulated_f1(1.0) == 1.0
    acc = MetricAccumulator()
    acc.add(everything, gt)
    gt2 = np.zeros((10, 10), bool)
    gt2[:5] = True  # r = 0.5
    acc.add(np.zeros((10, 10), np.float32), gt2)
    acc.add(np.zeros((10, 10), np.float32), np.zeros((10, 10), bool))  # authentic: no floor
    result = acc.result()
    assert result["floor_f1"] == pytest.approx((2 * 0.1 / 1.1 + 2 * 0.5 / 1.5) / 2)
    assert (result["n_all"], result["n_tampered"], result["n_images"]) == (3, 2, 2)


def test_quiet_f1_is_the_f1_where_the_median_authentic_image_stays_quiet():
    from ncl_core.evaluation.metrics import QUIET_BINS, QUIET_FLAGGED

    rng = np.random.default_rng(3)
    gt = np.zeros((40, 50), bool)
    gt[10:20, 10:30] = True
    # A map that finds the region (0.6) but also lights a tenth of every image at 0.8, as a
    # map hot on texture does; authentic images carry the same texture response.
    texture = rng.random((40, 50)) < 0.1
    prob = np.where(gt, 0.6, np.where(texture, 0.8, 0.1))
    acc = MetricAccumulator()
    acc.add(prob, gt)
    for seed in range(3):
        quiet = np.random.default_rng(seed).random((40, 50)) < 0.1
        acc.add(np.where(quiet, 0.8, 0.1), np.zeros((40, 50), bool))
    result = acc.result()
    # At 0.5 the texture is flagged with the region; where authentic images stay under 5 %
    # flagged (above 0.8 on the grid) the region is no longer found: quiet F1 0.
    assert result["f1"] > 0.5 and result["authentic_flagged_median"] > QUIET_FLAGGED
    assert result["quiet_threshold"] > 0.8 and result["quiet_f1"] == 0.0
    # The same region found above the texture response: quiet F1 is the F1 at that threshold.
    acc2 = MetricAccumulator()
    strong = np.where(gt, 0.95, np.where(texture, 0.8, 0.1))
    acc2.add(strong, gt)
    for seed in range(3):
        quiet = np.random.default_rng(seed).random((40, 50)) < 0.1
        acc2.add(np.where(quiet, 0.8, 0.1), np.zeros((40, 50), bool))
    result2 = acc2.result()
    k = result2["quiet_threshold"]
    assert 0.8 < k <= 0.95 and k * QUIET_BINS == int(k * QUIET_BINS)
    assert result2["quiet_f1"] == pytest.approx(pixel_metrics(strong, gt, k).f1)
    # No authentic image: no quiet figures.
    only = MetricAccumulator()
    only.add(prob, gt)
    assert "quiet_f1" not in only.result()
