"""JPEG: the file's quantisation tables (quality, encoder) and a JPEG-ghost map.

Tables: read from the file, compared with the IJG (libjpeg) standard tables at every quality;
an exact match names the library family that wrote them, anything else is reported as a
camera's or editor's own tables with the nearest IJG quality.

Ghost (Farid, "Exposing digital forgeries from JPEG ghosts", 2009): the image is re-saved at
a range of lower qualities. A region that was once saved at quality q1 changes little when
re-saved at q1, while the rest changes more: at that quality it stands out as a "ghost".
Brighter means the region's compression history differs from the image's. Works when the
earlier compression sat on the same 8 px grid; resizing or cropping by an odd offset hides it.
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

# IJG libjpeg's standard tables (JPEG standard, Annex K), natural (row-major) order.
IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int32,
)
IJG_CHROMA = np.full((8, 8), 99, dtype=np.int32)
IJG_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
IJG_FAMILY = "IJG libjpeg standard tables (libjpeg / libjpeg-turbo: Pillow, OpenCV, GIMP, ImageMagick and many others)"

DEFAULT_GHOST_QUALITIES = tuple(range(30, 100, 5))
_GHOST_WINDOW_BLOCKS = 3  # ghost differences are averaged over 3 x 3 JPEG blocks
_FLAT_SPREAD = 0.5  # squared grey levels: a block this alike at every quality shows nothing


def ijg_table(quality: int, chroma: bool = False) -> np.ndarray:
    """The table libjpeg writes at ``quality`` (1-100, baseline: values clamped to 1..255)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    base = IJG_CHROMA if chroma else IJG_LUMA
    return np.clip((base * scale + 50) // 100, 1, 255)


def read_tables(data: bytes) -> tuple[dict[int, np.ndarray], dict[str, object]]:
    """Quantisation tables (id -> 8 x 8, natural order) and coding facts of a JPEG file."""
    try:
        with Image.open(io.BytesIO(data), formats=READABLE_FORMATS) as im:
            if im.format not in ("JPEG", "MPO"):
                raise NotApplicable(f"not a JPEG file ({im.format}): it has no quantisation tables")
            raw = dict(getattr(im, "quantization", None) or {})
            facts: dict[str, object] = {
                "progressive": bool(im.info.get("progressive") or im.info.get("progression")),
                "components": len(im.getbands()),
            }
            try:
                from PIL import JpegImagePlugin

                sampling = JpegImagePlugin.get_sampling(im)
                facts["subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(sampling, "other")
            except Exception:  # unusual sampling factors are not worth failing over
                facts["subsampling"] = "unknown"
    except NotApplicable:
        raise
    except Exception as exc:
        raise NotApplicable(f"the JPEG structure cannot be read ({type(exc).__name__})") from exc
    if not raw:
        raise NotApplicable("the JPEG file holds no quantisation tables")
    tables = {int(k): np.asarray(list(v), dtype=np.int32).reshape(8, 8) for k, v in raw.items()}
    return tables, facts


def estimate_quality(tables: dict[int, np.ndarray]) -> tuple[int, bool, float]:
    """Nearest IJG quality, whether the tables match it exactly, and the mean relative error."""
    luma = tables.get(0)
    if luma is None:
        luma = next(iter(tables.values()))
    chroma = tables.get(1)
    best = (50, False, float("inf"))
    for q in range(1, 101):
        ref = ijg_table(q)
        err = float(np.mean(np.abs(luma - ref) / ref))
        exact = bool(np.array_equal(luma, ref))
        if chroma is not None:
            cref = ijg_table(q, chroma=True)
            err = 0.5 * (err + float(np.mean(np.abs(chroma - cref) / cref)))
            exact = exact and bool(np.array_equal(chroma, cref))
        if exact:
            return q, True, 0.0
        if err < best[2]:
            best = (q, False, err)
    return best


def ghost_differences(gray: np.ndarray, qualities: tuple[int, ...]) -> np.ndarray:
    """Mean squared change per 8 x 8 block when re-saved at each quality: (n_q, rows, cols)."""
    g8 = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    rows, cols = g8.shape[0] // 8, g8.shape[1] // 8
    out = np.empty((len(qualities), rows, cols), np.float32)
    for i, q in enumerate(qualities):
        ok, buf = cv2.imencode(".jpg", g8, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
        sq = cv2.multiply(gray - dec, gray - dec)[: rows * 8, : cols * 8]
        blocks = cv2.resize(sq, (cols, rows), interpolation=cv2.INTER_AREA)
        k = _GHOST_WINDOW_BLOCKS
        out[i] = cv2.blur(blocks, (k, k), borderType=cv2.BORDER_REFLECT)
    return out


def ghost_map(
    gray: np.ndarray, qualities: tuple[int, ...]
) -> tuple[np.ndarray, int, float, np.ndarray]:
    """Per-block ghost strength at the quality where it is strongest.

    Returns (blocks in [0, 1], that quality, its contrast, the per-quality contrasts).
    """
    diffs = ghost_differences(gray, qualities)
    lo, hi = diffs.min(axis=0), diffs.max(axis=0)
    spread = hi - lo
    norm = (diffs - lo) / np.maximum(spread, 1e-6)
    textured = spread > _FLAT_SPREAD
    best_blocks = np.zeros(diffs.shape[1:], np.float32)
    best_q, best_c = qualities[0], -1.0
    contrasts = np.zeros(len(qualities), np.float32)
    for i, q in enumerate(qualities):
        typical = float(np.median(norm[i][textured])) if textured.any() else 0.0
        # How much lower than the image's typical block this block sits at quality q.
        ghost = np.clip((typical - norm[i]) / max(typical, 0.05), 0.0, 1.0) * textured
        contrast = float(np.quantile(ghost, 0.99))
        contrasts[i] = contrast
        if contrast > best_c:
            best_q, best_c, best_blocks = q, contrast, ghost.astype(np.float32)
    return best_blocks, best_q, best_c, contrasts


def compute(
    source: Evidence | np.ndarray,
    qualities: tuple[int, ...] | None = None,
) -> ViewResult:
    ev = as_evidence(source)
    if ev.data is None:
        raise NotApplicable("no file: JPEG tables are read from the file itself")
    tables, facts = read_tables(ev.data)
    require_pixels(ev, min_side=32)
    quality, exact, error = estimate_quality(tables)
    if exact:
        encoder = IJG_FAMILY
        tables_text = f"IJG standard tables at quality {quality}"
    else:
        encoder = "not identified: custom tables (a camera's or an editor's own)"
        tables_text = f"custom tables, nearest IJG quality ≈ {quality} (off by {100 * error:.0f} %)"
    # Ghosts are looked for below the file's own quality: at or above it every block is alike.
    candidates = tuple(q for q in (qualities or DEFAULT_GHOST_QUALITIES) if q <= quality - 5)
    h, w = ev.image.shape[:2]
    details: dict[str, object] = {
        "quality": quality,
        "tables_exact_ijg": exact,
        "table_error": round(error, 4),
        "encoder": encoder,
        "tables": {str(k): v.tolist() for k, v in sorted(tables.items())},
        **facts,
    }
    if len(candidates) < 2:
        summary = f"{tables_text}; quality too low to look for earlier, lower-quality compression"
        details["ghost_quality"] = None
        return ViewResult("jpeg", np.zeros((h, w), np.float32), summary, True, details)
    blocks, ghost_q, contrast, contrasts = ghost_map(ev.gray, candidates)
    strong = float((blocks >= 0.5).mean())
    summary = (
        f"{tables_text}; JPEG ghost strongest at quality {ghost_q}: {100 * strong:.1f} % of "
        f"the image compresses differently from the rest (contrast {contrast:.2f})"
    )
    details.update(
        ghost_quality=int(ghost_q),
        ghost_contrast=round(contrast, 3),
        ghost_fraction=round(strong, 5),
        ghost_contrasts={str(q): round(float(c), 3) for q, c in zip(candidates, contrasts)},
    )
    return ViewResult("jpeg", upsample_blocks(blocks, 8, h, w), summary, True, details)
