"""One report row and its picture files, drawn in a worker thread while the model runs on.

The pictures are drawn from the ``Evidence`` the model analyzed (``ncl_core.evidence.image``): the
file is not read or decoded again. OpenCV releases the GIL for colouring, resizing and
encoding, so these jobs overlap with inference instead of adding to it. ``draw_row`` only
computes (the row and its files' bytes, ``RowFiles``); the files are written apart, so that
a row can be drawn by whichever thread gets to it, even twice, and written once.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.data.io import ImageReadError, read_image_info
from ncl_core.evidence.hashing import sha256_file
from ncl_core.evidence.image import Evidence, load_evidence
from ncl_core.evidence.jpeg_copy import jpeg_without_metadata
from ncl_core.fsutil import atomic_write_bytes
from ncl_core.inference.finding import analysis_finding
from ncl_core.inference.render import colorbar_rgb, encode_jpeg, fit_within, mask_png, save_png
from ncl_core.report.forensic_views import add_views
from ncl_core.report.pictures import (
    colour,
    fitted_size,
    grey_png,
    levels,
    mask_overlay,
    palette_png,
    preview_to,
)
from ncl_core.report.rows import (
    SKIPPED_NOT_IMAGE,
    STATUS_SKIPPED,
    display_path,
    empty_row,
)
from ncl_core.settings import DEFAULT_PICTURES

IMAGES_DIR = "images"
COLORBAR_FILE = "colorbar.png"
CMAP = "inferno"
DISPLAY_MAX_PX = 2048  # display copy, overlay (and heatmap); the mask keeps full resolution
PANEL_PANE_PX = 480  # each of the three pictures in the PDF's panel: ~200 dpi at 60 mm
HEATMAP_MIN_PX = 512  # the heatmap of a map made at a lower resolution (resize mode) is this big
JPEG_QUALITY = 90
OVERLAY_ALPHA = 0.45
_PANEL_GAP_PX = 8


def item_folder(index: int) -> str:
    """Folder (relative to the report) holding the pictures of row ``index``."""
    return f"{IMAGES_DIR}/{index:05d}"


def write_colorbar(out_dir: Path) -> str:
    """The colour-scale legend shared by every heatmap; returns its relative path."""
    (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    save_png(out_dir / IMAGES_DIR / COLORBAR_FILE, colorbar_rgb(256, 16, CMAP))
    return f"{IMAGES_DIR}/{COLORBAR_FILE}"


class RowFiles:
    """The picture files of a row, by path relative to the report folder, kept in memory until
    ``write``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, rel: str, data: bytes) -> str:
        self.files[rel] = data
        return rel

    def write(self, out_dir: Path) -> None:
        """Each file atomically, not fsync'd one by one: the row writer syncs the folder
        before the row naming them."""
        for rel, data in self.files.items():
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out_dir / rel, data, durable=False)


def draw_row(
    index: int,
    path: Path,
    evidence: Evidence | None,
    result: Analysis | AnalysisError,
    thumbnail_px: int,
    known_sha256: str | None = None,
    views: tuple[str, ...] = (),
    pictures: str = DEFAULT_PICTURES,
) -> tuple[dict[str, Any], RowFiles]:
    """The report row for one analyzed file and its picture files, drawn when the analysis
    succeeded (with ``pictures`` "indicated", only its thumbnail unless its finding is
    "manipulation indicated"); nothing is written (``RowFiles.write``).

    ``evidence`` is what the model analyzed (None when the file could not be read): the
    header, size, pictures, metadata summary and the forensic ``views`` chosen all come from
    it. Problems with the *input* (unreadable, vanished) end up in the row.
    """
    files = RowFiles()
    row = empty_row(index, display_path(path))
    unreadable = None
    if result.ok and evidence is None:
        # An analysis that came without its evidence (a predictor that keeps no pixels).
        try:
            evidence = load_evidence(path)
        except (ImageReadError, OSError) as exc:
            unreadable = exc
    if evidence is not None:
        row["size_bytes"] = evidence.size_bytes
        info = evidence.info
    else:
        # An unreadable file keeps size None: the analysis error already says why.
        with contextlib.suppress(OSError):
            row["size_bytes"] = path.stat().st_size
        try:  # the header of a file that failed to decode may still be readable
            info = read_image_info(path)
        except (ImageReadError, OSError):
            info = None
    if info is not None:
        row.update(format=info.format, width=info.width, height=info.height)
        row.update(
            exif_make=info.exif.get("make"),
            exif_model=info.exif.get("model"),
            exif_software=info.exif.get("software"),
            exif_datetime=info.exif.get("datetime"),
            exif_has_gps=info.has_gps,
        )
    sha = evidence.file_sha256 if evidence is not None else None
    row["sha256_start"] = result.sha256 or known_sha256 or sha or _sha256_or_none(path)

    if not result.ok:
        assert isinstance(result, AnalysisError)
        row["error"] = result.message
        return row, files
    assert isinstance(result, Analysis)
    if not math.isfinite(float(result.score)):
        # A broken model file can output NaN; that is this image's error, not the batch's.
        row["error"] = f"{row['path']}: the model returned an invalid score ({result.score})"
        return row, files
    found = analysis_finding(result)
    row.update(
        status="ok",
        width=result.width,
        height=result.height,
        format=result.image_format or row["format"],
        score=float(result.score),
        area_percent=100.0 * result.area_fraction,
        threshold=float(result.threshold),
        finding=found.text,
        regions=found.regions,
        warnings=list(result.warnings),
        duration_s=float(result.duration_s),
        analyzed_utc=result.started_utc,
        device=result.device,
    )
    if evidence is None:
        row["warnings"].append(f"pictures not written: the file could not be read ({unreadable})")
        return row, files
    folder = item_folder(index)
    if pictures != "indicated" or found.indicated:
        row.update(_draw_pictures(evidence, result, files, folder, thumbnail_px, row["warnings"]))
    else:
        row.update(_draw_thumbnail(evidence, result, files, folder, thumbnail_px))
    add_views(row, evidence, files, folder, views, result.probability)
    return row, files


def build_skipped_row(index: int, path: Path, known_sha256: str | None = None) -> dict[str, Any]:
    """The row of a file that is not an image by its name: listed and hashed, never decoded."""
    row = empty_row(index, display_path(path))
    with contextlib.suppress(OSError):
        row["size_bytes"] = path.stat().st_size
    row["sha256_start"] = known_sha256 or _sha256_or_none(path)
    row.update(status=STATUS_SKIPPED, warnings=[SKIPPED_NOT_IMAGE])
    return row


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _write_pictures(
    evidence: Evidence,
    analysis: Analysis,
    out_dir: Path,
    folder: str,
    thumbnail_px: int,
    warnings: list[str],
) -> dict[str, str]:
    """``_draw_pictures``, written into ``out_dir``."""
    files = RowFiles()
    paths = _draw_pictures(evidence, analysis, files, folder, thumbnail_px, warnings)
    files.write(out_dir)
    return paths


def _draw_pictures(
    evidence: Evidence,
    analysis: Analysis,
    files: RowFiles,
    folder: str,
    thumbnail_px: int,
    warnings: list[str],
) -> dict[str, str]:
    """Mask, display copy, heatmap, overlay, thumbnail and PDF panel into ``files``; relative
    paths by field.

    Drawn with ``ncl_core.report.pictures``: the mask is the pixels ``ncl_core.inference.render``
    draws, the scaled pictures are within a few grey levels of its area interpolation; the
    heatmap has the map's own resolution (``heatmap_px``).
    """
    prob = np.asarray(analysis.probability, dtype=np.float32)
    rgb = evidence.image
    resized = rgb.shape[:2] != prob.shape
    if resized:
        rgb = cv2.resize(rgb, (prob.shape[1], prob.shape[0]), interpolation=cv2.INTER_AREA)
        warnings.append("display copy resized to the probability map's size")
    threshold = analysis.threshold

    flagged = mask_png(analysis.mask)  # the mask file, at full resolution
    shown_size = fitted_size(*prob.shape, DISPLAY_MAX_PX)
    shown = preview_to(rgb, shown_size)
    if shown_size == prob.shape[::-1]:
        prob_shown, flagged_shown = prob, flagged
    else:
        prob_shown = preview_to(prob, shown_size, antialias=False)
        flagged_shown = mask_png(prob_shown >= threshold)
    over = mask_overlay(shown, flagged_shown, OVERLAY_ALPHA)
    # The PDF panel's panes, drawn at their own size from the scaled-down image and map; the
    # thumbnail comes from the overlay's pane.
    pane_size = fitted_size(*shown.shape[:2], PANEL_PANE_PX)
    image_pane = preview_to(shown, pane_size)
    prob_pane = preview_to(prob_shown, pane_size, antialias=False)
    panes = [
        image_pane,
        colour(levels(prob_pane), CMAP),
        mask_overlay(image_pane, mask_png(prob_pane >= threshold), OVERLAY_ALPHA),
    ]
    thumb_from = panes[2] if thumbnail_px <= PANEL_PANE_PX else over
    thumb = preview_to(thumb_from, fitted_size(*thumb_from.shape[:2], thumbnail_px))
    heat_size = fitted_size(*prob_shown.shape, heatmap_px(analysis))
    prob_heat = preview_to(prob_shown, heat_size, antialias=False)

    own = None if resized or shown is not rgb else own_jpeg(evidence)
    encoders = {
        "mask_path": ("mask.png", lambda: grey_png(flagged)),
        "image_path": ("image.jpg", lambda: own or encode_jpeg(shown, JPEG_QUALITY)),
        "heatmap_path": ("heatmap.png", lambda: palette_png(levels(prob_heat), CMAP)),
        "overlay_path": ("overlay.jpg", lambda: encode_jpeg(over, JPEG_QUALITY)),
        "thumbnail_path": ("thumb.jpg", lambda: encode_jpeg(thumb, JPEG_QUALITY)),
        "panel_path": ("panel.jpg", lambda: encode_jpeg(panel_rgb(panes), JPEG_QUALITY)),
    }
    return {
        field: files.add(f"{folder}/{name}", encode()) for field, (name, encode) in encoders.items()
    }


def own_jpeg(evidence: Evidence) -> bytes | None:
    """The display copy as the evidence's own JPEG image without its metadata
    (``jpeg_without_metadata``), where that is exactly what was analyzed: a JPEG read without
    any conversion (no EXIF rotation, CMYK, second frame: ``Evidence.warnings``) whose frame
    has the analyzed size. None otherwise: the pixels are then encoded."""
    info = evidence.info
    if evidence.data is None or info is None or info.format != "JPEG" or evidence.warnings:
        return None
    copied = jpeg_without_metadata(evidence.data)
    height, width = evidence.image.shape[:2]
    if copied is None or copied[1] != (width, height):
        return None
    return copied[0]


def _draw_thumbnail(
    evidence: Evidence, analysis: Analysis, files: RowFiles, folder: str, thumbnail_px: int
) -> dict[str, str]:
    """Only the thumbnail (the image with its overlay, as ``_draw_pictures`` draws it)."""
    prob = np.asarray(analysis.probability, dtype=np.float32)
    size = fitted_size(*prob.shape, thumbnail_px)
    image = preview_to(evidence.image, size)
    marked = mask_png(preview_to(prob, size, antialias=False) >= analysis.threshold)
    thumb = mask_overlay(image, marked, OVERLAY_ALPHA)
    return {"thumbnail_path": files.add(f"{folder}/thumb.jpg", encode_jpeg(thumb, JPEG_QUALITY))}


def heatmap_px(analysis: Analysis) -> int:
    """The longer side of ``heatmap.png``: the display size, but for a map the model made at
    its input size and scaled up to the image (resize mode), that size (at least
    ``HEATMAP_MIN_PX``): more pixels would only repeat the same values, at the cost of
    encoding them (a 1 MP heatmap takes about 9 ms, a 512 px one 3 ms)."""
    settings = analysis.settings or {}
    side = settings.get("input_size")
    if settings.get("mode") == "resize" and isinstance(side, int) and side > 0:
        return min(DISPLAY_MAX_PX, max(HEATMAP_MIN_PX, side))
    return DISPLAY_MAX_PX


def panel_rgb(pictures: list[np.ndarray], pane_px: int = PANEL_PANE_PX) -> np.ndarray:
    """Pictures side by side on white, each scaled to fit ``pane_px``, centred vertically."""
    return side_by_side([fit_within(p, pane_px) for p in pictures], _PANEL_GAP_PX)


def side_by_side(panes: list[np.ndarray], gap: int) -> np.ndarray:
    """RGB panes in a row on white, ``gap`` px apart, each centred vertically."""
    height = max(p.shape[0] for p in panes)
    width = sum(p.shape[1] for p in panes) + gap * (len(panes) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for pane in panes:
        y = (height - pane.shape[0]) // 2
        canvas[y : y + pane.shape[0], x : x + pane.shape[1]] = pane
        x += pane.shape[1] + gap
    return canvas


def remove_stale_folders(out_dir: Path, keep: set[str]) -> None:
    """Delete picture folders of rows that were never written (a crash mid-image).

    Only real folders named like ours (five or more digits) are touched, and inside them only
    regular files: a symbolic link is never followed (it could lead into evidence), and
    ``report_links`` refuses a report folder holding one before this runs.
    """
    images = out_dir / IMAGES_DIR
    if images.is_symlink() or not images.is_dir():
        return
    for entry in os.scandir(images):
        rel = f"{IMAGES_DIR}/{entry.name}"
        if rel in keep or not (entry.name.isdigit() and len(entry.name) >= 5):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        children = list(os.scandir(entry.path))
        if any(not c.is_file(follow_symlinks=False) for c in children):
            continue  # not a folder this tool wrote: left alone
        for child in children:
            os.unlink(child.path)
        os.rmdir(entry.path)


def report_links(out_dir: Path, limit: int = 3) -> list[str]:
    """Symbolic links anywhere inside a report folder (relative paths, at most ``limit``).

    The tool writes, replaces and deletes files in its report folder; through a link it could
    reach files elsewhere (evidence), so a folder holding one is refused.
    """
    found: list[str] = []
    for folder, dirs, files in os.walk(out_dir, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            if path.is_symlink():
                found.append(path.relative_to(out_dir).as_posix())
                if len(found) >= limit:
                    return found
    return found
