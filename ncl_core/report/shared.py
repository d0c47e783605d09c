"""Regions shared by two images of the report: found, drawn, and shown in index.html and
report.pdf.

After the rows are written, ``find_shared_regions`` compares the analyzed images with each
other (``ncl_core.views.case_match``) and returns what goes into the report's header (report.json):

- ``shared_regions``: ``{source, target, source_index, target_index, source_box, target_box,
  matches, scale, rotation_deg, picture_path}``; names are the rows' paths, indexes their row
  numbers, boxes ``[x, y, w, h]`` in the files' pixels (EXIF orientation applied, as analyzed);
  ``picture_path`` (the two images side by side, boxes drawn) for the first ``MAX_PICTURES``;
- ``duplicate_images``: ``{a, b, relation, matches}``, the same picture twice ("identical
  file": the same bytes; "same picture": resized or recompressed), never a shared region;
- ``case_match``: how the search went (images compared, time, complete or why not).

A file is read again for matching; one whose bytes are no longer those analyzed is left out
(its row's hash check says so). Matching is bounded by ``budget_s`` (by default a minute plus
a second per image): past it, the remaining images or pairs are left out, and the header says
so.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ncl_core.errors import ReportWriteError
from ncl_core.evidence.image import Evidence, load_evidence
from ncl_core.inference.render import fit_within, save_jpeg
from ncl_core.report.artefacts import side_by_side
from ncl_core.report.rows import STATUS_OK, display_path
from ncl_core.views.case_match import match_case

SHARED_DIR = "images/shared"
MAX_PICTURES = 200  # pairs drawn; report.json lists them all
PANE_PX = 560  # longest side of each image in a pair's picture
JPEG_QUALITY = 88
_GAP_PX = 10
_PDF_MAX_H_MM = 80.0  # a pair's picture in report.pdf
_BOX_RGB = (255, 0, 170)  # magenta: stands out on photos and on the report's white


def default_budget(n_images: int) -> float:
    """Seconds allowed for matching ``n_images``: a minute, plus a second per image."""
    return 60.0 + 1.0 * n_images


@dataclass
class SharedRegions:
    """``header``: the report header's fields; ``hashes``: the SHA-256 of the bytes read for
    matching, by row path (the end-of-batch hash check need not read those files again)."""

    header: dict[str, Any]
    hashes: dict[str, str] = field(default_factory=dict)


def find_shared_regions(
    out_dir: Path,
    rows: list[dict[str, Any]],
    files: list[Path],
    cancel: Callable[[], bool] | None = None,
    budget_s: float | None = None,
    on: bool = True,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> SharedRegions:
    """Compare the analyzed rows' images; the header fields above, pictures written.

    ``files``: the real paths of the inputs (a row keeps the path as text). ``on=False``
    (not asked for): empty lists, ``case_match`` None, pictures of an earlier run removed.
    ``emit`` gets a ``phase`` event ("shared regions") when matching starts.
    """
    real = {display_path(p): p for p in files}
    ok = [r for r in rows if r.get("status") == STATUS_OK]
    by_name = {r["path"]: r for r in ok}
    budget = default_budget(len(ok)) if budget_s is None else budget_s
    if not on or (cancel is not None and cancel()):
        _write_pictures(out_dir, [], real, {})
        note = "not run: the batch was cancelled"
        summary = {"n_images": len(ok), "complete": False, "note": note} if on else None
        return SharedRegions(_fields([], [], summary))
    if emit is not None:
        emit({"type": "phase", "phase": "shared regions", "total": len(ok)})
    hashes: dict[str, str] = {}

    def loader(row: dict[str, Any]) -> Callable[[], Evidence]:
        def load() -> Evidence:
            evidence = load_evidence(real.get(row["path"], Path(row["path"])))
            hashes[row["path"]] = evidence.sha256
            if row.get("sha256_start") and evidence.sha256 != row["sha256_start"]:
                raise ValueError("the file changed since it was analyzed")
            return evidence

        return load

    found = match_case([(r["path"], loader(r)) for r in ok], time_budget_s=budget, cancel=cancel)
    regions = []
    for region in found.shared_regions:
        region = {
            "source": region["source"],
            "target": region["target"],
            "source_index": by_name[region["source"]]["index"],
            "target_index": by_name[region["target"]]["index"],
            **{k: v for k, v in region.items() if k not in ("source", "target")},
            "picture_path": None,
        }
        regions.append(region)
    _write_pictures(out_dir, regions, real, {r["path"]: r.get("sha256_start") for r in ok})
    return SharedRegions(_fields(regions, found.duplicates, found.summary()), hashes)


def _fields(
    regions: list[dict[str, Any]],
    duplicates: list[dict[str, Any]],
    summary: dict[str, Any] | None,
) -> dict[str, Any]:
    return {"shared_regions": regions, "duplicate_images": duplicates, "case_match": summary}


def _write_pictures(
    out_dir: Path,
    regions: list[dict[str, Any]],
    real: dict[str, Path],
    sha256: dict[str, str | None],
) -> None:
    try:
        _draw_pairs(out_dir, regions, real, sha256)
    except OSError as exc:
        shown = display_path(out_dir)
        raise ReportWriteError(f"cannot write the report in {shown}: {exc}") from exc


def _draw_pairs(
    out_dir: Path,
    regions: list[dict[str, Any]],
    real: dict[str, Path],
    sha256: dict[str, str | None],
) -> None:
    """The first ``MAX_PICTURES`` pairs side by side (the images read once more; a file
    whose bytes changed since it was analyzed is not drawn); pictures of an earlier run
    removed."""
    folder = out_dir / SHARED_DIR
    if folder.is_dir() and not folder.is_symlink():
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and entry.name.startswith("pair-"):
                os.unlink(entry.path)
    if not regions:
        return
    folder.mkdir(parents=True, exist_ok=True)
    cache: OrderedDict[str, np.ndarray | None] = OrderedDict()

    def picture(name: str) -> np.ndarray | None:
        if name not in cache:
            try:
                evidence = load_evidence(real.get(name, Path(name)))
                same = sha256.get(name) in (None, evidence.sha256)
                cache[name] = evidence.image if same else None
            except Exception:  # noqa: BLE001 - a file gone since: the pair stays listed
                cache[name] = None
            while len(cache) > 6:
                cache.popitem(last=False)
        return cache[name]

    for number, region in enumerate(regions[:MAX_PICTURES], start=1):
        a, b = picture(region["source"]), picture(region["target"])
        if a is None or b is None:
            continue
        rel = f"{SHARED_DIR}/pair-{number:04d}.jpg"
        panes = [_boxed(a, region["source_box"]), _boxed(b, region["target_box"])]
        save_jpeg(out_dir / rel, side_by_side(panes, _GAP_PX), JPEG_QUALITY, durable=False)
        region["picture_path"] = rel


def _boxed(image: np.ndarray, box: list[int]) -> np.ndarray:
    """The image fitted within ``PANE_PX`` with ``box`` (original pixels) drawn on it."""
    pane = np.ascontiguousarray(fit_within(image, PANE_PX)).copy()
    scale = pane.shape[1] / image.shape[1]
    x, y, w, h = (round(v * scale) for v in box)
    thickness = max(2, round(max(pane.shape[:2]) / 160))
    cv2.rectangle(pane, (x, y), (x + max(w, 1), y + max(h, 1)), _BOX_RGB, thickness)
    return pane


# -- what the reports say ----------------------------------------------------------------------

TITLE = "Regions shared between images"
EXPLAIN = (
    "Each pair shows the same content in two images of this report (local features that "
    "agree on one shift, turn and scale): a region may have been copied from one into the "
    "other. The order of a pair is the input order; it does not tell which way a region was "
    "copied. Two photos of one scene, logo or document show shared content too."
)


_RELATIONS = {
    "identical file": "The same file twice (identical bytes)",
    "same picture": "The same picture twice (resized or recompressed)",
}


def box_text(box: list[int]) -> str:
    x, y, w, h = box
    return f"{w}×{h} px at ({x}, {y})"


def region_lines(region: dict[str, Any]) -> tuple[str, str, str]:
    """Caption lines of one pair: the first image and its box, the second, the matches."""
    first = f"{region['source']}: {box_text(region['source_box'])}"
    second = f"{region['target']}: {box_text(region['target_box'])}"
    how = f"{region['matches']} matching keypoints"
    if region.get("scale") is not None:
        how += f", scale {float(region['scale']):.2f}×"
    turned = round(float(region.get("rotation_deg") or 0.0))
    if turned:
        how += f", turned {turned}°"
    return first, second, how


def status_lines(header: dict[str, Any]) -> list[str]:
    """How the search went, and the same pictures found (one line each)."""
    summary = header.get("case_match") or {}
    lines = []
    n = summary.get("n_images")
    if n is not None:
        lines.append(
            f"{n} analyzed image(s) compared in {summary.get('seconds', 0)} s; "
            f"{len(header.get('shared_regions') or [])} shared region(s) found."
        )
    if summary.get("note"):
        lines.append(f"Incomplete: {summary['note']}.")
    for skipped in summary.get("skipped") or []:
        lines.append(f"Not compared: {skipped['name']}: {skipped['reason']}")
    for dup in header.get("duplicate_images") or []:
        how = _RELATIONS.get(dup["relation"], dup["relation"])
        lines.append(f"{how}: {dup['a']} = {dup['b']}")
    return lines


def html_section(
    header: dict[str, Any], esc: Callable[[Any], str], src: Callable[[str], str]
) -> str:
    """The HTML section (empty when matching did not run); ``esc``/``src`` escape text and
    relative paths as the rest of index.html does."""
    if not header.get("case_match"):
        return ""
    parts = [f'<section id="shared-regions"><h2>{esc(TITLE)}</h2>']
    parts.append(f'<p class="disclaimer">{esc(EXPLAIN)}</p>')
    parts += [f"<p>{esc(line)}</p>" for line in status_lines(header)]
    for number, region in enumerate(header.get("shared_regions") or [], start=1):
        first, second, how = region_lines(region)
        picture = ""
        if region.get("picture_path"):
            link = src(region["picture_path"])
            picture = (
                f'<a href="{link}"><img src="{link}" alt="pair {number}" loading="lazy" '
                'style="max-width: 100%; max-height: 480px"></a>'
            )
        parts.append(
            f'<figure class="item" id="pair-{number}">{picture}<figcaption>{number}. '
            f"{esc(first)}<br>{esc(second)}<br>{esc(how)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "".join(parts)


def pdf_section(pdf: Any, header: dict[str, Any], out_dir: Path) -> None:
    """The PDF section (nothing when matching did not run): each pair's picture and lines.

    ``pdf`` is report.pdf's document (``ncl_core.report.pdf``): ``para``, ``line`` and fpdf2.
    """
    if not header.get("case_match"):
        return
    import io

    from PIL import Image

    pdf.ln(3)
    pdf.para(TITLE, size=11, bold=True)
    pdf.para(EXPLAIN, size=8, color=(80, 80, 80))
    for line in status_lines(header):
        pdf.para(line, size=8)
    for number, region in enumerate(header.get("shared_regions") or [], start=1):
        first, second, how = region_lines(region)
        width = height = 0.0
        path = out_dir / region["picture_path"] if region.get("picture_path") else None
        if path is not None and path.is_file():
            with Image.open(path) as im:
                width = min(pdf.epw, _PDF_MAX_H_MM * im.width / im.height)
                height = width * im.height / im.width
        if pdf.get_y() + height + 16 > pdf.page_break_trigger:
            pdf.add_page()
        else:
            pdf.ln(2)
        if height:
            y = pdf.get_y()
            pdf.image(io.BytesIO(path.read_bytes()), x=pdf.l_margin, y=y, w=width, h=height)
            pdf.set_y(y + height + 1)
        pdf.para(f"{number}. {first}", size=8)
        pdf.para(f"    {second}", size=8)
        pdf.para(f"    {how}", size=8)
