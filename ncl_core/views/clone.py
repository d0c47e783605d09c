"""Copy-move (clone) detection: regions of the image repeated elsewhere in the same image.

Two searches, whose findings are merged:

- **Keypoints** (textured regions): SIFT keypoints matched against the image's own, with the
  generalised nearest-neighbour ratio test (Amerini et al., 2011); matches are grouped by
  repeated RANSAC fits of an affine transform (clustering and the geometric check in one), and
  each group is verified densely: the image warped by the transform equals itself over the
  copied region. Finds copies that were moved, rotated or scaled.
- **Blocks** (low-texture regions, where keypoints are scarce): every 8 x 8 block of a reduced
  copy is described by its 2 x 2 means, the descriptions are sorted so that alike blocks sit
  together, and a shift shared by many pairs of alike blocks marks a copy (Fridrich et al.,
  2003). Finds plain moved copies only.

The map marks both the copy and its source at 1; the summary gives each shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ncl_core.views.base import (
    Evidence,
    NotApplicable,
    ViewResult,
    as_evidence,
    require_pixels,
)

KEYPOINT_MAX_SIDE = 2048  # keypoints are found on a copy at most this large
BLOCK_MAX_SIDE = 1024  # block matching runs on a copy at most this large
MAX_KEYPOINTS = 20_000
RATIO = 0.6  # g2NN ratio
MIN_INLIERS = 8  # fewer matches on one transform are too often a repeating pattern
MAX_CLUSTERS = 8
BLOCK = 8
BLOCK_MIN_STD = 2.5  # grey levels: flatter blocks match everything and prove nothing
BLOCK_TOL = 1.0  # grey levels, per 2 x 2 mean
BLOCK_NEIGHBOURS = 6  # sorted rows compared with each row
MAX_TOL = 10.0  # grey levels (7 x 7 mean) between a verified copy and its warped source
TEXTURE_STD = 2.0  # grey levels over 7 x 7 px: flatter pixels cannot verify a copy


@dataclass
class Clone:
    """One copied region: how it was found, the transform source -> copy, matches, masks."""

    method: str  # "keypoints" | "blocks"
    transform: np.ndarray  # 2 x 3 affine, source -> copy, in full-image px
    n_matches: int
    source: np.ndarray  # bool H x W
    target: np.ndarray  # bool H x W

    @property
    def shift(self) -> tuple[float, float]:
        return float(self.transform[0, 2]), float(self.transform[1, 2])

    def describe(self) -> str:
        lin = self.transform[:, :2]
        scale = float(np.sqrt(abs(np.linalg.det(lin))))
        angle = float(np.degrees(np.arctan2(lin[1, 0], lin[0, 0])))
        sy, sx = np.nonzero(self.source)
        ty, tx = np.nonzero(self.target)
        text = f"{self.method}: {self.n_matches} matches"
        if sy.size and ty.size:
            text += (
                f", source around ({int(sx.mean())}, {int(sy.mean())}) copied to "
                f"({int(tx.mean())}, {int(ty.mean())})"
            )
        if abs(scale - 1) > 0.03 or abs(angle) > 2:
            text += f", scaled ×{scale:.2f}, rotated {angle:.0f}°"
        return text


def _reduced(gray: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = gray.shape
    f = min(1.0, max_side / max(h, w))
    if f >= 1.0:
        return gray, 1.0
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), f


def _scaled(transform: np.ndarray, f: float) -> np.ndarray:
    """An affine found on a copy scaled by ``f``, expressed in full-image px."""
    out = transform.astype(np.float64).copy()
    out[:, 2] /= f
    return out


def keypoint_pairs(gray: np.ndarray, min_distance: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Matched point pairs (src, dst; N x 2 each) of an image with itself, and the keypoint count."""
    sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS)
    kps, desc = sift.detectAndCompute(gray, None)
    n = len(kps)
    if desc is None or n < 4:
        return np.zeros((0, 2)), np.zeros((0, 2)), n
    pts = np.array([kp.pt for kp in kps], dtype=np.float32)
    k = min(6, n)
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    src, dst, seen = [], [], set()
    for row in matcher.knnMatch(desc, desc, k=k):
        row = sorted(row, key=lambda m: m.distance)
        # g2NN: accept neighbour j while it is much nearer than neighbour j + 1; neighbour 0
        # is the keypoint itself (or its twin at the same place).
        for j in range(1, len(row) - 1):
            if row[j].distance >= RATIO * row[j + 1].distance:
                break
            a, b = row[j].queryIdx, row[j].trainIdx
            pa, pb = pts[a], pts[b]
            if float(np.hypot(*(pa - pb))) < min_distance:
                continue
            key = (min(a, b), max(a, b))
            if key in seen:
                continue
            seen.add(key)
            # One orientation for every pair (left point first) so a copy's pairs agree.
            if (pb[0], pb[1]) < (pa[0], pa[1]):
                pa, pb = pb, pa
            src.append(pa)
            dst.append(pb)
    if not src:
        return np.zeros((0, 2)), np.zeros((0, 2)), n
    return np.array(src, np.float32), np.array(dst, np.float32), n


def cluster_pairs(
    src: np.ndarray, dst: np.ndarray, min_distance: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Groups of pairs sharing one affine transform (RANSAC, repeated on what is left)."""
    groups = []
    rng_state = cv2.getRNGSeed() if hasattr(cv2, "getRNGSeed") else None
    cv2.setRNGSeed(0)  # the same image gives the same groups
    try:
        while len(src) >= MIN_INLIERS and len(groups) < MAX_CLUSTERS:
            model, inl = cv2.estimateAffine2D(
                src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0, maxIters=2000
            )
            if model is None or inl is None:
                break
            inl = inl.reshape(-1).astype(bool)
            if inl.sum() < MIN_INLIERS:
                break
            det = float(np.linalg.det(model[:, :2]))
            moved = float(np.median(np.hypot(*(dst[inl] - src[inl]).T)))
            if 0.25 < det < 4.0 and moved >= min_distance:
                groups.append((model, src[inl], dst[inl]))
            src, dst = src[~inl], dst[~inl]
    finally:
        if rng_state is not None:
            cv2.setRNGSeed(int(rng_state))
    return groups


def _hull_mask(points: np.ndarray, shape: tuple[int, int], pad: int) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(points.astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 1)
    if pad > 0:  # grown by ``pad`` px (a distance transform: linear time for any pad)
        return cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3) <= pad
    return mask.astype(bool)


def verify_dense(
    gray: np.ndarray, transform: np.ndarray, dst_points: np.ndarray, pad: int
) -> np.ndarray:
    """Where the image equals itself warped by ``transform`` (the copy), near the matches."""
    h, w = gray.shape
    warped = cv2.warpAffine(gray, transform, (w, h), flags=cv2.INTER_LINEAR, borderValue=-1.0)
    valid = cv2.warpAffine(
        np.ones_like(gray), transform, (w, h), flags=cv2.INTER_NEAREST, borderValue=0.0
    )
    diff = cv2.blur(np.abs(gray - warped), (7, 7))
    near = _hull_mask(dst_points, (h, w), pad)
    at_points = diff[
        np.clip(dst_points[:, 1].astype(int), 0, h - 1),
        np.clip(dst_points[:, 0].astype(int), 0, w - 1),
    ]
    # A copy differs from its source by compression and resampling only: a few grey levels.
    tol = min(MAX_TOL, max(4.0, 2.0 * float(np.median(at_points))))
    # Flat areas (sky, walls) equal any shifted copy of themselves: they prove nothing, and
    # growing through them would mark half the image. Only textured pixels near the matches.
    mean = cv2.blur(gray, (7, 7))
    std = np.sqrt(np.maximum(cv2.blur(gray * gray, (7, 7)) - mean * mean, 0.0))
    region = _hull_mask(dst_points, (h, w), 3 * pad)
    alike = (diff <= tol) & (valid > 0.5) & (std >= TEXTURE_STD) & region
    alike = cv2.morphologyEx(alike.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    alike = cv2.morphologyEx(alike, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    # The copy is every connected part of "equal to its warped self" that the matches touch.
    n, labels = cv2.connectedComponents(alike, connectivity=8)
    touched = np.unique(labels[near & (alike > 0)])
    touched = touched[touched > 0]
    return np.isin(labels, touched) if n > 1 else np.zeros((h, w), bool)


def _source_of(target: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The region that ``transform`` carries onto ``target``."""
    h, w = target.shape
    src = cv2.warpAffine(
        target.astype(np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    )
    return src.astype(bool)


def keypoint_clones(gray: np.ndarray) -> tuple[list[Clone], int]:
    h, w = gray.shape
    small, f = _reduced(gray, KEYPOINT_MAX_SIDE)
    min_distance = max(10.0, 0.02 * max(small.shape))
    src, dst, n_kp = keypoint_pairs(np.clip(small + 0.5, 0, 255).astype(np.uint8), min_distance)
    clones = []
    pad = max(8, round(0.02 * max(h, w)))
    for model, s, d in cluster_pairs(src, dst, min_distance):
        full = _scaled(model, f)
        d_full = d / f
        target = verify_dense(gray, full, d_full, pad)
        if target.sum() < 16:  # nothing verifies densely (strong resampling): the matches' hull
            target = _hull_mask(d_full, (h, w), pad // 2)
        source = _source_of(target, full)
        clones.append(Clone("keypoints", full, len(s), source, target))
    return clones, n_kp


def block_features(gray: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Per block position (top-left corner): the means of its 2 x 2 px cells, and its std.

    Cells of two pixels keep most of the noise, which a copy carries with it and an alike but
    distinct region does not: smooth gradients then do not match themselves a little further on.
    """
    cells = cv2.blur(gray, (2, 2), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    sq = cv2.blur(gray * gray, (block, block), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    mean_b = cv2.blur(gray, (block, block), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    std = np.sqrt(np.maximum(sq - mean_b * mean_b, 0.0))
    rows, cols = gray.shape[0] - block + 1, gray.shape[1] - block + 1
    offsets = range(0, block, 2)
    feats = np.stack(
        [cells[dy : dy + rows, dx : dx + cols] for dy in offsets for dx in offsets], axis=-1
    )
    return feats, std[:rows, :cols]


def block_clones(gray: np.ndarray) -> list[Clone]:
    h, w = gray.shape
    small, f = _reduced(gray, BLOCK_MAX_SIDE)
    if min(small.shape) < 4 * BLOCK:
        return []
    feats, std = block_features(small)
    rows, cols = std.shape
    keep = np.flatnonzero(std.reshape(-1) >= BLOCK_MIN_STD)
    if keep.size < 2:
        return []
    flat = feats.reshape(-1, feats.shape[-1])[keep]
    order = np.lexsort(np.round(flat).T[::-1])
    flat, pos = flat[order], keep[order]
    ys, xs = pos // cols, pos % cols
    pairs_a, pairs_b = [], []
    for k in range(1, BLOCK_NEIGHBOURS + 1):
        close = np.abs(flat[k:] - flat[:-k]).max(axis=1) <= BLOCK_TOL
        a, b = np.flatnonzero(close), np.flatnonzero(close) + k
        far = np.maximum(np.abs(ys[a] - ys[b]), np.abs(xs[a] - xs[b])) >= 2 * BLOCK
        pairs_a.append(a[far])
        pairs_b.append(b[far])
    a, b = np.concatenate(pairs_a), np.concatenate(pairs_b)
    if a.size == 0:
        return []
    dy, dx = ys[b] - ys[a], xs[b] - xs[a]
    flip = (dx < 0) | ((dx == 0) & (dy < 0))
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    dy, dx = ys[b] - ys[a], xs[b] - xs[a]
    shifts, inverse, counts = np.unique(
        np.stack([dx, dy], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    # A copy of a region of A px^2 gives about A matching block positions.
    min_count = max(4 * BLOCK * BLOCK, int(0.001 * small.size))
    clones = []
    for i in np.argsort(-counts)[:MAX_CLUSTERS]:
        if counts[i] < min_count:
            break
        sel = inverse == i
        marks = np.zeros(small.shape, np.uint8)
        marks[ys[b[sel]], xs[b[sel]]] = 1
        # Each matching position stands for the block to its lower right.
        target_small = cv2.dilate(marks, np.ones((BLOCK, BLOCK), np.uint8), anchor=(0, 0)) > 0
        target = cv2.resize(target_small.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        sx, sy = float(shifts[i][0]) / f, float(shifts[i][1]) / f
        transform = np.array([[1.0, 0.0, sx], [0.0, 1.0, sy]])
        target = target.astype(bool)
        clones.append(
            Clone("blocks", transform, int(counts[i]), _source_of(target, transform), target)
        )
    return clones


def _overlaps(clone: Clone, others: list[Clone]) -> bool:
    for other in others:
        inter = (clone.target & other.target).sum() + (clone.target & other.source).sum()
        if inter > 0.5 * max(1, clone.target.sum()):
            return True
    return False


def compute(
    source: Evidence | np.ndarray, keypoints: bool = True, blocks: bool = True
) -> ViewResult:
    ev = as_evidence(source)
    require_pixels(ev, min_side=4 * BLOCK)
    gray = ev.gray
    found: list[Clone] = []
    n_kp = 0
    if keypoints:
        kp, n_kp = keypoint_clones(gray)
        found += kp
    if blocks:
        # Block matching adds what keypoints missed; a copy both found is counted once.
        found += [c for c in block_clones(gray) if not _overlaps(c, found)]
    if not keypoints and not blocks:
        raise NotApplicable("neither keypoints nor blocks were asked for")
    h, w = gray.shape
    marked = np.zeros((h, w), bool)
    for clone in found:
        marked |= clone.source | clone.target
    if found:
        summary = f"{len(found)} copied region(s): " + "; ".join(c.describe() for c in found)
    else:
        summary = "no copied region found"
    summary += f" ({n_kp} keypoints)" if keypoints else ""
    details = {
        "n_keypoints": n_kp,
        "n_clones": len(found),
        "marked_fraction": round(float(marked.mean()), 5),
        "clones": [
            {
                "method": c.method,
                "matches": c.n_matches,
                "shift": [round(v, 1) for v in c.shift],
                "transform": np.round(c.transform, 4).tolist(),
            }
            for c in found
        ],
    }
    smooth = cv2.GaussianBlur(marked.astype(np.float32), (0, 0), 1.0)
    return ViewResult("clone", np.clip(smooth, 0.0, 1.0), summary, True, details)
