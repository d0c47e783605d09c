"""``run_batch``: analyse dropped files and folders into a forensic report folder.

Order of work: refuse bad folders, scan, (on resume) skip files already in the journal, then
stream: the model analyses image *n+1* while worker threads draw image *n* and its row is
written durably. At the end every input is hashed again, and the finished tables,
index.html, report.pdf and SHA256SUMS are written.
"""

from __future__ import annotations

import os
import platform
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ncl_core import __version__
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.data.io import is_image_file
from ncl_core.errors import ReportError, ReportWriteError
from ncl_core.fsutil import atomic_write_bytes
from ncl_core.hashing import sha256_file
from ncl_core.infer import MODES
from ncl_core.outputs import EvidenceFolderError, check_outside_evidence
from ncl_core.report.artefacts import (
    build_row,
    build_skipped_row,
    item_folder,
    remove_stale_folders,
    write_colorbar,
)
from ncl_core.report.html import INDEX_HTML, html_document
from ncl_core.report.pdf import REPORT_PDF, pdf_bytes
from ncl_core.report.rows import (
    HASH_MATCH,
    HASH_MISMATCH,
    HASH_MISSING,
    HASH_UNCHECKED,
    REPORT_FORMAT_VERSION,
    RESULTS_JSONL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
    append_row,
    display_path,
    load_journal,
    write_tables,
)
from ncl_core.report.views import check_views
from ncl_core.scan import ScanProblem, scan_inputs

FORMATS = ("html", "csv", "jsonl", "pdf")
SHA256SUMS = "SHA256SUMS"
# Settings a resumed report must share with the rows it already holds.
_RESUME_MUST_MATCH = ("model_sha256", "mode", "threshold", "views")
# Threads drawing pictures: half the cores, leaving the rest to decoding and the model.
_RENDER_THREADS = max(1, min(6, (os.cpu_count() or 2) // 2))
_MAX_PENDING = 2 * _RENDER_THREADS  # analysed images waiting: bounds memory (one map each)
# Names of fsutil's temporary files (mkstemp: ".<name>.<8 random chars>.tmp").
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@dataclass
class ReportOptions:
    """Settings of one report. ``jsonl`` is always written: it is the journal resume reads."""

    mode: str = "auto"  # the model's own default mode
    threshold: float = 0.5
    analyst: str | None = None
    case_id: str | None = None
    thumbnails: int = 160  # longest side of summary thumbnails, px
    formats: tuple[str, ...] = FORMATS
    views: tuple[str, ...] = ()  # forensic views (ncl_core.views) on each analysed file's page


@dataclass
class BatchSummary:
    """What ``run_batch`` did; ``rows`` are the final rows in input order."""

    n_files: int
    n_ok: int
    n_errors: int
    out_dir: Path
    rows: list[dict[str, Any]]
    complete: bool = True
    n_skipped: int = 0  # files that are not images by their name: listed, not analysed
    n_hash_mismatches: int = 0
    problems: list[ScanProblem] = field(default_factory=list)


class BatchPredictor(Protocol):
    """The part of ``ncl_core.infer.Predictor`` a batch needs."""

    model_id: str
    model_sha256: str
    device: Any

    def analyze_many(
        self, paths: Iterable[str | Path], mode: str = ..., threshold: float = ...
    ) -> Iterator[Analysis | AnalysisError]: ...


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_batch(
    inputs: Iterable[str | Path],
    predictor: BatchPredictor,
    out_dir: str | Path,
    options: ReportOptions | None = None,
    resume: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> BatchSummary:
    """Analyse every file under ``inputs`` and write a report folder ``out_dir``.

    ``out_dir`` must be new or empty (or hold the report to continue, with ``resume``); it may
    not lie inside an input folder. Events are plain dicts: ``start``, ``row``, ``phase``,
    ``finished``. ``cancel`` is polled between images; a cancelled report keeps its rows and
    is finished, marked incomplete.
    """
    emit = on_event or (lambda event: None)
    try:
        return _run_batch(
            [Path(p) for p in inputs],
            predictor,
            Path(os.path.abspath(out_dir)),
            options or ReportOptions(),
            resume,
            emit,
            cancel,
        )
    except Exception as exc:
        emit({"type": "failed", "message": str(exc)})
        raise


def _run_batch(
    roots: list[Path],
    predictor: BatchPredictor,
    out_dir: Path,
    options: ReportOptions,
    resume: bool,
    emit: Callable[[dict[str, Any]], None],
    cancel: Callable[[], bool] | None,
) -> BatchSummary:
    _check_options(options)
    if not roots:
        raise ReportError("no input files or folders were given")
    _refuse_inside_inputs(out_dir, roots)
    scan = scan_inputs(roots, exclude=[out_dir])
    if not scan.files:
        why = "; ".join(f"{display_path(p.path)}: {p.message}" for p in scan.problems[:3])
        raise ReportError("no files to analyse" + (f" ({why})" if why else ""))
    previous = _prepare_out_dir(out_dir, resume)

    header = _header(predictor, options, roots, out_dir, scan.problems, previous)
    rows: list[dict[str, Any]] = list(previous[1]) if previous else []
    todo, known = _files_to_do(scan.files, rows)
    try:
        if previous:
            remove_stale_folders(out_dir, {item_folder(r["index"]) for r in rows})
        write_tables(out_dir, header, rows, with_csv="csv" in options.formats)
        colorbar = write_colorbar(out_dir)
    except OSError as exc:
        raise ReportWriteError(
            f"cannot write the report in {display_path(out_dir)}: {exc}"
        ) from exc

    total = len(scan.files)
    done = total - len(todo)
    emit({"type": "start", "total": total, "done": done, "out_dir": str(out_dir)})
    next_index = max((int(r["index"]) for r in rows), default=0) + 1
    with ThreadPoolExecutor(_RENDER_THREADS, thread_name_prefix="ncl-report") as pool:
        writer = _RowWriter(out_dir, options, rows, emit, total, done)
        _stream_rows(predictor, todo, known, options, next_index, pool, writer, cancel)
        emit({"type": "phase", "phase": "verify", "total": len(rows)})
        _verify_hashes(rows, scan.files, pool)

    complete = writer.written == len(todo)
    _finish_header(header, rows, total, complete)
    emit({"type": "phase", "phase": "write"})
    try:
        _write_documents(out_dir, header, rows, options, colorbar)
    except OSError as exc:
        raise ReportWriteError(
            f"cannot write the report in {display_path(out_dir)}: {exc}"
        ) from exc
    summary = BatchSummary(
        n_files=total,
        n_ok=header["n_ok"],
        n_errors=header["n_errors"],
        out_dir=out_dir,
        rows=rows,
        complete=complete,
        n_skipped=header["n_skipped"],
        n_hash_mismatches=header["n_hash_mismatches"],
        problems=list(scan.problems),
    )
    emit(
        {
            "type": "finished",
            "complete": complete,
            "n_files": total,
            "n_ok": summary.n_ok,
            "n_errors": summary.n_errors,
            "n_skipped": summary.n_skipped,
            "n_hash_mismatches": summary.n_hash_mismatches,
            "out_dir": str(out_dir),
            "index_html": str(out_dir / INDEX_HTML) if "html" in options.formats else None,
            "report_pdf": str(out_dir / REPORT_PDF) if "pdf" in options.formats else None,
        }
    )
    return summary


def _check_options(options: ReportOptions) -> None:
    if options.mode not in MODES:
        raise ReportError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if not 0.0 <= float(options.threshold) <= 1.0:
        raise ReportError(f"threshold must be between 0 and 1, got {options.threshold}")
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


def _refuse_inside_inputs(out_dir: Path, roots: list[Path]) -> None:
    """Refuse a report folder inside an input folder, or in the folder of a dropped file.

    Refused rather than excluded from the scan: either way it would write into a folder of
    evidence, which a report must never do (``ncl_core.outputs``: the rule of every writer).
    """
    try:
        check_outside_evidence(out_dir, roots, what="report folder")
    except EvidenceFolderError as exc:
        raise ReportError(display_path(str(exc))) from None


def _prepare_out_dir(
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
    try:
        return load_journal(out_dir)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot resume the report in {shown}: {exc}") from exc


def _header(
    predictor: BatchPredictor,
    options: ReportOptions,
    roots: list[Path],
    out_dir: Path,
    problems: list[ScanProblem],
    previous: tuple[dict[str, Any], list[dict[str, Any]]] | None,
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
        "views": list(options.views),
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
        "platform": platform.platform(),
    }
    if previous is None:
        return header
    old = previous[0]
    for key in _RESUME_MUST_MATCH:
        if old.get(key) != header[key]:
            raise ReportError(
                f"the report in {display_path(out_dir)} was made with {key} {old.get(key)!r}, "
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


def _files_to_do(
    files: list[Path], rows: list[dict[str, Any]]
) -> tuple[list[Path], dict[Path, str | None]]:
    """Files still to analyse, and the SHA-256 computed for them while deciding.

    A file is done when a row has its path *and* its SHA-256: an edited file is analysed
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


class _RowWriter:
    """Writes finished rows durably, keeps them, and reports each as a ``row`` event."""

    def __init__(
        self,
        out_dir: Path,
        options: ReportOptions,
        rows: list[dict[str, Any]],
        emit: Callable[[dict[str, Any]], None],
        total: int,
        done_before: int,
    ) -> None:
        self.out_dir = out_dir
        self.with_csv = "csv" in options.formats
        self.rows = rows
        self.emit = emit
        self.total = total
        self.done_before = done_before
        self.written = 0

    def write(self, job: Future[dict[str, Any]]) -> None:
        try:
            row = job.result()
            append_row(self.out_dir, row, self.with_csv)
        except OSError as exc:
            shown = display_path(self.out_dir)
            raise ReportWriteError(f"cannot write the report in {shown}: {exc}") from exc
        self.rows.append(row)
        self.written += 1
        index = self.done_before + self.written
        # A copy: the row gets its end-of-batch hash later, while a GUI may still hold this one.
        self.emit({"type": "row", "index": index, "total": self.total, "row": dict(row)})


def _stream_rows(
    predictor: BatchPredictor,
    todo: list[Path],
    known: dict[Path, str | None],
    options: ReportOptions,
    next_index: int,
    pool: ThreadPoolExecutor,
    writer: _RowWriter,
    cancel: Callable[[], bool] | None,
) -> None:
    """Analyse ``todo`` in order; rows are drawn in ``pool`` and written in input order.

    A file that is not an image by its name gets a "skipped" row (hashed, never decoded).
    """
    if not todo or (cancel is not None and cancel()):
        return
    pending: deque[Future[dict[str, Any]]] = deque()
    images = [p for p in todo if is_image_file(p)]
    results = predictor.analyze_many(images, mode=options.mode, threshold=options.threshold)
    analysed = iter(results)
    try:
        for i, path in enumerate(todo):
            if is_image_file(path):
                result = next(analysed)
                args = (next_index + i, path, result, writer.out_dir, options.thumbnails)
                pending.append(pool.submit(build_row, *args, known.get(path), options.views))
            else:
                pending.append(
                    pool.submit(build_skipped_row, next_index + i, path, known.get(path))
                )
            while pending and (len(pending) > _MAX_PENDING or pending[0].done()):
                writer.write(pending.popleft())
            if is_image_file(path) and cancel is not None and cancel():
                break
    finally:
        # Stop the predictor's own read-ahead, if it has any, when we leave early.
        close = getattr(results, "close", None)
        if close is not None:
            close()
    while pending:
        writer.write(pending.popleft())


def _verify_hashes(rows: list[dict[str, Any]], files: list[Path], pool: ThreadPoolExecutor) -> None:
    """Hash every input again and record whether it still matches its hash at the start."""
    real_paths = {display_path(p): p for p in files}

    def end_hash(row: dict[str, Any]) -> str | None:
        path = real_paths.get(row["path"], Path(row["path"]))
        try:
            return sha256_file(path)
        except OSError:
            return None

    for row, end in zip(rows, pool.map(end_hash, rows)):
        start = row.get("sha256_start")
        row["sha256_end"] = end
        if start is None:
            row["hash_check"] = HASH_UNCHECKED
        elif end is None:
            row["hash_check"] = HASH_MISSING
        else:
            row["hash_check"] = HASH_MATCH if end == start else HASH_MISMATCH


def _finish_header(
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
        else (f"cancelled with {len(rows)} of {n_files} files analysed; resume to finish"),
    )


def _write_documents(
    out_dir: Path,
    header: dict[str, Any],
    rows: list[dict[str, Any]],
    options: ReportOptions,
    colorbar: str,
) -> None:
    """Final tables, index.html, report.pdf, then SHA256SUMS over everything in the folder."""
    write_tables(out_dir, header, rows, with_csv="csv" in options.formats)
    if "html" in options.formats:
        text = html_document(header, rows, colorbar)
        atomic_write_bytes(out_dir / INDEX_HTML, text.encode("utf-8"))
    if "pdf" in options.formats:
        atomic_write_bytes(out_dir / REPORT_PDF, pdf_bytes(header, rows, out_dir, colorbar))
    atomic_write_bytes(out_dir / SHA256SUMS, sha256sums_text(out_dir).encode("utf-8"))


def sha256sums_text(out_dir: Path) -> str:
    """``sha256sum -c`` compatible lines for every file in the report folder but SHA256SUMS.

    Temporary files left by an interrupted write are deleted first.
    """
    lines = []
    for path in sorted(out_dir.rglob("*")):
        if not path.is_file() or path == out_dir / SHA256SUMS:
            continue
        if _TEMP_NAME.match(path.name):
            path.unlink()
            continue
        lines.append(f"{sha256_file(path)}  {path.relative_to(out_dir).as_posix()}\n")
    return "".join(lines)
