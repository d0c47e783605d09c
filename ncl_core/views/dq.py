"""Double quantisation: a per-8x8-block probability that a JPEG's region was compressed once
where the rest of the image was compressed twice (aligned double JPEG compression).

A photo saved as JPEG, edited and saved again carries two quantisations in its DCT
coefficients: the histogram of each frequency's coefficients shows the first one as a
periodic pattern of full and empty bins. A region pasted in from elsewhere (or re-rendered by
the edit) went through the second compression only, and its coefficients fill the bins the
rest leaves empty. After Bianchi and Piva ("Image forgery localization via block-grained
analysis of JPEG artifacts", IEEE TIFS 2012), per frequency:

* the coefficients the file holds are the DCT of its luma on the file's 8 px grid divided by
  the file's quantisation step (the luma is decoded as libjpeg outputs it, so rounding them
  recovers the stored integers for every step above 1);
* the distribution a once-compressed image would have is taken from the same luma shifted by
  4 px (off the grid, the first compression's trace is gone): quantised at the file's step it
  is the single-compression model, quantised first at a candidate step and then at the file's
  it is the double-compression model;
* the first step is the candidate whose mixture of the two models explains the file's
  histogram best (EM on the mixture weight), kept only where it explains it clearly better
  than single compression alone;
* each block's log-likelihood ratio (single against double) is summed over the kept
  frequencies, averaged over neighbouring blocks, and turned into a probability with the
  share of doubly compressed blocks as the prior.

Brighter means the block looks compressed once in an image otherwise compressed twice. Only
JPEG files; a second compression on a grid shifted from the first (a crop between the saves)
or a first quality the second hides (a step that divides the file's) leaves no trace here.
Coefficients are computed from the decoded luma rather than read from the entropy-coded
stream: it needs no native decoder beyond Pillow's libjpeg, handles progressive and
arithmetic-coded files alike, and agrees with the stored integers wherever a step exceeds 1.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from ncl_core.data.io import READABLE_FORMATS
from ncl_core.views.base import (
    Evidence,
    NotApplicable,
    ViewResult,
    as_evidence,
    require_pixels,
    upsample_blocks,
)
from ncl_core.views.jpeg import read_tables

# Zig-zag order of the 8 x 8 DCT (row, col), JPEG standard.
ZIGZAG = sorted(
    ((r, c) for r in range(8) for c in range(8)),
    key=lambda rc: (rc[0] + rc[1], rc[1] if (rc[0] + rc[1]) % 2 == 0 else rc[0]),
)
FREQUENCIES = 15  # AC coefficients 1..15 in zig-zag order
MAX_FIRST_STEP = 64
HIST_HALF = 50  # histogram bins -50..50 (coefficients beyond are clipped into the end bins)
MIN_GAIN = 0.01  # nats per coefficient the double model must gain over single compression
MIN_DOUBLE_SHARE = 0.3  # of blocks: in a doubly compressed image most blocks show it
MIN_FREQUENCIES = 2
MIN_NONZERO = 0.05  # a frequency whose coefficients are this rarely non-zero says nothing
LLR_CLIP = 3.0  # per coefficient, nats
WINDOW_BLOCKS = 3
CALIBRATION_BLOCKS = 60_000  # blocks sampled to model the distributions
# The coefficients of at most this many pixels (a centred window on the 8 x 8 grid) are
# computed: the rest of a larger file stays blank, so memory does not grow with the image.
MAX_PIXELS = 16_000_000
_EPS = 1e-4


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return d.astype(np.float32)


_D = _dct_matrix()


def block_dct(luma: np.ndarray) -> np.ndarray:
    """Orthonormal 8 x 8 DCT (JPEG's) of each whole block: (rows, cols, 8, 8)."""
    rows, cols = luma.shape[0] // 8, luma.shape[1] // 8
    b = luma[: rows * 8, : cols * 8].astype(np.float32) - 128.0
    b = b.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3)
    return _D @ b @ _D.T


def read_luma(data: bytes) -> tuple[np.ndarray, int]:
    """The file's luma as libjpeg decodes it (no colour conversion), and its EXIF orientation."""
    try:
        with Image.open(io.BytesIO(data), formats=READABLE_FORMATS) as im:
            im.draft("L", im.size)
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            luma = np.asarray(im.convert("L"))  # uint8: float copies are made of a window
    except Exception as exc:
        raise NotApplicable(f"the JPEG cannot be decoded ({type(exc).__name__})") from exc
    return luma, orientation


def _oriented(blocks: np.ndarray, orientation: int) -> np.ndarray:
    """The block grid turned as the EXIF orientation turns the image (as Pillow's
    ``ImageOps.exif_transpose`` does)."""
    turn = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.T,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].T,
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return np.ascontiguousarray(turn(blocks) if turn else blocks)


def _hist(values: np.ndarray) -> np.ndarray:
    idx = np.clip(np.rint(values), -HIST_HALF, HIST_HALF).astype(np.int64) + HIST_HALF
    return np.bincount(idx.ravel(), minlength=2 * HIST_HALF + 1).astype(np.float64)


def _fit_first_step(
    observed: np.ndarray, calibration: np.ndarray, q2: int
) -> tuple[int, float, float, np.ndarray] | None:
    """Best first step for one frequency: (step, mixture weight, gain per coefficient, per-bin
    log-likelihood ratio single/double), or None where double compression explains nothing."""
    h = _hist(observed)
    n = h.sum()
    p0 = _hist(calibration / q2)
    p0 = (p0 + _EPS * p0.sum()) / (p0.sum() * (1 + _EPS * len(p0)))
    base = float((h * np.log(p0)).sum())
    steps = [q1 for q1 in range(1, MAX_FIRST_STEP + 1) if q1 != q2 and q2 % q1 != 0]
    if not steps:  # no trace possible: each first step is re-quantised exactly by the second
        return None
    p1 = np.stack([_hist(np.rint(calibration / q1) * q1 / q2) for q1 in steps])
    p1 = (p1 + _EPS * p1.sum(axis=1, keepdims=True)) / (
        p1.sum(axis=1, keepdims=True) * (1 + _EPS * p1.shape[1])
    )
    alpha = np.full((len(steps), 1), 0.5)
    for _ in range(30):  # EM for the mixture weight, every candidate at once
        mix = alpha * p1 + (1 - alpha) * p0
        alpha = np.clip((h * alpha * p1 / mix).sum(axis=1, keepdims=True) / n, 1e-3, 1 - 1e-3)
    mix = alpha * p1 + (1 - alpha) * p0
    gains = ((h * np.log(mix)).sum(axis=1) - base) / n
    i = int(np.argmax(gains))
    best = (
        steps[i],
        float(alpha[i, 0]),
        float(gains[i]),
        np.clip(np.log(p0 / p1[i]), -LLR_CLIP, LLR_CLIP),
    )
    if best[2] < MIN_GAIN or best[1] < MIN_DOUBLE_SHARE:
        return None
    return best


def dq_blocks(luma: np.ndarray, q_table: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Per-block probability of single compression in a doubly compressed image, and the
    frequencies that carried evidence (empty: no trace of aligned double compression)."""
    coeffs = block_dct(luma)
    shifted = block_dct(luma[4:, 4:])
    rows, cols = coeffs.shape[:2]
    cal = shifted.reshape(-1, 8, 8)
    if len(cal) > CALIBRATION_BLOCKS:
        cal = cal[np.random.default_rng(0).choice(len(cal), CALIBRATION_BLOCKS, replace=False)]
    obs_sample = coeffs.reshape(-1, 8, 8)
    if len(obs_sample) > CALIBRATION_BLOCKS:
        pick = np.random.default_rng(1).choice(len(obs_sample), CALIBRATION_BLOCKS, replace=False)
        obs_sample = obs_sample[pick]
    llr = np.zeros((rows, cols), np.float32)
    used: list[dict] = []
    for r, c in ZIGZAG[1 : FREQUENCIES + 1]:
        q2 = int(q_table[r, c])
        if q2 < 2:
            continue
        x = np.rint(obs_sample[:, r, c] / q2)
        if float((x != 0).mean()) < MIN_NONZERO:
            continue
        fit = _fit_first_step(x, cal[:, r, c], q2)
        if fit is None:
            continue
        q1, alpha, gain, table = fit
        idx = np.clip(np.rint(coeffs[:, :, r, c] / q2), -HIST_HALF, HIST_HALF).astype(np.int64)
        llr += table[idx + HIST_HALF].astype(np.float32)
        used.append(
            {"frequency": [r, c], "second_step": q2, "first_step": q1,
             "double_share": round(alpha, 3), "gain": round(float(gain), 4)}
        )  # fmt: skip
    if len(used) < MIN_FREQUENCIES:
        return np.zeros((rows, cols), np.float32), []
    k = WINDOW_BLOCKS
    smooth = cv2.blur(llr, (k, k), borderType=cv2.BORDER_REFLECT) * k  # sqrt(k*k) evidence
    # The prior: the share of blocks the double model takes (a block with no evidence, such as
    # a flat one, gets the share of single compression, not an even chance).
    share = float(np.clip(np.mean([u["double_share"] for u in used]), 0.05, 0.95))
    smooth += np.float32(np.log((1 - share) / share))
    return (1.0 / (1.0 + np.exp(-np.clip(smooth, -30, 30)))).astype(np.float32), used


def analyzed_window(height: int, width: int) -> tuple[int, int, int, int]:
    """(y, x, height, width) of the part of the file whose coefficients are computed: all of
    it up to ``MAX_PIXELS``, else a centred window of that size on the 8 x 8 grid."""
    full_h, full_w = height // 8 * 8, width // 8 * 8
    if full_h * full_w <= MAX_PIXELS:
        return 0, 0, full_h, full_w
    scale = (MAX_PIXELS / (full_h * full_w)) ** 0.5
    wh, ww = int(full_h * scale) // 8 * 8, int(full_w * scale) // 8 * 8
    return (full_h - wh) // 16 * 8, (full_w - ww) // 16 * 8, wh, ww


def compute(source: Evidence | np.ndarray) -> ViewResult:
    ev = as_evidence(source)
    if ev.data is None:
        raise NotApplicable("no file: DCT coefficients are read from a JPEG file")
    tables, _facts = read_tables(ev.data)
    require_pixels(ev, min_side=32)
    luma, orientation = read_luma(ev.data)
    if min(luma.shape) < 64:
        raise NotApplicable("image too small for coefficient statistics (needs 64 px a side)")
    q_table = tables.get(0)
    if q_table is None:
        q_table = next(iter(tables.values()))
    y0, x0, wh, ww = analyzed_window(*luma.shape)
    window, used = dq_blocks(luma[y0 : y0 + wh, x0 : x0 + ww], q_table)
    blocks = np.zeros((luma.shape[0] // 8, luma.shape[1] // 8), np.float32)
    blocks[y0 // 8 : y0 // 8 + window.shape[0], x0 // 8 : x0 // 8 + window.shape[1]] = window
    blocks = _oriented(blocks, orientation)
    h, w = ev.image.shape[:2]
    fh, fw = (luma.shape[1], luma.shape[0]) if orientation in (5, 6, 7, 8) else luma.shape
    if (fh, fw) == (h, w):
        dq_map = upsample_blocks(blocks, 8, h, w)
    else:  # a scaled-down copy of the image: the file's blocks resized to it, one step
        dq_map = cv2.resize(blocks, (w, h), interpolation=cv2.INTER_NEAREST)
    details: dict[str, object] = {"frequencies": used, "orientation": orientation}
    if (wh, ww) != (luma.shape[0] // 8 * 8, luma.shape[1] // 8 * 8):
        details["window_xywh"] = [x0, y0, ww, wh]
    if not used:
        summary = (
            "no trace of aligned double JPEG compression (compressed once, or the first "
            "compression is hidden by the second or sat on another grid): the map is blank"
        )
        details["double_compressed"] = False
        return ViewResult("dq", dq_map, summary + _window_note(details), True, details)
    steps = sorted({u["first_step"] for u in used[:3]})
    strong = float((blocks >= 0.9).mean())
    share = float(np.mean([u["double_share"] for u in used]))
    summary = (
        f"aligned double JPEG compression in {len(used)} of {FREQUENCIES} frequencies "
        f"(first steps {', '.join(map(str, steps))}, about {100 * share:.0f} % of blocks "
        f"fit it): {100 * strong:.1f} % of the image looks compressed once (p >= 0.9)"
    )
    details.update(double_compressed=True, single_fraction=round(strong, 5))
    return ViewResult("dq", dq_map, summary + _window_note(details), True, details)


def _window_note(details: dict[str, object]) -> str:
    if "window_xywh" not in details:
        return ""
    x, y, w, h = details["window_xywh"]  # type: ignore[misc]
    return (
        f" [computed on the centred {w} x {h} px of the file (at most "
        f"{MAX_PIXELS / 1e6:g} MP); the rest of the map is blank]"
    )
