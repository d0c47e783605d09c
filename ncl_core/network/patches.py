"""Ground-truth mask -> patch labels (docs/METHOD.md, patches).

0 = authentic (no pixel forged), 1 = tampered (all forged), 2 = contour (both).
Used by the model (to pick contour patches for the pivot network), by the losses, and by the
GUI's contour-patch view.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

AUTHENTIC, TAMPERED, CONTOUR = 0, 1, 2
LABEL_NAMES = {AUTHENTIC: "authentic", TAMPERED: "tampered", CONTOUR: "contour"}


def patch_labels(masks: torch.Tensor, patch_px: int, eps: float = 0.01) -> torch.Tensor:
    """Label every non-overlapping ``patch_px`` x ``patch_px`` patch of binary masks.

    ``masks`` is ``[B, 1, H, W]`` (bool or {0, 1}); returns ``LongTensor[B, H//patch_px,
    W//patch_px]``. A patch's forged fraction r decides: ``r >= 1 - eps`` tampered,
    ``r <= eps`` authentic, otherwise contour. Pixels beyond the last whole patch are ignored.
    """
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must be [B, 1, H, W], got {tuple(masks.shape)}")
    fraction = F.avg_pool2d(masks.float(), kernel_size=patch_px, stride=patch_px)[:, 0]
    labels = torch.full_like(fraction, CONTOUR, dtype=torch.long)
    labels[fraction <= eps] = AUTHENTIC
    labels[fraction >= 1.0 - eps] = TAMPERED
    return labels


def patch_labels_np(mask: np.ndarray, patch_px: int, eps: float = 0.01) -> np.ndarray:
    """``patch_labels`` for one H x W numpy mask; returns an int64 ``[H//p, W//p]`` grid.

    Pure numpy (a reshape-sum), ~15x faster than the torch path on a 12 MP mask: the GUI
    recomputes it whenever the threshold moves.
    """
    hp, wp = mask.shape[0] // patch_px, mask.shape[1] // patch_px
    whole = np.asarray(mask)[: hp * patch_px, : wp * patch_px] != 0
    counts = whole.reshape(hp, patch_px, wp, patch_px).sum(axis=(1, 3), dtype=np.int64)
    fraction = counts / float(patch_px * patch_px)
    labels = np.full((hp, wp), CONTOUR, dtype=np.int64)
    labels[fraction <= eps] = AUTHENTIC
    labels[fraction >= 1.0 - eps] = TAMPERED
    return labels


def label_counts(labels: np.ndarray | torch.Tensor) -> dict[str, int]:
    """How many patches of each kind: ``{"authentic": n, "tampered": n, "contour": n}``."""
    flat = torch.as_tensor(labels).flatten()
    return {name: int((flat == value).sum()) for value, name in LABEL_NAMES.items()}
