"""Regions shared by two images of a case: local features with geometric verification.

A spliced region is often taken from another photo of the same case. ``match_case`` compares
the images of a case with each other and reports every pair that shows the same content:

1. **Features, once per image** (``image_features``): SIFT keypoints on a grey copy whose
   longest side is at most ``max_side`` px, spread over the picture (an 8 x 8 grid takes
   turns, so a small pasted region in a plain part of the image keeps its keypoints even
   when a busy part has thousands), RootSIFT descriptors stored as bytes. Only the features
   are kept, never the pixels.
2. **Candidate pairs from one index** (not every pair): every descriptor of the case goes into
   one FLANN k-d tree with its image's number; each descriptor's nearest neighbours in *other*
   images vote for those images when they are clearly nearer than the farthest neighbour
   found. Each image keeps its few best-voted partners, and the votes of a pair are its
   tentative matches. (With no more images than that, every pair is a candidate and its
   matches are the mutual nearest neighbours that pass Lowe's ratio test.)
3. **Geometric verification** of the candidates, best-voted first: a RANSAC similarity (shift,
   turn, uniform scale) with a tight inlier distance (1.5 px: a copy keeps its keypoints
   where they were, two photos of one face or one street do not). A region is reported when
   at least ``MIN_INLIERS`` distinct keypoints agree, spread over an area (not a line, not
   one spot), at a plausible scale. Its boxes surround the agreeing keypoints, padded by
   twice their median size (keypoints at a region's edge see past it and rarely match). Up
   to three regions per pair (the inliers of one are taken out before the next is searched).

Two files with the same bytes, and two versions of the same picture (resized, recompressed:
the transform lays one frame onto the other and the matches cover a good part of both), are
a *same image* relation, listed apart in ``duplicates``, not as shared regions. Files with
identical bytes are matched once (a region shared with one is listed for each copy).

What it finds: the same content in two images, copied as it was, scaled (0.2x to 5x) or
turned. What it cannot tell: which way a region was copied (``source`` is the image earlier in
the input, ``target`` the later one), or a copy from two photos of one static scene, logo or
document: they show the same content too. Flat regions (a pasted piece of sky) and small ones
(well under a tenth of the longest side of the copy features are made on) carry too few
keypoints; regions warped in perspective, mirrored, or retouched after pasting are not found.

``time_budget_s`` bounds the whole run: features of the remaining images are skipped, or the
remaining candidates left unverified, and ``CaseMatch.complete`` is False with a note.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "CaseMatch",
    "ImageFeatures",
    "image_features",
    "match_case",
    "match_features",
]

MAX_SIDE = 1024  # features are computed on a copy whose longest side is at most this
MAX_FEATURES = 2000  # keypoints kept per image
_GRID = 8  # cells per side that take turns giving keypoints
RATIO = 0.8  # Lowe's ratio test for a pair's matches
VOTE_RATIO = 0.7  # a neighbour votes when nearer than this times the farthest one found
NEIGHBOURS = 8  # neighbours looked up in the index per descriptor (own image included)
_TREES, _CHECKS = 2, 16  # FLANN k-d trees, and leaves visited per search
CANDIDATES = 4  # best-voted partners of each image that are verified
MIN_VOTES = 3  # fewer votes than this: not a candidate
MIN_INLIERS = 10  # matches agreeing on one similarity transform (within REPROJ_PX)
MIN_SPREAD_PX = 6.0  # smallest spread (standard deviation, feature pixels) of the inliers
MAX_REGIONS = 3  # regions searched per pair
# The same picture (resized, recompressed): the transform lays one image's frame onto the
# other's (intersection over union) and the matches cover a good part of both.
SAME_FRAME = 0.8
SAME_IMAGE_COVER = 0.25
# RANSAC inlier distance, feature pixels: a copy keeps its keypoints within a pixel or so;
# two photos of one (not flat, not rigid) subject, such as a face, do not.
REPROJ_PX = 1.5
_SCALE_RANGE = (0.2, 5.0)  # plausible scales of a copied region
_BOX_PAD = 2.0  # boxes are padded by this times the inliers' median keypoint size


@dataclass(frozen=True, eq=False)
class ImageFeatures:
    """One image's keypoints and descriptors (feature coordinates = original x ``scale``)."""

    name: str
    width: int  # original pixels
    height: int
    scale: float
    points: np.ndarray  # N x 2 float32, feature coordinates
    sizes: np.ndarray  # N float32, keypoint diameters in feature pixels
    descriptors: np.ndarray  # N x 128 uint8, RootSIFT x 255
    digest: str | None = None  # SHA-256 of the file (or of the pixels): same bytes, same image

    def __len__(self) -> int:
        return int(self.points.shape[0])


@dataclass
class CaseMatch:
    """What ``match_case`` found. ``shared_regions`` and ``duplicates`` are JSON-ready."""

    shared_regions: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # name, reason
    n_images: int = 0
    n_candidates: int = 0  # pairs proposed by the index
    n_verified: int = 0  # of those, pairs verified in time
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds by step
    complete: bool = True
    note: str | None = None

    def summary(self) -> dict[str, Any]:
        """How the search went, for a report's header."""
        return {
            "n_images": self.n_images,
            "n_candidates": self.n_candidates,
            "n_verified": self.n_verified,
            "seconds": round(self.seconds, 2),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "complete": self.complete,
            "note": self.note,
            "skipped": list(self.skipped),
        }


# -- features -------------------------------------------------------------------------------


def _grey(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def _spread_keypoints(keypoints: Sequence[cv2.KeyPoint], shape: tuple[int, int], limit: int):
    """At most ``limit`` keypoints, the grid's cells taking turns (strongest first in each)."""
    if len(keypoints) <= limit:
        return list(keypoints)
    height, width = shape
    xy = np.array([k.pt for k in keypoints], dtype=np.float32)
    response = np.array([k.response for k in keypoints], dtype=np.float32)
    cx = np.minimum((xy[:, 0] * _GRID / width).astype(int), _GRID - 1)
    cy = np.minimum((xy[:, 1] * _GRID / height).astype(int), _GRID - 1)
    cell = cy * _GRID + cx
    order = np.lexsort((-response, cell))  # by cell, strongest first within it
    sorted_cells = cell[order]
    starts = np.searchsorted(sorted_cells, np.arange(_GRID * _GRID))
    rank = np.empty(len(keypoints), dtype=np.int64)
    rank[order] = np.arange(len(keypoints)) - starts[sorted_cells]
    keep = np.lexsort((-response, rank))[:limit]  # every cell's best, then every second best…
    return [keypoints[i] for i in keep]


def image_features(
    image: np.ndarray,
    name: str = "<image>",
    max_side: int = MAX_SIDE,
    max_features: int = MAX_FEATURES,
    digest: str | None = None,
) -> ImageFeatures:
    """SIFT keypoints and RootSIFT descriptors of an RGB (or grey) uint8 image."""
    grey = _grey(image)
    height, width = grey.shape[:2]
    scale = min(1.0, max_side / max(height, width, 1))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT_create()
    keypoints = _spread_keypoints(sift.detect(grey, None), grey.shape[:2], max_features)
    descriptors = None
    if keypoints:
        keypoints, descriptors = sift.compute(grey, keypoints)
    if descriptors is None or not keypoints:
        points = np.zeros((0, 2), np.float32)
        return ImageFeatures(
            name,
            width,
            height,
            scale,
            points,
            np.zeros(0, np.float32),
            np.zeros((0, 128), np.uint8),
            digest,
        )
    # RootSIFT: L1-normalised, square-rooted (Hellinger distance as L2), stored as bytes.
    desc = descriptors.astype(np.float32)
    desc /= desc.sum(axis=1, keepdims=True) + 1e-7
    desc = np.sqrt(desc)
    return ImageFeatures(
        name=name,
        width=width,
        height=height,
        scale=scale,
        points=np.array([k.pt for k in keypoints], dtype=np.float32),
        sizes=np.array([k.size for k in keypoints], dtype=np.float32),
        descriptors=np.clip(desc * 255.0 + 0.5, 0, 255).astype(np.uint8),
        digest=digest,
    )


def _load(source: Any) -> tuple[np.ndarray, str | None]:
    """Pixels and a digest of a path, an ``Evidence``, an array, or a function giving one."""
    if callable(source):
        source = source()
    if isinstance(source, np.ndarray):
        return source, hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
    if isinstance(source, (str, os.PathLike)):
        from ncl_core.evidence.image import load_evidence

        source = load_evidence(Path(os.fspath(source)))
    image = source.image
    digest = getattr(source, "file_sha256", None) or getattr(source, "sha256", None)
    return image, digest


def _workers(workers: int | None) -> int:
    return max(1, workers or min(4, os.cpu_count() or 1))


# -- matching -------------------------------------------------------------------------------


def match_case(
    images: Iterable[Any],
    *,
    max_side: int = MAX_SIDE,
    max_features: int = MAX_FEATURES,
    time_budget_s: float | None = None,
    cancel: Callable[[], bool] | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> CaseMatch:
    """Pairs of ``images`` that share a region, and the same pictures among them.

    ``images``: paths, or ``(name, source)`` pairs where ``source`` is a path, an
    ``Evidence``, an RGB array, or a function returning one of those (called in a worker
    thread; what it raises skips the image, with its message as the reason). A file that cannot be read is skipped (``CaseMatch.skipped``)
    and the rest are matched. ``time_budget_s`` bounds the run (reading and features count);
    ``cancel`` is polled between images and pairs. ``on_progress(done, total)`` follows the
    feature extraction.
    """
    t0 = time.monotonic()
    deadline = None if time_budget_s is None else t0 + float(time_budget_s)
    items = [(str(x), x) if not isinstance(x, tuple) else (str(x[0]), x[1]) for x in images]
    result = CaseMatch(n_images=len(items))

    def extract(item: tuple[str, Any]) -> ImageFeatures | str | None:
        name, source = item
        if (deadline is not None and time.monotonic() > deadline) or (cancel and cancel()):
            return None
        try:
            image, digest = _load(source)
            return image_features(image, name, max_side, max_features, digest)
        except Exception as exc:  # noqa: BLE001 - one unreadable file never stops the case
            return str(exc) or type(exc).__name__

    features: list[ImageFeatures] = []
    n_late = 0
    threads = _workers(workers)
    with ThreadPoolExecutor(threads, thread_name_prefix="ncl-case-match") as pool:
        for done, ((name, _), found) in enumerate(zip(items, pool.map(extract, items)), 1):
            if isinstance(found, ImageFeatures):
                features.append(found)
            elif found is None:
                n_late += 1
            else:
                result.skipped.append({"name": name, "reason": found})
            if on_progress is not None:
                on_progress(done, len(items))
    result.timings["features"] = time.monotonic() - t0
    if n_late:
        result.complete = False
        result.note = f"{n_late} image(s) not compared: time budget spent or cancelled"
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    matched = match_features(features, time_budget_s=remaining, cancel=cancel, workers=workers)
    result.shared_regions = matched.shared_regions
    result.duplicates = matched.duplicates
    result.n_candidates, result.n_verified = matched.n_candidates, matched.n_verified
    result.timings.update(matched.timings)
    if not matched.complete:
        result.complete = False
        result.note = "; ".join(filter(None, [result.note, matched.note]))
    result.seconds = time.monotonic() - t0
    return result


def match_features(
    features: Sequence[ImageFeatures],
    *,
    time_budget_s: float | None = None,
    cancel: Callable[[], bool] | None = None,
    candidates: int = CANDIDATES,
    workers: int | None = None,
) -> CaseMatch:
    """``match_case`` on features already computed (in the input order)."""
    t0 = time.monotonic()
    deadline = None if time_budget_s is None else t0 + float(time_budget_s)
    result = CaseMatch(n_images=len(features))
    # Same bytes: matched once, through the first of them.
    first_of: dict[str, int] = {}
    copies: dict[int, list[int]] = {}
    unique: list[int] = []
    for i, feat in enumerate(features):
        if feat.digest is not None and feat.digest in first_of:
            keep = first_of[feat.digest]
            copies.setdefault(keep, []).append(i)
            result.duplicates.append(
                {
                    "a": features[keep].name,
                    "b": feat.name,
                    "relation": "identical file",
                    "matches": None,
                }
            )
            continue
        if feat.digest is not None:
            first_of[feat.digest] = i
        unique.append(i)

    pairs = _candidate_pairs(features, unique, candidates, _workers(workers))
    result.timings["index"] = time.monotonic() - t0
    result.n_candidates = len(pairs)
    found: list[tuple[int, int, dict[str, Any]]] = []
    for n, (i, j, matches) in enumerate(pairs):
        if (deadline is not None and time.monotonic() > deadline) or (cancel and cancel()):
            result.complete = False
            result.note = (
                f"{len(pairs) - n} of {len(pairs)} candidate pair(s) not verified: "
                "time budget spent or cancelled"
            )
            break
        result.n_verified += 1
        for region in _verify_pair(features[i], features[j], matches):
            found.append((i, j, region))
    result.timings["verify"] = time.monotonic() - t0 - result.timings["index"]

    same = {(i, j) for i, j, region in found if region["same_image"]}
    for i, j, region in sorted(found, key=lambda f: (f[0], f[1], -f[2]["matches"])):
        if region.pop("same_image"):
            result.duplicates.append(
                {
                    "a": features[i].name,
                    "b": features[j].name,
                    "relation": "same picture",
                    "matches": region["matches"],
                }
            )
        if (i, j) in same:  # the rest of one picture is not a region shared with itself
            continue
        # A region shared with a file is shared with every byte-identical copy of it too.
        for a in [i, *copies.get(i, [])]:
            for b in [j, *copies.get(j, [])]:
                entry = {"source": features[a].name, "target": features[b].name, **region}
                result.shared_regions.append(entry)
    result.seconds = time.monotonic() - t0
    return result


Candidate = tuple[int, int, "np.ndarray | None"]


def _candidate_pairs(
    features: Sequence[ImageFeatures], unique: list[int], per_image: int, workers: int = 1
) -> list[Candidate]:
    """Pairs ``(i, j, matches)`` (i < j) worth verifying, most votes first.

    One FLANN index holds every descriptor; ``matches`` are the index pairs (into i, into j)
    that voted, in both directions. With few images every pair is a candidate and its matches
    are found by comparing the two images' descriptors (``matches`` None).
    """
    usable = [i for i in unique if len(features[i]) >= MIN_INLIERS]
    if len(usable) < 2:
        return []
    if len(usable) <= per_image + 1:
        return [(a, b, None) for n, a in enumerate(usable) for b in usable[n + 1 :]]
    sizes = np.array([len(features[i]) for i in usable])
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    desc = np.concatenate([features[i].descriptors for i in usable]).astype(np.float32)
    owner = np.repeat(np.arange(len(usable)), sizes)
    index = cv2.flann_Index(desc, {"algorithm": 1, "trees": _TREES})  # FLANN_INDEX_KDTREE
    k = min(NEIGHBOURS, len(desc))
    chunks = np.array_split(np.arange(len(desc)), max(1, min(workers, len(desc) // 10_000)))

    def search(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return index.knnSearch(desc[rows], k, params={"checks": _CHECKS})

    with ThreadPoolExecutor(len(chunks), thread_name_prefix="ncl-case-index") as pool:
        found = list(pool.map(search, chunks))
    neighbours = np.concatenate([f[0] for f in found]).astype(np.int64)
    dist = np.concatenate([f[1] for f in found])
    other = owner[neighbours]
    # A neighbour votes when clearly nearer than the farthest one found (squared distances),
    # once per descriptor and image: the nearest of that image.
    votes = (other != owner[:, None]) & (dist < (VOTE_RATIO**2) * dist[:, -1:])
    q, col = np.nonzero(votes)  # row-major: each descriptor's nearer neighbours come first
    n = len(usable)
    _, first = np.unique(q * n + other[q, col], return_index=True)
    q, t = q[first], neighbours[q[first], col[first]]
    a, b = owner[q], owner[t]
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (a, b), 1)
    matrix = matrix + matrix.T
    chosen: dict[tuple[int, int], int] = {}
    for m in range(n):
        row = matrix[m]
        row[m] = 0
        for other_image in np.argsort(-row, kind="stable")[:per_image]:
            if row[other_image] < MIN_VOTES:
                break
            chosen[(min(m, int(other_image)), max(m, int(other_image)))] = int(row[other_image])
    # The votes as matches of each chosen pair, the lower image first.
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    lo_at, hi_at = np.where(swap, t, q), np.where(swap, q, t)
    pair_key = lo * n + hi
    order = np.argsort(pair_key, kind="stable")
    pair_key = pair_key[order]
    ranked = sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))
    result: list[Candidate] = []
    for (i, j), _votes in ranked:
        start, stop = np.searchsorted(pair_key, [i * n + j, i * n + j + 1])
        rows = order[start:stop]
        matches = np.stack([lo_at[rows] - offset[i], hi_at[rows] - offset[j]], axis=1)
        result.append((usable[i], usable[j], np.unique(matches, axis=0)))
    return result


def _mutual_matches(a: ImageFeatures, b: ImageFeatures) -> np.ndarray:
    """Index pairs (into a, into b) of mutual nearest neighbours passing the ratio test."""
    if len(a) < 2 or len(b) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    da, db = _unit(a.descriptors), _unit(b.descriptors)
    # Squared distances of unit vectors: 2 - 2 cos; one matrix product for both directions.
    d2 = np.maximum(0.0, 2.0 - 2.0 * (da @ db.T))
    rows, cols = np.arange(len(a)), np.arange(len(b))
    ab = d2.argmin(axis=1)
    ba = d2.argmin(axis=0)
    best_ab, best_ba = d2[rows, ab], d2[ba, cols]
    # The second nearest: the nearest once the nearest is put out of reach.
    d2[rows, ab] = np.inf
    second_ab = d2.min(axis=1)
    d2[rows, ab] = best_ab
    d2[ba, cols] = np.inf
    second_ba = d2.min(axis=0)
    ratio2 = RATIO * RATIO
    ok_ab = best_ab < ratio2 * second_ab
    ok_ba = best_ba < ratio2 * second_ba
    idx = np.nonzero(ok_ab & (ba[ab] == rows))[0]
    idx = idx[ok_ba[ab[idx]]]
    return np.stack([idx, ab[idx]], axis=1)


def _unit(descriptors: np.ndarray) -> np.ndarray:
    x = descriptors.astype(np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-7)


def _verify_pair(
    a: ImageFeatures, b: ImageFeatures, matches: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Regions of ``a`` seen in ``b``: each a similarity transform many matches agree on.

    ``matches``: index pairs (into a, into b) to verify; by default a's and b's mutual nearest
    neighbours that pass the ratio test.
    """
    if matches is None:
        matches = _mutual_matches(a, b)
    regions: list[dict[str, Any]] = []
    while len(matches) >= MIN_INLIERS and len(regions) < MAX_REGIONS:
        pa, pb = a.points[matches[:, 0]], b.points[matches[:, 1]]
        model, mask = cv2.estimateAffinePartial2D(
            pa,
            pb,
            method=cv2.RANSAC,
            ransacReprojThreshold=REPROJ_PX,
            maxIters=2000,
            confidence=0.995,
            refineIters=10,
        )
        if model is None or mask is None:
            break
        inliers = mask.ravel().astype(bool)
        if inliers.sum() < MIN_INLIERS:
            break
        region = _region(a, b, matches[inliers], model)
        if region is not None:
            regions.append(region)
        matches = matches[~inliers]
    return regions


def _spread(points: np.ndarray) -> float:
    """The smaller standard deviation of a point cloud (0 for points on a line)."""
    unique = np.unique(np.round(points, 1), axis=0)
    if len(unique) < 3:
        return 0.0
    cov = np.cov(unique.T)
    return float(math.sqrt(max(0.0, float(np.linalg.eigvalsh(cov)[0]))))


def _box(feat: ImageFeatures, idx: np.ndarray) -> list[int]:
    """[x, y, w, h] in original pixels around the keypoints ``idx`` (padded by their size)."""
    pts = feat.points[idx]
    pad = _BOX_PAD * float(np.median(feat.sizes[idx]))
    x0, y0 = (pts.min(axis=0) - pad) / feat.scale
    x1, y1 = (pts.max(axis=0) + pad) / feat.scale
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(feat.width, math.ceil(x1)), min(feat.height, math.ceil(y1))
    return [int(x0), int(y0), int(max(1, x1 - x0)), int(max(1, y1 - y0))]


def _frame_overlap(a: ImageFeatures, b: ImageFeatures, model: np.ndarray) -> float:
    """Intersection over union of ``b``'s frame and ``a``'s frame laid onto ``b`` by ``model``."""
    corners = np.array([[0, 0], [a.width, 0], [a.width, a.height], [0, a.height]], np.float32)
    mapped = (corners * a.scale) @ model[:, :2].T.astype(np.float32) + model[:, 2]
    mapped = (mapped / b.scale).astype(np.float32)
    frame = np.array([[0, 0], [b.width, 0], [b.width, b.height], [0, b.height]], np.float32)
    inter, _ = cv2.intersectConvexConvex(mapped, frame)
    union = abs(cv2.contourArea(mapped)) + b.width * b.height - inter
    return float(inter / union) if union > 0 else 0.0


def _region(
    a: ImageFeatures, b: ImageFeatures, inliers: np.ndarray, model: np.ndarray
) -> dict[str, Any] | None:
    """The region that ``inliers`` (agreeing on ``model``) show, or None when not credible."""
    scale = float(math.hypot(model[0, 0], model[1, 0]))
    if not _SCALE_RANGE[0] <= scale <= _SCALE_RANGE[1]:
        return None
    # Keypoints found twice (same place, another orientation) count once.
    ia = np.unique(inliers[:, 0])
    ib = np.unique(inliers[:, 1])
    n = min(len(ia), len(ib), len(np.unique(np.round(a.points[ia]), axis=0)))
    if n < MIN_INLIERS:
        return None
    if min(_spread(a.points[ia]), _spread(b.points[ib])) < MIN_SPREAD_PX:
        return None
    box_a, box_b = _box(a, ia), _box(b, ib)
    cover_a = box_a[2] * box_a[3] / max(1, a.width * a.height)
    cover_b = box_b[2] * box_b[3] / max(1, b.width * b.height)
    same_image = (
        min(cover_a, cover_b) >= SAME_IMAGE_COVER and _frame_overlap(a, b, model) >= SAME_FRAME
    )
    # Scale between the originals: the features were made on copies scaled by a.scale, b.scale.
    true_scale = scale * a.scale / b.scale
    rotation = math.degrees(math.atan2(model[1, 0], model[0, 0]))
    return {
        "source_box": box_a,
        "target_box": box_b,
        "matches": int(n),
        "scale": round(true_scale, 3),
        "rotation_deg": round(rotation, 1),
        "same_image": bool(same_image),
    }
