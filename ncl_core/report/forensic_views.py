"""Forensic views in a batch report: metadata and Content Credentials on every row, the chosen
maps on each page.

Runs in the report's worker threads, beside the model (OpenCV releases the GIL). A view that
does not apply, or fails, is a line in the row, never an error row.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ncl_core.evidence.image import Evidence
from ncl_core.inference.render import encode_heatmap_png, encode_jpeg, fit_within, heatmap_rgb
from ncl_core.views import VIEWS, ViewResult, compute_views

if TYPE_CHECKING:
    from ncl_core.report.artefacts import RowFiles

CMAP = "inferno"
DISPLAY_MAX_PX = 2048
PANE_PX = 360
JPEG_QUALITY = 90
_GAP_PX = 8


# The forensic views work on a copy of at most this many pixels: their memory and time grow
# with the pixel count (a 110 MP image with every view reached 4.7 GB and did not finish in
# 280 s), and their maps are shown at 2048 px at most. The model still sees every pixel.
VIEW_MAX_PIXELS = 16_000_000


def bounded_evidence(
    evidence: Evidence, max_pixels: int | None = None
) -> tuple[Evidence, str | None]:
    """``evidence``, or a copy scaled down to at most ``max_pixels`` for the views, and a note
    saying so. The file's bytes, hash and header are kept (the metadata and JPEG views read
    them); only the pixels the map views draw on are smaller."""
    limit = VIEW_MAX_PIXELS if max_pixels is None else max_pixels
    height, width = evidence.image.shape[:2]
    if height * width <= limit:
        return evidence, None
    scale = (limit / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small = cv2.resize(evidence.image, size, interpolation=cv2.INTER_AREA)
    note = (
        f"forensic views computed on a copy scaled down to {size[0]}x{size[1]} px "
        f"(the image has {width * height / 1e6:.0f} MP; views are bounded to "
        f"{limit / 1e6:g} MP)"
    )
    return dataclasses.replace(evidence, image=small), note


def view_as_reported(
    name: str, evidence: Evidence, params: dict[str, Any] | None = None, keep_map: bool = True
) -> ViewResult:
    """View ``name`` of ``evidence`` as a batch report makes it: on the copy of a very large
    image scaled down for views (the note added to its summary), so that the app shows the
    report's finding; its map brought back to the image's size (``keep_map``), or left out.
    A view that fails is a failed result, as in ``compute_views``."""
    bounded, note = bounded_evidence(evidence)
    result = compute_views((name,), bounded, {name: dict(params or {})})[name]
    full = result.map if keep_map else None
    if note is not None and full is not None:
        height, width = evidence.image.shape[:2]
        full = cv2.resize(full, (width, height), interpolation=cv2.INTER_LINEAR)
    summary = result.summary if note is None else f"{result.summary} ({note})"
    return dataclasses.replace(result, map=full, summary=summary)


def check_views(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in VIEWS]
    if unknown:
        raise ValueError(f"unknown view(s) {', '.join(unknown)}; choose from {', '.join(VIEWS)}")


def add_views(
    row: dict[str, Any],
    evidence: Evidence,
    files: RowFiles,
    folder: str,
    views: tuple[str, ...],
    model_map: np.ndarray | None = None,
) -> None:
    """Fill ``metadata`` and ``content_credentials`` (always) and ``views`` /
    ``views_panel_path`` (the chosen views), from the evidence the model analyzed (the same
    bytes, not read again); ``model_map``, the model's probability map, is one cue of the
    combined view. Their pictures go into ``files``."""
    if row.get("sha256_start") and evidence.file_sha256 not in (None, row["sha256_start"]):
        row["warnings"].append("the file changed between the model's analysis and the views")
    names = ("metadata", "c2pa", *(v for v in views if v not in ("metadata", "c2pa")))
    bounded, note = bounded_evidence(evidence) if views else (evidence, None)
    if note:
        row["warnings"].append(note)
    results = compute_views(names, bounded, {"combined": {"model_map": model_map}})
    row["metadata"] = results["metadata"].summary
    row["content_credentials"] = results["c2pa"].summary
    if not views:
        return
    record: dict[str, Any] = {}
    panes: list[np.ndarray] = []
    for name in views:
        result = results[name]
        entry: dict[str, Any] = {"applicable": result.applicable, "summary": result.summary}
        if result.map is not None:
            shown = fit_within(result.map, DISPLAY_MAX_PX)
            entry["map_path"] = files.add(
                f"{folder}/view-{name}.png", encode_heatmap_png(shown, CMAP)
            )
            panes.append(heatmap_rgb(fit_within(shown, PANE_PX), CMAP))
        record[name] = entry
    row["views"] = record
    if panes:
        panel = encode_jpeg(_strip(panes), JPEG_QUALITY)
        row["views_panel_path"] = files.add(f"{folder}/views.jpg", panel)


def _strip(pictures: list[np.ndarray]) -> np.ndarray:
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + _GAP_PX * (len(pictures) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for p in pictures:
        canvas[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + _GAP_PX
    return canvas


def view_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, summary) per chosen view of a row, in order, for the HTML and PDF pages."""
    out = []
    for name, entry in (row.get("views") or {}).items():
        title = VIEWS[name].title if name in VIEWS else name
        out.append((title, str(entry.get("summary", ""))))
    return out
