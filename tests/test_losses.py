"""NCL and PC losses against naive loops written independently of the implementation."""

import math

import pytest
import torch
import torch.nn.functional as F

from ncl_core.network.losses import (
    _negative_mask,
    image_loss,
    ncl_loss,
    ncl_loss_parts,
    pc_loss,
    total_loss,
)
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import LossConfig, ModelConfig

TAU = 0.1


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def _pair_term(anchor, positive, negatives, tau=TAU):
    s_pos = math.exp(_cos(anchor, positive) / tau)
    s_neg = sum(math.exp(_cos(anchor, n) / tau) for n in negatives)
    return -math.log(s_pos / (s_pos + s_neg))


def naive_ncl(feats, labels, se_pos, se_neg, tau=TAU):
    """Eq. 7 per image with plain Python loops, then the mean over images with a defined term."""
    per_image = []
    for b in range(feats.shape[0]):
        P = [feats[b, k] for k in range(feats.shape[1]) if labels[b, k] == 1]
        N = [feats[b, k] for k in range(feats.shape[1]) if labels[b, k] == 0]
        has_contour = any(labels[b, k] == 2 for k in range(feats.shape[1]))
        if not P or not N:
            continue
        terms = []
        if len(P) >= 2:
            pairs = [
                _pair_term(P[m], P[j], N, tau)
                for m in range(len(P))
                for j in range(len(P))
                if m != j
            ]
            terms.append(sum(pairs) / len(pairs))
        if has_contour:
            terms.append(sum(_pair_term(se_pos[b], p, N, tau) for p in P) / len(P))
            terms.append(sum(_pair_term(se_neg[b], n, P, tau) for n in N) / len(N))
        if terms:
            per_image.append(sum(terms))
    return sum(per_image) / len(per_image) if per_image else 0.0


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


@pytest.mark.parametrize(
    "labels",
    [
        [[1, 1, 0, 0, 2, 0]],  # all three terms
        [[1, 1, 1, 0, 0, 0]],  # no contour: term 1 only
        [[1, 0, 0, 2, 2, 0]],  # a single tampered patch: terms 2-3 only
        [[0, 0, 0, 2, 0, 0]],  # no tampered patch: nothing defined
        [[1, 1, 2, 2, 2, 2]],  # no authentic patch: nothing defined
        [[1, 1, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0]],  # mean over defined images
    ],
)
def test_ncl_loss_matches_naive_loops(labels):
    labels = torch.tensor(labels)
    b, k, d = labels.shape[0], labels.shape[1], 5
    feats = _unit(b, k, d, seed=1)
    se_pos, se_neg = _unit(b, d, seed=2), _unit(b, d, seed=3)
    got = ncl_loss(feats, labels, se_pos, se_neg, tau=TAU, max_negatives=None)
    assert got.item() == pytest.approx(naive_ncl(feats, labels, se_pos, se_neg), rel=1e-5, abs=1e-6)


def test_hand_computed_two_by_two_case():
    # Two tampered patches equal to e1, one authentic = e2, orthogonal; tau = 1.
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    feats = torch.stack([e1, e1, e2])[None]
    labels = torch.tensor([[1, 1, 0]])
    # term1 = -log(e / (e + 1)) for both ordered pairs.
    expected = -math.log(math.e / (math.e + 1))
    got = ncl_loss(feats, labels, None, None, tau=1.0, max_negatives=None)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_parts_add_up_and_rows_without_contour_are_ignored():
    labels = torch.tensor([[1, 1, 0, 2], [1, 1, 0, 0]])
    feats = _unit(2, 4, 6, seed=4)
    se_pos, se_neg = _unit(2, 6, seed=5), _unit(2, 6, seed=6)
    garbage = se_pos.clone()
    garbage[1] = float("nan")  # image 1 has no contour patch: its row must not be read
    parts = ncl_loss_parts(feats, labels, garbage, se_neg, max_negatives=None)
    assert torch.isfinite(parts["ncl"])
    total = parts["ncl_term1"] + parts["ncl_term2"] + parts["ncl_term3"]
    assert parts["ncl"].item() == pytest.approx(total.item())
    assert parts["ncl"].item() == pytest.approx(naive_ncl(feats, labels, se_pos, se_neg), rel=1e-5)


def test_max_negatives_samples_with_the_generator():
    labels = torch.tensor([[1, 1] + [0] * 20])
    feats = _unit(1, 22, 4, seed=7)
    full = ncl_loss(feats, labels, None, None, max_negatives=None)
    a = ncl_loss(
        feats, labels, None, None, max_negatives=3, generator=torch.Generator().manual_seed(0)
    )
    b = ncl_loss(
        feats, labels, None, None, max_negatives=3, generator=torch.Generator().manual_seed(0)
    )
    assert a.item() == b.item()
    assert a.item() != pytest.approx(full.item())
    # A cap at least as large as the set uses every negative.
    assert ncl_loss(feats, labels, None, None, max_negatives=20).item() == pytest.approx(
        full.item()
    )


def test_sampled_negatives_are_a_subset_of_the_authentic_patches_of_each_image():
    labels = torch.tensor([[1, 1] + [0] * 20, [0] * 4 + [1] * 18, [0] * 22])
    chosen = _negative_mask(labels == 0, 3, torch.Generator().manual_seed(1))
    assert chosen.sum(dim=1).tolist() == [3, 3, 3]
    assert not (chosen & (labels != 0)).any()
    # A sampled loss equals the naive loop restricted to the sampled negatives.
    feats = _unit(3, 22, 4, seed=3)
    sampled = ncl_loss(
        feats, labels, None, None, max_negatives=3, generator=torch.Generator().manual_seed(1)
    )
    restricted = torch.where(chosen | (labels != 0), labels, torch.full_like(labels, 3))
    assert sampled.item() == pytest.approx(naive_ncl(feats, restricted, None, None), rel=1e-5)


def test_no_defined_term_is_an_exact_zero_that_backpropagates():
    feats = _unit(2, 4, 3, seed=8).requires_grad_()
    labels = torch.tensor([[0, 0, 0, 0], [2, 2, 2, 2]])
    loss = ncl_loss(feats, labels, None, None)
    assert loss.item() == 0.0
    loss.backward()
    assert feats.grad is not None and torch.count_nonzero(feats.grad) == 0


def naive_pc(stage_logits, masks, labels_grid, mu):
    total = 0.0
    for logits in stage_logits:
        h, w = logits.shape[-2:]
        gt = (F.interpolate(masks.float(), size=(h, w), mode="area") >= 0.5).float()
        hp, wp = labels_grid.shape[-2:]
        contour_sum, contour_n, all_sum, all_n = 0.0, 0, 0.0, 0
        for b in range(logits.shape[0]):
            for y in range(h):
                for x in range(w):
                    z, t = float(logits[b, 0, y, x]), float(gt[b, 0, y, x])
                    p = 1 / (1 + math.exp(-z))
                    bce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
                    all_sum += bce
                    all_n += 1
                    if labels_grid[b, y * hp // h, x * wp // w] == 2:
                        contour_sum += bce
                        contour_n += 1
        contour_term = contour_sum / contour_n if contour_n else 0.0
        total += mu * contour_term + (1 - mu) * all_sum / all_n
    return total


@pytest.mark.parametrize("mu", [0.0, 0.8, 1.0])
def test_pc_loss_matches_naive_loops(mu):
    g = torch.Generator().manual_seed(9)
    masks = torch.zeros(2, 1, 16, 16)
    masks[0, 0, 2:11, 3:9] = 1
    masks[1, 0, 8:, 8:] = 1
    labels = torch.tensor([[[0, 2], [2, 2]], [[0, 0], [0, 1]]])  # 8-px patches
    stages = [torch.randn(2, 1, s, s, generator=g) for s in (2, 4, 8, 16)]
    got = pc_loss(stages, masks, labels, mu=mu)
    assert got.item() == pytest.approx(naive_pc(stages, masks, labels, mu), rel=1e-5)
    # Flattened labels (as the model returns them) give the same value.
    assert pc_loss(stages, masks, labels.flatten(1), mu=mu).item() == pytest.approx(got.item())


def test_pc_loss_without_contour_pixels_is_the_plain_term():
    masks = torch.zeros(1, 1, 8, 8)
    labels = torch.zeros(1, 1, 1, dtype=torch.long)
    stage = [torch.full((1, 1, 8, 8), 0.3)]
    plain = F.binary_cross_entropy_with_logits(stage[0], masks).item()
    assert pc_loss(stage, masks, labels, mu=0.8).item() == pytest.approx(0.2 * plain)


def _batch(kind: str, size: int = 64):
    masks = torch.zeros(2, 1, size, size)
    if kind == "all_tampered":
        masks[:] = 1
    elif kind == "contour_only":
        masks[:, :, :, ::2] = 1  # every 32-px patch half forged
    elif kind == "mixed":
        masks[0, 0, :30, :45] = 1  # edges off the patch grid: contour patches
    return masks


@pytest.mark.parametrize(
    "kind", ["all_authentic", "all_tampered", "contour_only", "mixed", "empty"]
)
@pytest.mark.parametrize("autocast", [False, True])
def test_total_loss_is_finite_and_reaches_layer1(kind, autocast):
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2))
    model.train()
    size = 64
    n = 0 if kind == "empty" else 2
    images = torch.randn(n, 3, size, size)
    masks = _batch(kind, size)[:n]
    if kind == "empty":
        # An empty batch: nothing to learn from, and nothing may become NaN.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            feats = torch.zeros(0, 4, 8, requires_grad=True)
            loss = ncl_loss(feats, torch.zeros(0, 4, dtype=torch.long), None, None)
        assert loss.item() == 0.0
        return
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        outputs = model(images, masks)
        parts = total_loss(outputs, masks, LossConfig(omega=1.0))
    for name, value in parts.items():
        assert torch.isfinite(value), name
    parts["total"].backward()
    grad = model.backbone.layer1[0].conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all()


def test_ncl_gradient_alone_reaches_layer1_and_pivots():
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2)).train()
    masks = _batch("mixed")
    masks[1, 0, 5:37, 5:37] = 1
    outputs = model(torch.randn(2, 3, 64, 64), masks)
    assert outputs["has_contour"].any()
    parts = total_loss(outputs, masks, LossConfig(omega=1.0))
    parts["ncl"].backward()
    assert parts["ncl_term1"].item() > 0 and parts["ncl_term2"].item() > 0
    assert model.backbone.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert model.pivot_pos[0].weight.grad.abs().sum() > 0
    assert model.pivot_neg[0].weight.grad.abs().sum() > 0
    # The decoder is not on the NCL path.
    assert model.head4.weight.grad is None or model.head4.weight.grad.abs().sum() == 0


@pytest.mark.parametrize("mode", ["drop", "as_tampered", "as_authentic"])
def test_contour_modes_change_the_contrastive_loss(mode):
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2)).train()
    masks = _batch("mixed")
    outputs = model(torch.randn(2, 3, 64, 64), masks)
    pivot = total_loss(outputs, masks, LossConfig(omega=1.0, max_negatives=None))
    other = total_loss(outputs, masks, LossConfig(omega=1.0, contour_mode=mode, max_negatives=None))
    assert other["ncl_term2"].item() == 0.0 and other["ncl_term3"].item() == 0.0
    assert pivot["ncl_term2"].item() > 0.0
    assert other["pc"].item() == pytest.approx(pivot["pc"].item())
    if mode != "drop":
        assert other["ncl_term1"].item() != pytest.approx(pivot["ncl_term1"].item())


def test_omega_zero_is_plain_deep_supervision():
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2)).train()
    masks = _batch("mixed")
    outputs = model(torch.randn(2, 3, 64, 64), masks)
    parts = total_loss(outputs, masks, LossConfig(omega=0.0, mu=0.0))
    assert parts["ncl"].item() == 0.0
    assert parts["total"].item() == pytest.approx(parts["pc"].item())
    assert sorted(parts) == sorted(
        ["total", "ncl", "ncl_term1", "ncl_term2", "ncl_term3", "pc"]
        + [f"pc_stage{i}" for i in range(1, 5)]
    )


def test_image_loss_falls_on_the_highest_pixels_of_an_authentic_image():
    logits = torch.full((1, 1, 40, 50), -4.0)
    logits[0, 0, 5:7, 5:10] = 3.0  # ten hot pixels: 0.5 % of 2,000 is 10
    logits.requires_grad_(True)
    authentic = torch.zeros(1, 1, 40, 50)
    loss = image_loss(logits, authentic)
    loss.backward()
    assert loss.item() == pytest.approx(
        -math.log(1 - torch.sigmoid(torch.tensor(3.0)).item()), rel=1e-4
    )
    touched = logits.grad[0, 0] != 0
    assert touched.sum() == 10 and touched[5:7, 5:10].all()
    cold = image_loss(torch.full((1, 1, 40, 50), -4.0), authentic)
    tampered = torch.zeros(1, 1, 40, 50)
    tampered[0, 0, 0, 0] = 1
    # The same hot map is right for a manipulated image: a lower loss there.
    assert cold.item() < loss.item() and image_loss(logits.detach(), tampered).item() < loss.item()


def test_image_weight_adds_the_image_part_to_the_total():
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2)).train()
    masks = _batch("mixed")
    outputs = model(torch.randn(2, 3, 64, 64), masks)
    plain = total_loss(outputs, masks, LossConfig())
    weighted = total_loss(outputs, masks, LossConfig(image_weight=0.5))
    assert "image" not in plain and weighted["image"].item() > 0
    expected = plain["total"].item() + 0.5 * weighted["image"].item()
    assert weighted["total"].item() == pytest.approx(expected, rel=1e-5)
