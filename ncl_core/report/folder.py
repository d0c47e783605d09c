"""A report folder's bookkeeping: its settings checked, the folder prepared, the header
record (``results.jsonl``'s first line, ``report.json``) made and finished, and on resume
the files still to analyze. ``run_batch`` (``ncl_core.report.runner``) puts them together.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncl_core import __version__
from ncl_core.errors import ReportError, ReportWriteError
from ncl_core.evidence.hashing import sha256_file
from ncl_core.evidence.scan import ScanProblem
from ncl_core.report.artefacts import report_links
from ncl_core.report.forensic_views import check_views
from ncl_core.report.rows import (
    HASH_MISMATCH,
    HASH_MISSING,
    REPORT_FORMAT_VERSION,
    RESULTS_JSONL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
    display_path,
    load_journal,
)
from ncl_core.settings import (
    DEFAULT_MODE,
    DEFAULT_PICTURES,
    DEFAULT_THRESHOLD,
    MODES,
    PICTURES,
    PRECISIONS,
    InferenceSettings,
)

if TYPE_CHECKING:
    from ncl_core.report.stream import BatchPredictor

FORMATS = ("html", "csv", "jsonl", "pdf")
# Settings a resumed report must share with the rows it already holds (and the value of
# those that reports of older versions did not record).
_RESUME_MUST_MATCH = ("model_sha256", "mode", "threshold", "views", "pictures")
_RESUME_DEFAULTS = {"pictures": DEFAULT_PICTURES}


@dataclass
class ReportOptions:
    """Settings of one report. ``jsonl`` is always written: it is the journal resume reads."""

    mode: str = DEFAULT_MODE  # the model's own default mode
    threshold: float = DEFAULT_THRESHOLD
    tile: int | None = None  # tiled mode's tile side; None: the model's own
    precision: str = "auto"  # the network's arithmetic (ncl_core.settings.PRECISIONS)
    analyst: str | None = None
    case_id: str | None = None
    thumbnails: int = 160  # longest side of summary thumbnails, px
    pictures: str = DEFAULT_PICTURES  # which images get pictures (ncl_core.settings.PICTURES)
    formats: tuple[str, ...] = FORMATS
    views: tuple[str, ...] = ()  # forensic views (ncl_core.views) on each analyzed file's page
    # Look for regions shared between images (ncl_core.report.shared): off by default, its
    # features cost about twice the model's analysis of an image on a CPU.
    case_match: bool = False
    # An Ed25519 private key (ncl_core.report.signing.load_private_key): MANIFEST.json is signed with it.
    signing_key: Any = field(default=None, repr=False)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def inference_settings(options: ReportOptions) -> InferenceSettings:
    """The analysis settings of a report's options."""
    return InferenceSettings(
        mode=options.mode,
        tile=options.tile,
        precision=options.precision,
    )


def _precision_used(predictor: Any, options: ReportOptions) -> str:
    """The network's arithmetic really used: ``auto`` is bf16 where the processor computes it
    natively, else fp32."""
    resolve = getattr(predictor, "precision", None)
    return resolve(inference_settings(options)) if callable(resolve) else options.precision


def check_options(options: ReportOptions) -> None:
    if options.mode not in MODES:
        raise ReportError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if options.precision not in PRECISIONS:
        raise ReportError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {options.precision!r}"
        )
    if not 0.0 <= float(options.threshold) <= 1.0:
        raise ReportError(f"threshold must be between 0 and 1, got {options.threshold}")
    if options.pictures not in PICTURES:
        raise ReportError(
            f"pictures must be one of {', '.join(PICTURES)}, got {options.pictures!r}"
        )
    if not 16 <= int(options.thumbnails) <= 1024:
        raise ReportError(f"thumbnail size must be 16 to 1024 px, got {options.thumbnails}")
    try:
        check_views(tuple(options.views))
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    unknown = set(options.formats) - set(FORMATS)
    if unknown:
        raise ReportError(
            f"unknown report format(s) {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}"
        )


def prepare_out_dir(
    out_dir: Path, resume: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Create the report folder, or load the report to resume; None for a fresh report."""
    shown = display_path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{shown} is a file; choose a folder for the report")
    try:
        has_content = out_dir.is_dir() and any(out_dir.iterdir())
        if not has_content:
            out_dir.mkdir(parents=True, exist_ok=True)
            return None
    except OSError as exc:
        raise ReportWriteError(f"cannot create the report folder {shown}: {exc}") from exc
    if not resume:
        raise ReportError(
            f"{shown} is not empty; choose a new folder, or resume the report it holds"
        )
    if not (out_dir / RESULTS_JSONL).is_file():
        raise ReportError(f"{shown} holds no report to resume (no {RESULTS_JSONL})")
    links = report_links(out_dir)
    if links:
        raise ReportError(
            f"{shown} holds symbolic links ({', '.join(display_path(x) for x in links)}); "
            "a report folder must hold only what this tool wrote, so that nothing outside it "
            "is ever changed: remove the links, or start a new report folder"
        )
    try:
        return load_journal(out_dir)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot resume the report in {shown}: {exc}") from exc


def make_header(
    predictor: BatchPredictor,
    options: ReportOptions,
    roots: list[Path],
    out_dir: Path,
    problems: list[ScanProblem],
    previous: tuple[dict[str, Any], list[dict[str, Any]]] | None,
    aliases: list[tuple[Path, Path]] = (),
) -> dict[str, Any]:
    now = utc_now()
    header: dict[str, Any] = {
        "report_format": REPORT_FORMAT_VERSION,
        "app": "NCL Forensics",
        "app_version": __version__,
        "model_id": predictor.model_id,
        "model_sha256": predictor.model_sha256,
        "model_validation": predictor.info.validation_summary()
        if hasattr(predictor, "info")
        else None,
        # The mode really used: "auto" is the model's own default.
        "mode": getattr(predictor, "default_mode", options.mode)
        if options.mode == "auto"
        else options.mode,
        "threshold": float(options.threshold),
        "tile": options.tile,  # None: the model's own
        "precision": _precision_used(predictor, options),
        "views": list(options.views),
        "pictures": options.pictures,
        "device": str(predictor.device),
        "analyst": options.analyst,
        "case_id": options.case_id,
        "started_utc": now,
        "ended_utc": None,
        "resumed_utc": [],
        "status": "running",
        "status_note": None,
        "inputs": [display_path(os.path.abspath(r)) for r in roots],
        "out_dir": display_path(out_dir),
        "n_files": 0,
        "n_ok": 0,
        "n_errors": 0,
        "n_skipped": 0,
        "n_hash_mismatches": 0,
        "scan_problems": [{"path": display_path(p.path), "message": p.message} for p in problems],
        # Other names (links, hard links) of files analyzed once under their first name.
        "merged_aliases": [
            {"path": display_path(alias), "same_as": display_path(kept)} for alias, kept in aliases
        ],
        "platform": platform.platform(),
    }
    if previous is None:
        return header
    old = previous[0]
    for key in _RESUME_MUST_MATCH:
        before = old.get(key, _RESUME_DEFAULTS.get(key))
        if before != header[key]:
            raise ReportError(
                f"the report in {display_path(out_dir)} was made with {key} {before!r}, "
                f"this run has {header[key]!r}; resume with the same settings or use a new folder"
            )
    for key in ("analyst", "case_id"):
        if header[key] is None:
            header[key] = old.get(key)
        elif old.get(key) is not None and old[key] != header[key]:
            raise ReportError(
                f"the report in {display_path(out_dir)} has {key} {old[key]!r}, not "
                f"{header[key]!r}; resume with the same {key} or use a new folder"
            )
    devices = [d for d in str(old.get("device") or "").split(", ") if d]
    if header["device"] not in devices:
        devices.append(header["device"])
    header.update(
        started_utc=old.get("started_utc", now),
        resumed_utc=[*(old.get("resumed_utc") or []), now],
        device=", ".join(devices),
        inputs=list(dict.fromkeys([*(old.get("inputs") or []), *header["inputs"]])),
    )
    return header


def files_to_do(
    files: list[Path], rows: list[dict[str, Any]]
) -> tuple[list[Path], dict[Path, str | None]]:
    """Files still to analyze, and the SHA-256 computed for them while deciding.

    A file is done when a row has its path *and* its SHA-256: an edited file is analyzed
    again, and a copy of a file under another name still gets its own row.
    """
    if not rows:
        return list(files), {}
    done = {(r["path"], r["sha256_start"]) for r in rows if r.get("sha256_start")}
    todo: list[Path] = []
    known: dict[Path, str | None] = {}
    for path in files:
        try:
            sha = sha256_file(path)
        except OSError:
            sha = None
        if (display_path(path), sha) not in done:
            todo.append(path)
            known[path] = sha
    return todo, known


def finish_header(
    header: dict[str, Any], rows: list[dict[str, Any]], n_files: int, complete: bool
) -> None:
    n_ok = sum(1 for r in rows if r.get("status") == STATUS_OK)
    n_skipped = sum(1 for r in rows if r.get("status") == STATUS_SKIPPED)
    header.update(
        ended_utc=utc_now(),
        n_files=n_files,
        n_ok=n_ok,
        n_errors=sum(1 for r in rows if r.get("status") == STATUS_ERROR),
        n_skipped=n_skipped,
        n_hash_mismatches=sum(1 for r in rows if r["hash_check"] in (HASH_MISMATCH, HASH_MISSING)),
        status="complete" if complete else "incomplete",
        status_note=None
        if complete
        else (f"cancelled with {len(rows)} of {n_files} files analyzed; resume to finish"),
    )
