"""What the HTML and PDF reports say, as plain text: labels, formatted values, order.

Both formats show exactly these strings (each escaping them its own way), so they cannot
drift apart.
"""

from __future__ import annotations

from typing import Any

from ncl_core.report.rows import HASH_MATCH, HASH_MISMATCH, HASH_MISSING

TITLE = "NCL Forensics — forensic batch report"
DISCLAIMER = (
    "Scores and masks are the output of a statistical model. A finding is an indication for an "
    "examiner to review, not proof that an image was or was not manipulated."
)
NOT_GIVEN = "—"


def rows_by_score(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Analyzed rows by descending score, then error rows in input order."""
    ok: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for row in rows:
        scored = row.get("status") == "ok" and row.get("score") is not None
        (ok if scored else rest).append(row)
    ok.sort(key=lambda r: (-float(r["score"]), r["index"]))
    rest.sort(key=lambda r: r["index"])
    return ok + rest


def text(value: Any) -> str:
    if value is None or value == "":
        return NOT_GIVEN
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def skipped_text(row: dict[str, Any]) -> str:
    """Why a row was not analyzed: the file is not an image by its name."""
    return "Not analyzed: " + ("; ".join(row.get("warnings") or []) or "skipped")


def pictures_note(row: dict[str, Any]) -> str | None:
    """Why an analyzed image has only its thumbnail: the report was made with pictures for
    the images with a finding only, and this one has none. None when it has its pictures."""
    if row.get("status") != "ok" or row.get("image_path") or not row.get("thumbnail_path"):
        return None
    return (
        "Pictures are drawn only for the images with a finding in this report (pictures: "
        "indicated); open the file in NCL Forensics, or make the report with pictures for all "
        "images, to see its map."
    )


def score_text(row: dict[str, Any]) -> str:
    return NOT_GIVEN if row.get("score") is None else f"{float(row['score']):.3f}"


def area_text(row: dict[str, Any]) -> str:
    if row.get("area_percent") is None:
        return NOT_GIVEN
    text = f"{float(row['area_percent']):.2f} %"
    regions = row.get("regions")
    if isinstance(regions, int) and not isinstance(regions, bool):
        text += f" in {regions} region{'' if regions == 1 else 's'}"
    return text


def size_text(size: Any) -> str:
    if size is None:
        return NOT_GIVEN
    size = int(size)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"


def hash_check_text(row: dict[str, Any]) -> str:
    check = row.get("hash_check")
    if check == HASH_MATCH:
        return "match (file unchanged)"
    if check == HASH_MISMATCH:
        return "MISMATCH — THE FILE CHANGED DURING THE ANALYSIS"
    if check == HASH_MISSING:
        return "FILE MISSING at the end of the analysis"
    return text(check)


def row_alert(row: dict[str, Any]) -> str | None:
    """A line to show in red above a row's details, if any."""
    if row.get("hash_check") in (HASH_MISMATCH, HASH_MISSING):
        return f"SHA-256 re-check: {hash_check_text(row)}"
    return None


def row_items(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs describing one row, in display order."""
    dims = NOT_GIVEN
    if row.get("width") and row.get("height"):
        dims = f"{row['width']} × {row['height']} px"
    duration = NOT_GIVEN if row.get("duration_s") is None else f"{float(row['duration_s']):.2f} s"
    return [
        ("Path", text(row.get("path"))),
        ("Status", text(row.get("status"))),
        ("Error", text(row.get("error"))),
        ("Score", score_text(row)),
        ("Area at threshold", area_text(row)),
        ("Finding", text(row.get("finding"))),
        ("Warnings", "; ".join(row.get("warnings") or []) or NOT_GIVEN),
        ("Size", size_text(row.get("size_bytes"))),
        ("Format", text(row.get("format"))),
        ("Dimensions", dims),
        ("SHA-256 at start", text(row.get("sha256_start"))),
        ("SHA-256 at end", text(row.get("sha256_end"))),
        ("SHA-256 re-check", hash_check_text(row)),
        ("EXIF make", text(row.get("exif_make"))),
        ("EXIF model", text(row.get("exif_model"))),
        ("EXIF software", text(row.get("exif_software"))),
        ("EXIF date", text(row.get("exif_datetime"))),
        ("EXIF GPS present", text(row.get("exif_has_gps"))),
        ("Metadata", text(row.get("metadata"))),
        ("Content Credentials", text(row.get("content_credentials"))),
        ("Threshold", text(row.get("threshold"))),
        ("Analyzed (UTC)", text(row.get("analyzed_utc"))),
        ("Model time", duration),
        ("Device", text(row.get("device"))),
        ("Output files", ", ".join(_outputs(row)) or NOT_GIVEN),
    ]


def _outputs(row: dict[str, Any]) -> list[str]:
    keys = ("image_path", "heatmap_path", "overlay_path", "mask_path", "thumbnail_path")
    return [row[k] for k in keys if row.get(k)]


def header_items(header: dict[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs of the report's header block, in display order."""
    resumed = header.get("resumed_utc") or []
    items = [
        ("Application", f"{header.get('app', 'NCL Forensics')} {header.get('app_version', '')}"),
        ("Status", status_text(header)),
        ("Analyst", text(header.get("analyst"))),
        ("Case ID", text(header.get("case_id"))),
        ("Model", text(header.get("model_id"))),
        ("Model file SHA-256", text(header.get("model_sha256"))),
        ("Model validation", text(header.get("model_validation"))),
        ("Mode", text(header.get("mode"))),
        ("Threshold", text(header.get("threshold"))),
        ("Pictures", _pictures_text(header.get("pictures"))),
        ("Device", text(header.get("device"))),
        ("Started (UTC)", text(header.get("started_utc"))),
        ("Finished (UTC)", text(header.get("ended_utc"))),
    ]
    if resumed:
        items.append(("Resumed (UTC)", ", ".join(resumed)))
    items += [
        ("Inputs", "\n".join(header.get("inputs") or []) or NOT_GIVEN),
        (
            "Files",
            f"{header.get('n_files', 0)} found, {header.get('n_ok', 0)} analyzed, "
            f"{header.get('n_skipped', 0)} skipped (not images), "
            f"{header.get('n_errors', 0)} errors",
        ),
        ("SHA-256 mismatches", str(header.get("n_hash_mismatches", 0))),
        ("Platform", text(header.get("platform"))),
        (
            "Integrity",
            "MANIFEST.json lists every file of this folder with its SHA-256 (MANIFEST.sig "
            "signs it, where present); check the folder with: ncl-forensics verify FOLDER",
        ),
    ]
    return items


def _pictures_text(pictures: Any) -> str:
    if pictures == "indicated":
        return "for the images with a finding only (a thumbnail for every image)"
    return "for every analyzed image"


def status_text(header: dict[str, Any]) -> str:
    status = header.get("status")
    note = header.get("status_note")
    label = "complete" if status == "complete" else str(status).upper()
    return f"{label} — {note}" if note else label


def banners(header: dict[str, Any]) -> list[str]:
    """Loud lines for the top of the report: incomplete run, changed files, scan problems."""
    lines = []
    if header.get("status") != "complete":
        lines.append(f"This report is {status_text(header)}.")
    mismatches = int(header.get("n_hash_mismatches") or 0)
    if mismatches:
        lines.append(
            f"{mismatches} file(s) changed or vanished during the analysis: their SHA-256 at the "
            "end differs from the one at the start (see the rows marked MISMATCH / MISSING)."
        )
    problems = header.get("scan_problems") or []
    if problems:
        lines.append(f"{len(problems)} path(s) in the inputs could not be scanned (listed below).")
    return lines
