"""NCL contrastive loss (Eq. 7), pivot-consistent loss (Eq. 8) and the total loss.

Semantics exactly as NCL_METHOD.md sections 5-7. Losses are computed in float32 even under
autocast: a softmax over 256 similarities divided by tau = 0.1 is not safe in bfloat16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ncl_core.config import LossConfig
from ncl_core.patches import AUTHENTIC, CONTOUR, TAMPERED

NCL_TERMS = ("ncl_term1", "ncl_term2", "ncl_term3")


def _anchor_loss(anchor_pos: torch.Tensor, anchor_neg: torch.Tensor) -> torch.Tensor:
    """-log(e^s+ / (e^s+ + sum e^s-)) per (anchor, positive) pair, as softplus(lse(s-) - s+).

    ``anchor_pos`` is ``[A, P]`` similarities of anchors to their positives, ``anchor_neg``
    ``[A, N]`` to the negatives; the result is ``[A, P]``.
    """
    negatives = torch.logsumexp(anchor_neg, dim=1, keepdim=True)
    return F.softplus(negatives - anchor_pos)


def _image_terms(
    feats: torch.Tensor,
    labels: torch.Tensor,
    se_pos: torch.Tensor | None,
    se_neg: torch.Tensor | None,
    tau: float,
    max_negatives: int | None,
    generator: torch.Generator | None,
) -> list[torch.Tensor | None]:
    """The three terms of Eq. 7 for one image; None where a term is undefined."""
    pos = feats[labels == TAMPERED]
    neg = feats[labels == AUTHENTIC]
    if len(pos) == 0 or len(neg) == 0:
        return [None, None, None]
    if max_negatives is not None and len(neg) > max_negatives:
        keep = torch.randperm(len(neg), generator=generator)[:max_negatives].to(neg.device)
        neg = neg[keep]
    terms: list[torch.Tensor | None] = [None, None, None]
    if len(pos) >= 2:
        sim_pp = pos @ pos.T / tau
        pair_losses = _anchor_loss(sim_pp, pos @ neg.T / tau)
        off_diagonal = ~torch.eye(len(pos), dtype=torch.bool, device=pos.device)
        terms[0] = pair_losses[off_diagonal].mean()
    if se_pos is not None and se_neg is not None:
        hard_pos, hard_neg = se_pos[None], se_neg[None]
        terms[1] = _anchor_loss(hard_pos @ pos.T / tau, hard_pos @ neg.T / tau).mean()
        terms[2] = _anchor_loss(hard_neg @ neg.T / tau, hard_neg @ pos.T / tau).mean()
    return terms


def _zero_like_graph(tensor: torch.Tensor) -> torch.Tensor:
    """An exact zero that still back-propagates (zero gradients) into ``tensor``."""
    return tensor.float().sum() * 0.0


def ncl_loss_parts(
    patch_feats: torch.Tensor,
    labels: torch.Tensor,
    se_pos: torch.Tensor | None,
    se_neg: torch.Tensor | None,
    tau: float = 0.1,
    max_negatives: int | None = 256,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """``ncl_loss`` with its three terms: ``{"ncl", "ncl_term1", "ncl_term2", "ncl_term3"}``.

    Each term part is that term summed over the images that count, divided by their number,
    so the parts add up to ``ncl``.
    """
    device_type = patch_feats.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        feats = F.normalize(patch_feats.float(), dim=-1)
        has_contour = (labels == CONTOUR).any(dim=1)
        pos_anchor = F.normalize(se_pos.float(), dim=-1) if se_pos is not None else None
        neg_anchor = F.normalize(se_neg.float(), dim=-1) if se_neg is not None else None
        sums: list[torch.Tensor] = [_zero_like_graph(patch_feats)] * 3
        counted = 0
        for b in range(feats.shape[0]):
            use_pivots = bool(has_contour[b]) and pos_anchor is not None and neg_anchor is not None
            terms = _image_terms(
                feats[b],
                labels[b],
                pos_anchor[b] if use_pivots else None,
                neg_anchor[b] if use_pivots else None,
                tau,
                max_negatives,
                generator,
            )
            if all(t is None for t in terms):
                continue
            counted += 1
            sums = [s + t if t is not None else s for s, t in zip(sums, terms)]
        parts = {name: s / max(counted, 1) for name, s in zip(NCL_TERMS, sums)}
    parts["ncl"] = parts["ncl_term1"] + parts["ncl_term2"] + parts["ncl_term3"]
    return parts


def ncl_loss(
    patch_feats: torch.Tensor,
    labels: torch.Tensor,
    se_pos: torch.Tensor | None,
    se_neg: torch.Tensor | None,
    tau: float = 0.1,
    max_negatives: int | None = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """NCL loss, Eq. 7, averaged over the images with at least one defined term.

    ``patch_feats`` ``[B, K, D]`` (L2-normalised), ``labels`` ``[B, K]`` (0/1/2, row-major
    patch order), ``se_pos``/``se_neg`` ``[B, D]`` (rows of images without a contour patch are
    ignored). ``max_negatives=None`` uses every authentic patch. With no defined term at all
    the result is an exact zero that still back-propagates.
    """
    return ncl_loss_parts(patch_feats, labels, se_pos, se_neg, tau, max_negatives, generator)["ncl"]


def pc_stage_losses(
    stage_logits: list[torch.Tensor], masks: torch.Tensor, labels: torch.Tensor, mu: float = 0.8
) -> list[torch.Tensor]:
    """Eq. 8 for each stage: mu * BCE over contour pixels + (1 - mu) * BCE over all pixels.

    ``labels`` is the patch-label grid ``[B, Hp, Wp]`` or flattened ``[B, Hp*Wp]`` (then the
    grid shape is recovered from the mask's aspect ratio and the number of patches).
    """
    masks = masks.float()
    grid = _label_grid(labels, masks.shape[-2:])
    contour_grid = (grid == CONTOUR).float()[:, None]
    losses = []
    for logits in stage_logits:
        size = logits.shape[-2:]
        logits = logits.float()
        gt = (F.interpolate(masks, size=size, mode="area") >= 0.5).float()
        bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
        contour = F.interpolate(contour_grid, size=size, mode="nearest") > 0.5
        contour_term = bce[contour].mean() if contour.any() else bce.sum() * 0.0
        losses.append(mu * contour_term + (1.0 - mu) * bce.mean())
    return losses


def pc_loss(
    stage_logits: list[torch.Tensor], masks: torch.Tensor, labels: torch.Tensor, mu: float = 0.8
) -> torch.Tensor:
    """Pivot-consistent loss, Eq. 8, summed over the decoder stages."""
    return torch.stack(pc_stage_losses(stage_logits, masks, labels, mu)).sum()


def _label_grid(labels: torch.Tensor, mask_hw: torch.Size) -> torch.Tensor:
    if labels.dim() == 3:
        return labels
    h, w = int(mask_hw[0]), int(mask_hw[1])
    k = labels.shape[1]
    # Patches are square, so the grid keeps the mask's aspect: hp * wp = k, hp / wp = h / w.
    hp = round((k * h / w) ** 0.5)
    if hp == 0 or k % hp:
        raise ValueError(f"cannot infer a patch grid for {k} patches on a {h}x{w} mask")
    return labels.view(labels.shape[0], hp, k // hp)


def remap_contour(labels: torch.Tensor, contour_mode: str) -> torch.Tensor:
    """Labels as the NCL loss sees them under an ablation's ``contour_mode``."""
    if contour_mode == "as_tampered":
        return torch.where(labels == CONTOUR, TAMPERED, labels)
    if contour_mode == "as_authentic":
        return torch.where(labels == CONTOUR, AUTHENTIC, labels)
    return labels  # "pivot" uses contour patches through the pivots; "drop" ignores them


def total_loss(
    outputs: dict,
    masks: torch.Tensor,
    config: LossConfig | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """L = omega * L_NCL + L_PC, with every named part for logging.

    Keys: ``total``, ``ncl``, ``ncl_term1..3``, ``pc``, ``pc_stage1..4``. ``outputs`` is the
    training forward's dict.
    """
    config = config or LossConfig()
    labels = outputs["patch_labels"]
    use_pivots = config.contour_mode == "pivot"
    if config.omega > 0:
        parts = ncl_loss_parts(
            outputs["patch_feats"],
            remap_contour(labels, config.contour_mode),
            outputs["se_pos"] if use_pivots else None,
            outputs["se_neg"] if use_pivots else None,
            tau=config.tau,
            max_negatives=config.max_negatives,
            generator=generator,
        )
    else:
        # omega = 0 is the plain deep-supervised baseline: skip the contrastive work entirely.
        zero = _zero_like_graph(outputs["patch_feats"])
        parts = {name: zero for name in ("ncl", *NCL_TERMS)}
    stages = pc_stage_losses(outputs["stage_logits"], masks, labels, config.mu)
    for index, value in enumerate(stages, start=1):
        parts[f"pc_stage{index}"] = value
    parts["pc"] = torch.stack(stages).sum()
    parts["total"] = config.omega * parts["ncl"] + parts["pc"]
    return parts
