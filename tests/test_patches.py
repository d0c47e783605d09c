import numpy as np
import torch

from ncl_core.network.patches import (
    AUTHENTIC,
    CONTOUR,
    TAMPERED,
    label_counts,
    patch_labels,
    patch_labels_np,
)


def test_labels_follow_forged_fraction():
    mask = torch.zeros(1, 1, 8, 12)
    mask[0, 0, 0:4, 0:4] = 1  # patch (0,0) fully forged
    mask[0, 0, 0:4, 4:6] = 1  # patch (0,1) half forged
    mask[0, 0, 4, 8] = 1  # patch (1,2): 1/16 forged
    labels = patch_labels(mask, patch_px=4, eps=0.01)
    expected = torch.tensor([[[TAMPERED, CONTOUR, AUTHENTIC], [AUTHENTIC, AUTHENTIC, CONTOUR]]])
    assert torch.equal(labels, expected)


def test_eps_tolerates_a_few_stray_pixels():
    mask = torch.ones(1, 1, 10, 10)
    mask[0, 0, 0, 0] = 0  # 1 % missing
    assert patch_labels(mask, 10, eps=0.01).item() == TAMPERED
    assert patch_labels(mask, 10, eps=0.0).item() == CONTOUR
    assert patch_labels(1 - mask, 10, eps=0.01).item() == AUTHENTIC


def test_batch_and_partial_patches_ignored():
    mask = torch.zeros(2, 1, 9, 9, dtype=torch.bool)
    mask[1, 0, :4, :4] = True
    mask[:, 0, 8, :] = True  # beyond the last whole 4-px patch: ignored
    labels = patch_labels(mask, 4)
    assert labels.shape == (2, 2, 2)
    assert labels[0].eq(AUTHENTIC).all()
    assert labels[1, 0, 0] == TAMPERED and labels[1].eq(TAMPERED).sum() == 1


def test_numpy_helper_and_counts():
    mask = np.zeros((64, 64), dtype=bool)
    mask[:32, :48] = True
    grid = patch_labels_np(mask, 32)
    assert grid.tolist() == [[TAMPERED, CONTOUR], [AUTHENTIC, AUTHENTIC]]
    assert label_counts(grid) == {"authentic": 2, "tampered": 1, "contour": 1}


def test_numpy_and_torch_paths_agree_on_random_masks():
    rng = np.random.default_rng(0)
    for p in (4, 8):
        # Blocky random masks give many tampered and authentic patches, noise many contours.
        blocks = rng.random((9, 11)) > 0.5
        mask = np.kron(blocks, np.ones((6, 6))) > 0
        mask ^= rng.random(mask.shape) > 0.97
        expected = patch_labels(torch.from_numpy(mask)[None, None], p, 0.01)[0].numpy()
        assert np.array_equal(patch_labels_np(mask, p, 0.01), expected)
