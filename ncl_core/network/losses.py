"""NCL contrastive loss (Eq. 7), pivot-consistent loss (Eq. 8) and the total loss.

Semantics exactly as docs/METHOD.md (losses). Losses are computed in float32 even under
autocast: a softmax over 256 similarities divided by tau = 0.1 is not safe in bfloat16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ncl_core.analysis import SCORE_TOP_FRACTION
from ncl_core.network.net_config import LossConfig
from ncl_core.network.patches import AUTHENTIC, CONTOUR, TAMPERED

NCL_TERMS = ("ncl_term1", "ncl_term2", "ncl_term3")


# Masked-out similarities: exp(-1e4) is exactly 0 in float32, and unlike -inf it keeps the
# gradient of a row without any entry finite (that row is discarded with torch.where).
_MASKED = -1.0e4


def _masked_lse(sim: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """log-sum-exp of ``sim`` over its last dim, counting only the entries where ``keep``."""
    return torch.logsumexp(sim.masked_fill(~keep, _MASKED), dim=-1)


def _masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``keep`` along every dim after the first (0 where none)."""
    dims = tuple(range(1, values.dim()))
    total = torch.where(keep, values, torch.zeros_like(values)).sum(dim=dims)
    return total / keep.sum(dim=dims).clamp(min=1)


def _negative_mask(
    authentic: torch.Tensor, max_negatives: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """The authentic patches each image contrasts against: all, or ``max_negatives`` at random."""
    if max_negatives is None or authentic.shape[1] <= max_negatives:
        return authentic
    # A random key per patch; each image keeps its max_negatives authentic patches of lowest key.
    keys = torch.rand(authentic.shape, generator=generator).to(authentic.device)
    keys = keys.masked_fill(~authentic, 2.0)
    chosen = torch.zeros_like(authentic)
    chosen.scatter_(1, keys.topk(max_negatives, dim=1, largest=False).indices, True)
    return chosen & authentic


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
    so the parts add up to ``ncl``. The whole batch is computed at once with masks (no
    per-image loop and no data-dependent shapes, so a GPU never waits on the host).
    """
    device_type = patch_feats.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        feats = F.normalize(patch_feats.float(), dim=-1)  # B, K, D
        pos = labels == TAMPERED  # B, K
        neg = _negative_mask(labels == AUTHENTIC, max_negatives, generator)
        n_pos, n_neg = pos.sum(dim=1), neg.sum(dim=1)
        both = (n_pos > 0) & (n_neg > 0)
        # Term 1: every tampered anchor against every other tampered patch (Eq. 7, first sum).
        sim = feats @ feats.transpose(1, 2) / tau  # B, K, K
        lse_neg = _masked_lse(sim, neg[:, None, :])  # B, K: each anchor against the negatives
        eye = torch.eye(sim.shape[1], dtype=torch.bool, device=sim.device)
        pairs = pos[:, :, None] & pos[:, None, :] & ~eye
        term1 = _masked_mean(F.softplus(lse_neg[:, :, None] - sim), pairs)
        has1 = both & (n_pos >= 2)
        terms = [torch.where(has1, term1, torch.zeros_like(term1))]
        has23 = torch.zeros_like(both)
        if se_pos is not None and se_neg is not None:
            has23 = both & (labels == CONTOUR).any(dim=1)
            # Rows of images without a contour patch are ignored even when they hold NaN.
            zero = torch.zeros_like(se_pos, dtype=torch.float32)
            hard_pos = F.normalize(torch.where(has23[:, None], se_pos.float(), zero), dim=-1)
            hard_neg = F.normalize(torch.where(has23[:, None], se_neg.float(), zero), dim=-1)
            s_hp = torch.einsum("bd,bkd->bk", hard_pos, feats) / tau
            s_hn = torch.einsum("bd,bkd->bk", hard_neg, feats) / tau
            # Term 2: the hard positive pulls the tampered patches, against the authentic ones.
            term2 = _masked_mean(F.softplus(_masked_lse(s_hp, neg)[:, None] - s_hp), pos)
            # Term 3: the hard negative pulls the authentic patches, against the tampered ones.
            term3 = _masked_mean(F.softplus(_masked_lse(s_hn, pos)[:, None] - s_hn), neg)
            terms += [torch.where(has23, t, torch.zeros_like(t)) for t in (term2, term3)]
        else:
            terms += [torch.zeros_like(term1)] * 2
        counted = (has1 | has23).sum().clamp(min=1)
        # "No defined term" is an exact zero that still back-propagates into the features only.
        anchor = _zero_like_graph(patch_feats)
        parts = {name: t.sum() / counted + anchor for name, t in zip(NCL_TERMS, terms)}
    parts["ncl"] = parts["ncl_term1"] + parts["ncl_term2"] + parts["ncl_term3"]
    return parts


def _zero_like_graph(tensor: torch.Tensor) -> torch.Tensor:
    """An exact zero that still back-propagates (zero gradients) into ``tensor``."""
    return tensor.float().sum() * 0.0


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
    stage_logits: list[torch.Tensor],
    masks: torch.Tensor,
    labels: torch.Tensor,
    mu: float = 0.8,
    pos_weight: float = 1.0,
    dice: float = 0.0,
) -> list[torch.Tensor]:
    """Eq. 8 for each stage: mu * BCE over contour pixels + (1 - mu) * BCE over all pixels.

    ``labels`` is the patch-label grid ``[B, Hp, Wp]`` or flattened ``[B, Hp*Wp]`` (then the
    grid shape is recovered from the mask's aspect ratio and the number of patches).
    ``pos_weight`` weights the BCE of manipulated pixels; ``dice`` adds that weight times a soft
    Dice loss over the batch (both options for small manipulated areas; 1 and 0 are Eq. 8).
    """
    masks = masks.float()
    grid = _label_grid(labels, masks.shape[-2:])
    contour_grid = (grid == CONTOUR).float()[:, None]
    losses = []
    for logits in stage_logits:
        size = logits.shape[-2:]
        logits = logits.float()
        gt = (F.interpolate(masks, size=size, mode="area") >= 0.5).float()
        weight = None if pos_weight == 1.0 else 1.0 + (pos_weight - 1.0) * gt
        bce = F.binary_cross_entropy_with_logits(logits, gt, weight=weight, reduction="none")
        contour = F.interpolate(contour_grid, size=size, mode="nearest") > 0.5
        # A masked mean, not bce[contour]: no data-dependent shape, so no host-device sync.
        n_contour = contour.sum()
        contour_term = torch.where(contour, bce, torch.zeros_like(bce)).sum() / n_contour.clamp(
            min=1
        )
        loss = mu * contour_term + (1.0 - mu) * bce.mean()
        if dice > 0:
            prob = torch.sigmoid(logits)
            overlap = 2 * (prob * gt).sum() + 1.0
            loss = loss + dice * (1 - overlap / (prob.sum() + gt.sum() + 1.0))
        losses.append(loss)
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


def image_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """BCE of each image's score (the mean probability of its top ``SCORE_TOP_FRACTION`` of
    pixels, as ``ncl_core.analysis.image_score`` scores a map) against "the mask has a
    manipulated pixel", averaged over the batch."""
    prob = torch.sigmoid(logits.float()).flatten(1)
    k = max(1, round(prob.shape[1] * SCORE_TOP_FRACTION))
    score = prob.topk(k, dim=1).values.mean(dim=1).clamp(1e-6, 1 - 1e-6)
    target = (masks.float().flatten(1).amax(dim=1) >= 0.5).float()
    return F.binary_cross_entropy(score, target)


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
    """L = omega * L_NCL + L_PC (+ image_weight * L_image), with every named part for logging.

    Keys: ``total``, ``ncl``, ``ncl_term1..3``, ``pc``, ``pc_stage1..4``, and ``image`` when its
    weight is positive. ``outputs`` is the training forward's dict.
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
    stages = pc_stage_losses(
        outputs["stage_logits"], masks, labels, config.mu, config.pos_weight, config.dice
    )
    for index, value in enumerate(stages, start=1):
        parts[f"pc_stage{index}"] = value
    parts["pc"] = torch.stack(stages).sum()
    parts["total"] = config.omega * parts["ncl"] + parts["pc"]
    if config.image_weight > 0:
        parts["image"] = image_loss(outputs["logits"], masks)
        parts["total"] = parts["total"] + config.image_weight * parts["image"]
    return parts
