"""Report rows and the two streamed tables (results.csv, results.jsonl).

``results.jsonl`` is the report's journal: a ``header`` record, then one ``row`` record per
input file, each written, flushed and fsync'd as its image finishes. A resumed report is
rebuilt from it. ``results.csv`` carries the same rows for spreadsheets as a plain table (one
line of column names, then one line per file), so that any CSV reader opens it as it is; the
header (application, model, hashes, parameters, analyst, case) is ``report.json`` beside it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ncl_core.fsutil import atomic_write_bytes

RESULTS_CSV = "results.csv"
RESULTS_JSONL = "results.jsonl"
REPORT_JSON = "report.json"
REPORT_FORMAT_VERSION = 1

# Row statuses: analyzed; could not be read or analyzed; not an image by its name (not read).
STATUS_OK, STATUS_ERROR, STATUS_SKIPPED = "ok", "error", "skipped"
SKIPPED_NOT_IMAGE = "skipped: not an image"

# Column order of results.csv; results.jsonl rows hold the same keys.
ROW_FIELDS: tuple[str, ...] = (
    "index",
    "path",
    "name",
    "size_bytes",
    "format",
    "width",
    "height",
    "sha256_start",
    "sha256_end",
    "hash_check",
    "exif_make",
    "exif_model",
    "exif_software",
    "exif_datetime",
    "exif_has_gps",
    "metadata",
    "content_credentials",
    "score",
    "area_percent",
    "regions",
    "threshold",
    "finding",
    "warnings",
    "status",
    "error",
    "duration_s",
    "analyzed_utc",
    "device",
    "image_path",
    "heatmap_path",
    "overlay_path",
    "mask_path",
    "thumbnail_path",
    "panel_path",
    "views",
    "views_panel_path",
)
ARTEFACT_FIELDS: tuple[str, ...] = tuple(f for f in ROW_FIELDS if f.endswith("_path"))

HASH_MATCH = "match"
HASH_MISMATCH = "MISMATCH"
HASH_MISSING = "FILE MISSING"
HASH_UNCHECKED = "not checked"

# Characters that make a spreadsheet treat a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The same after a line break inside a cell: some spreadsheets start a new cell line there.
_FORMULA_AFTER_BREAK = re.compile(r"([\r\n])(?=[=+\-@\t])")


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text that can always be written as UTF-8.

    File names that are not valid UTF-8 (raw bytes on Linux) show their odd bytes as
    ``\\xNN`` instead of making the report crash.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def empty_row(index: int, path: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    row.update(
        index=index, path=path, name=os.path.basename(path), warnings=[], status=STATUS_ERROR
    )
    return row


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = " | ".join(str(v) for v in value)
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        # A leading apostrophe keeps Excel/LibreOffice from running a hostile EXIF field or
        # file name as a formula, at the start and after every line break in the cell.
        # results.jsonl keeps the exact text.
        value = _FORMULA_AFTER_BREAK.sub(r"\1'", value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def _csv_line(values: Iterable[Any], quoting: int = csv.QUOTE_ALL) -> str:
    # Every field of a row quoted: a carriage return in a name or a tag then stays inside its
    # cell instead of starting a new row (minimal quoting only looks for the "\n" terminator).
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=quoting).writerow(values)
    return buf.getvalue()


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """The whole results.csv: column names, then rows (the header is in report.json)."""
    return _csv_line(ROW_FIELDS, csv.QUOTE_MINIMAL) + "".join(csv_row(r) for r in rows)


def report_json_text(header: dict[str, Any]) -> str:
    """report.json: the report's header block (the CSV's companion)."""
    return json.dumps(header, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def csv_row(row: dict[str, Any]) -> str:
    return _csv_line(_csv_cell(row.get(field)) for field in ROW_FIELDS)


def jsonl_record(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def jsonl_text(header: dict[str, Any], rows: Iterable[dict[str, Any]]) -> str:
    """The whole results.jsonl: header record, then row records."""
    lines = [jsonl_record({"record": "header", **header})]
    lines += [jsonl_record({"record": "row", **row}) for row in rows]
    return "".join(lines)


def write_tables(
    out_dir: Path, header: dict[str, Any], rows: list[dict[str, Any]], with_csv: bool = True
) -> None:
    """Rewrite the tables and report.json in full, atomically (at start, on resume, at the end)."""
    atomic_write_bytes(out_dir / RESULTS_JSONL, jsonl_text(header, rows).encode("utf-8"))
    atomic_write_bytes(out_dir / REPORT_JSON, report_json_text(header).encode("utf-8"))
    if with_csv:
        atomic_write_bytes(out_dir / RESULTS_CSV, csv_text(rows).encode("utf-8"))


def append_row(out_dir: Path, row: dict[str, Any], with_csv: bool = True) -> None:
    """Append one row to the tables, durable on disk (flushed and fsync'd) when this returns.

    The files are opened per row: a crash can lose at most the row being written.
    """
    targets = [(RESULTS_JSONL, jsonl_record({"record": "row", **row}))]
    if with_csv:
        targets.append((RESULTS_CSV, csv_row(row)))
    for name, line in targets:
        with open(out_dir / name, "a", encoding="utf-8", newline="") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


# Columns renamed since reports were first written: old name -> new name.
_RENAMED = {"analysed_utc": "analyzed_utc"}


def load_journal(out_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Header and rows of an existing report's results.jsonl (for resuming).

    A last line cut short by a crash is ignored; damage anywhere else raises ``ValueError``.
    """
    lines = (out_dir / RESULTS_JSONL).read_text(encoding="utf-8").splitlines()
    header: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{RESULTS_JSONL} is damaged at line {number}") from None
        kind = record.pop("record", None)
        if kind == "header":
            header = record
        elif kind == "row":
            for was, now in _RENAMED.items():  # a report begun by an older version
                record.setdefault(now, record.pop(was, None))
            rows.append({field: record.get(field) for field in ROW_FIELDS})
    if header is None:
        raise ValueError(f"{RESULTS_JSONL} has no header record")
    return header, rows
