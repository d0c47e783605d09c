"""Combined evidence: the model's map and the classic maps fused by a small learned combiner.

Each cue is a map of the image: the model's probability (where the caller has it), error
level (ELA at the file's own quality), the noise-feature outliers, the double-quantisation
probability (JPEG files), the local grey-level spread (texture, so that the combiner can
discount what busy content alone lights up) and clone detection (regions repeated within the
image: the copy and its source at 1). Each is brought to a grid of at most ``GRID`` cells a
side and, but for clone detection, replaced by its rank within the image (0 = the least, 1 =
the most suspicious cell of that cue), so that cues of different scales and images of
different contrasts meet on one footing; a cue the image does not have (a PNG's DQ, no model)
is a constant, which moves no cell against another. The values of the cues whose maps mean the
same in every image (the model's probability, ELA, noise, DQ, clone) are features too, so that
an image with no strong cue stays dimmer. Clone detection enters by its value alone: its map
is empty where nothing is repeated, and the rank of an empty map says nothing. A logistic
regression on those features, fitted on synthetic forgeries (``fit``) and stored as plain
numbers in ``combined.json`` beside this module (one weight set with the model's map, one
without), gives each cell a probability of being manipulated; the map is that probability back
at the image's size. No position enters: the combiner sees what each cue says about a cell,
never where the cell is. A cue whose weights are all zero is not computed (the shipped weights
leave the noise features out: on the real forgeries and authentic photos they were chosen on,
that cue marked more of authentic photos and found no more).

Each cue's share of the map, reported in the summary and the details, is the sum over its
features (rank, value) of the weight times the feature's spread in this image, over the sum of
those: how much of the map's variation that cue makes. The map is a probability per cell moved
by one shift of the logit, stored with the weights, so that at 0.5 the median authentic photo
it was fitted on has a twentieth of its cells marked.

The view's image score is the mean of the top 0.5 % of its cells (as a model's). Where the
weight set stores an ``image_threshold`` (the one with the model's map does, set as a model's
calibration sets its own: the best balanced accuracy among the thresholds that call at most a
tenth of the authentic photos manipulated), the summary gives a finding of its own,
"manipulation indicated" or "none indicated", beside the model's.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ncl_core.analysis import image_score
from ncl_core.views import clone, dq, ela, noise
from ncl_core.views.base import (
    Evidence,
    NotApplicable,
    ViewResult,
    as_evidence,
    require_pixels,
)

CUES = ("model", "ela", "noise", "dq", "texture", "clone")
# Each cue's rank within the image, and for the cues whose map has a meaning across images
# (a probability, an error level on a fixed floor, a found copy) its value too: ranks say where
# in the image, values let a strong cue count more than a weak one and an image with no evidence
# stay dim. Clone detection's map is 0 except over a found copy: its rank adds nothing.
RANKED = ("model", "ela", "noise", "dq", "texture")
VALUED = ("model", "ela", "noise", "dq", "clone")
FEATURES = RANKED + tuple(f"{c}:value" for c in VALUED)
CUE_TITLES = {
    "model": "model",
    "ela": "ELA",
    "noise": "noise features",
    "dq": "double quantisation",
    "texture": "texture",
    "clone": "clone detection",
}
GRID = 256  # cells on the longer side
TEXTURE_SIDE = 5  # cells
WEIGHTS_FILE = Path(__file__).with_name("combined.json")
AUTHENTIC_SHARE = 0.05  # of the median authentic image of the fitting data, at or above 0.5


@lru_cache(maxsize=1)
def load_weights(path: str | None = None) -> dict[str, Any]:
    """The stored combiner: {"with_model": {...}, "without_model": {...}, ...}."""
    return json.loads(Path(path or WEIGHTS_FILE).read_text(encoding="utf-8"))


def _grid_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, GRID / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _to_grid(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    m = np.nan_to_num(np.asarray(m, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def ranks(m: np.ndarray) -> np.ndarray:
    """Each cell's rank within the map, in [0, 1] (ties share their mean rank)."""
    flat = m.ravel()
    if flat.size < 2 or float(flat.max() - flat.min()) <= 1e-9:
        return np.full(m.shape, 0.5, np.float32)
    values, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = (ends - (counts + 1) / 2.0) / (flat.size - 1)
    return mean_rank[inverse].reshape(m.shape).astype(np.float32)


def _texture(ev: Evidence, size: tuple[int, int]) -> np.ndarray:
    grey = _to_grid(ev.gray, size)
    k = (TEXTURE_SIDE, TEXTURE_SIDE)
    mean = cv2.blur(grey, k)
    return np.sqrt(np.maximum(cv2.blur(grey * grey, k) - mean * mean, 0.0))


def cue_maps(
    ev: Evidence,
    model_map: np.ndarray | None = None,
    given: dict[str, np.ndarray | None] | None = None,
    only: Collection[str] | None = None,
) -> tuple[dict[str, np.ndarray | None], dict[str, str]]:
    """Each cue on the grid (None where the image does not have it) and a note per cue.

    ``given``: cue maps already computed (image-sized), used instead of computing them again.
    ``only``: the cues wanted (default: all); the others (but texture) are None, and not
    computed.
    """
    given = given or {}
    size = _grid_size(*ev.image.shape[:2])
    maps: dict[str, np.ndarray | None] = {}
    notes: dict[str, str] = {}
    computers = {
        "ela": ela.compute,
        "noise": noise.compute,
        "dq": dq.compute,
        "clone": clone.compute,
    }
    for cue in CUES:
        m = given.get(cue)
        # Texture is cheap and gives the grid's shape when nothing else does: always made.
        if only is not None and cue not in only and cue != "texture":
            maps[cue] = None
            notes[cue] = "not weighed by this combiner"
            continue
        if cue == "model":
            m = model_map
        elif cue == "texture":
            m = _texture(ev, size)
        elif m is None:
            try:
                found = computers[cue](ev)
                m, notes[cue] = found.map, found.summary
            except NotApplicable as exc:
                m, notes[cue] = None, f"not applicable: {exc}"
        if m is None:
            maps[cue] = None
            notes.setdefault(cue, "not available")
            continue
        maps[cue] = m if m.shape == size else _to_grid(m, size)
    return maps, notes


def features(maps: dict[str, np.ndarray | None]) -> np.ndarray:
    """Per cell, ``FEATURES`` in order: the rank of each ``RANKED`` cue (0.5 where the image
    does not have the cue), then the values of the ``VALUED`` cues (0 where missing): (rows,
    cols, n). A cue absent from ``maps`` counts as missing."""
    shape = next(m.shape for m in maps.values() if m is not None)
    maps = {c: maps.get(c) for c in CUES}
    cols = [
        ranks(maps[c]) if maps[c] is not None else np.full(shape, 0.5, np.float32) for c in RANKED
    ]
    cols += [
        np.clip(maps[c], 0.0, 1.0) if maps[c] is not None else np.zeros(shape, np.float32)
        for c in VALUED
    ]
    return np.stack(cols, axis=-1).astype(np.float32)


def combine(x: np.ndarray, weights: dict[str, Any]) -> np.ndarray:
    w = np.array([float(weights["weights"].get(f, 0.0)) for f in FEATURES], np.float32)
    z = x @ w + np.float32(weights["bias"])
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


def shares(x: np.ndarray, weights: dict[str, Any]) -> dict[str, float]:
    """Each cue's share of the map's variation in this image (sums to 1): its features'
    weights times their spread here."""
    flat = x.reshape(-1, x.shape[-1])
    raw = {c: 0.0 for c in CUES}
    for i, f in enumerate(FEATURES):
        raw[f.split(":")[0]] += abs(float(weights["weights"].get(f, 0.0))) * float(flat[:, i].std())
    total = sum(raw.values())
    return {c: (v / total if total > 0 else 0.0) for c, v in raw.items()}


def compute(
    source: Evidence | np.ndarray,
    model_map: np.ndarray | None = None,
    weights_path: str | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> ViewResult:
    """``given``: maps of the cue views (``ela``, ``noise``, ``dq``, ``clone``) already
    computed for this image with their default settings, used instead of computing them again."""
    ev = as_evidence(source)
    require_pixels(ev, min_side=32)
    stored = load_weights(weights_path)
    have_model = model_map is not None
    weights = stored["with_model" if have_model else "without_model"]
    weighed = {f.split(":")[0] for f, v in weights["weights"].items() if float(v) != 0.0}
    maps, notes = cue_maps(ev, model_map, given, only=weighed)
    x = features(maps)
    cells = combine(x, weights)
    h, w = ev.image.shape[:2]
    full = cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR)
    np.clip(full, 0.0, 1.0, out=full)
    part = shares(x, weights)
    used = [c for c in CUES if maps[c] is not None and c in weighed]
    text = ", ".join(
        f"{CUE_TITLES[c]} {100 * part[c]:.0f} %" for c in sorted(used, key=lambda c: -part[c])
    )
    flagged = float((full >= 0.5).mean())
    score = image_score(cells)
    threshold = weights.get("image_threshold")
    finding = None if threshold is None else bool(score >= float(threshold))
    if finding is None:
        said = f"image score {score:.3f}"
    elif finding:
        said = f"manipulation indicated (image score {score:.3f}, at or above the calibrated "
        said += f"{float(threshold):.3f})"
    else:
        said = (
            f"none indicated (image score {score:.3f}, below the calibrated {float(threshold):.3f})"
        )
    summary = (
        f"{said}; {100 * flagged:.1f} % of the image at p >= 0.5; the map's share by cue: {text}"
        + ("" if have_model else " (without the model's map)")
    )
    details = {
        "image_score": round(score, 5),
        "image_threshold": threshold,
        "indicated": finding,
        "shares": {c: round(part[c], 3) for c in used},
        "weights": dict(weights["weights"]),
        "bias": weights["bias"],
        "with_model": have_model,
        "cues_missing": [c for c in CUES if c in weighed and maps[c] is None],
        "flagged_fraction": round(flagged, 5),
        "notes": {c: notes[c] for c in notes if c != "model"},
    }
    return ViewResult("combined", full, summary, True, details)


# -- fitting (offline, on synthetic forgeries) -----------------------------------------------
def fit(
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    cues: tuple[str, ...],
    l2: float = 1e-3,
    authentic_share: float = AUTHENTIC_SHARE,
) -> dict[str, Any]:
    """Logistic regression (Newton's method) of the cells' labels on their features.

    ``xs``: per image (cells, len(FEATURES)); ``ys``: (cells,) 0/1 labels; ``cues``: the cues
    whose features it may use (the others get weight 0).
    """
    names = [f for f in FEATURES if f.split(":")[0] in cues]
    idx = [FEATURES.index(f) for f in names]
    x = np.concatenate([a[:, idx] for a in xs]).astype(np.float64)
    y = np.concatenate(ys).astype(np.float64)
    a = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(a.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -30, 30)))
        grad = a.T @ (p - y) + l2 * len(y) * np.r_[beta[:-1], 0.0]
        hess = (a * (p * (1 - p))[:, None]).T @ a + l2 * len(y) * np.diag(
            np.r_[np.ones(len(idx)), 0.0]
        )
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    # The map is moved (the bias only: rankings unchanged) so that at 0.5 the median authentic
    # image among the fitting data has ``authentic_share`` of its cells marked, as a quiet
    # model calibration does (a probability per cell stays low where manipulated regions are a
    # small part of each image, and would mark nothing); without authentic images, the
    # threshold of the best pooled F1.
    z = a @ beta
    positives = float(y.sum())
    cuts = np.quantile(z, np.linspace(0.5, 0.995, 100))
    f1 = [2 * float(y[z >= t].sum()) / max(float((z >= t).sum()) + positives, 1.0) for t in cuts]
    ends = np.cumsum([len(b) for b in ys])
    per_image = np.split(z, ends[:-1])
    clean = [zi for zi, b in zip(per_image, ys) if not b.any()]
    if clean:  # image i marks at most the share above its own (1 - share) quantile
        shift = float(np.median([np.quantile(zi, 1.0 - authentic_share) for zi in clean]))
    else:
        shift = float(cuts[int(np.argmax(f1))])
    weights = {f: 0.0 for f in FEATURES}
    weights.update({f: round(float(b), 4) for f, b in zip(names, beta[:-1])})
    return {
        "weights": weights,
        "bias": round(float(beta[-1]) - shift, 4),
        "shift": round(-shift, 4),
        "fit_best_f1": round(max(f1), 4),
        "fit_f1_at_half": round(
            2 * float(y[z >= shift].sum()) / max(float((z >= shift).sum()) + positives, 1.0), 4
        ),
    }
