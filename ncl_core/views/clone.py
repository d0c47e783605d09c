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
    if pad <= 0:
        return mask.astype(bool)
    # Grown by ``pad`` px: a distance transform (linear time for any pad), over the hull's
    # bounding box widened by the farthest the 3 x 3 chamfer distance reaches within ``pad``
    # (its straight step costs 0.955 px). The shortest chamfer path between two pixels stays
    # in their bounding box, so the crop gives what the whole image would, in far less time.
    x, y, w, h = cv2.boundingRect(hull)
    reach = int(np.ceil(pad / 0.955)) + 2
    x0, y0 = max(x - reach, 0), max(y - reach, 0)
    x1, y1 = min(x + w + reach, shape[1]), min(y + h + reach, shape[0])
    grown = np.zeros(shape, bool)
    if x0 >= x1 or y0 >= y1 or not mask[y0:y1, x0:x1].any():
        return grown  # the hull lies off the image: nothing to grow from
    crop = 1 - mask[y0:y1, x0:x1]
    grown[y0:y1, x0:x1] = cv2.distanceTransform(crop, cv2.DIST_L2, 3) <= pad
    return grown


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


def _row_order(values: np.ndarray) -> np.ndarray:
    """``np.lexsort(np.round(values).T[::-1])``: the rows sorted by their rounded first
    column, then the second, ...; stable. Grey levels (0..255) round to bytes, and each row's
    bytes, read as big-endian 64-bit words, sort as the row does: two sort keys, not sixteen."""
    rounded = np.round(values)
    if rounded.size == 0 or rounded.min() < 0 or rounded.max() > 255:
        return np.lexsort(rounded.T[::-1])
    n, m = rounded.shape
    packed = np.zeros((n, -(-m // 8) * 8), np.uint8)
    packed[:, :m] = rounded
    words = packed.view(">u8")
    return np.lexsort(words.T[::-1])


def _close_rows(columns: np.ndarray, k: int) -> np.ndarray:
    """Rows ``i`` (of the features ``columns``, one per row) whose every feature is within
    ``BLOCK_TOL`` of row ``i + k``'s: ``max |difference| <= BLOCK_TOL``, tested one feature at a
    time on the rows still in the running. The last features first: rows sorted by the first
    ones mostly share those with their neighbours, so the last ones rule out most rows."""
    last = columns[-1]
    rows = np.flatnonzero(np.abs(last[k:] - last[:-k]) <= BLOCK_TOL)
    for feature in columns[-2::-1]:
        if rows.size == 0:
            break
        rows = rows[np.abs(feature[rows + k] - feature[rows]) <= BLOCK_TOL]
    return rows


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
    order = _row_order(flat)
    pos = keep[order]
    # One feature per row, in sorted order: the neighbour tests below then read contiguous rows.
    columns = flat.T[:, order]
    ys, xs = pos // cols, pos % cols
    pairs_a, pairs_b = [], []
    for k in range(1, BLOCK_NEIGHBOURS + 1):
        a = _close_rows(columns, k)
        b = a + k
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
    # The distinct (dx, dy), in the order of np.unique(axis=0), from one integer key each.
    span = int(dy.max() - dy.min()) + 1
    keys, inverse, counts = np.unique(
        (dx - dx.min()) * span + (dy - dy.min()), return_inverse=True, return_counts=True
    )
    shifts = np.stack([keys // span + dx.min(), keys % span + dy.min()], axis=1)
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
