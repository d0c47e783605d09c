"""``run_batch``: analyze dropped files and folders into a forensic report folder.

Order of work: refuse bad folders, scan, (on resume) skip files already in the journal, then
stream (``ncl_core.report.stream``): each file is read once, the model analyzes image *n+1*
while a worker thread at the lowest priority draws image *n* from the evidence in memory, and
its row and pictures are written durably. At the end every input is hashed again, and the
finished tables, index.html, report.pdf, MANIFEST.json (signed in MANIFEST.sig with the
analyst's key, if given) and SHA256SUMS are written. Finished analyses can be handed in
(``finished``): an export of work already done does not run the model again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.errors import ReportError, ReportWriteError
from ncl_core.evidence.hashing import sha256_file
from ncl_core.evidence.image import Evidence
from ncl_core.evidence.scan import ScanProblem, scan_inputs
from ncl_core.fsutil import atomic_write_bytes, sync_folder
from ncl_core.inference.outputs import refuse_inside_evidence
from ncl_core.report import shared
from ncl_core.report.artefacts import item_folder, remove_stale_folders, write_colorbar
from ncl_core.report.folder import (
    FORMATS,
    ReportOptions,
    check_options,
    files_to_do,
    finish_header,
    make_header,
    prepare_out_dir,
)
from ncl_core.report.html import INDEX_HTML, html_document
from ncl_core.report.manifest import SHA256SUMS, sha256sums_text, write_manifest
from ncl_core.report.pdf import REPORT_PDF, pdf_bytes
from ncl_core.report.rows import (
    HASH_MATCH,
    HASH_MISMATCH,
    HASH_MISSING,
    HASH_UNCHECKED,
    append_row,
    display_path,
    write_tables,
)
from ncl_core.report.stream import (
    RENDER_THREADS,
    BatchPredictor,
    Drawn,
    Finished,
    drawing_pool,
    stream_rows,
)

__all__ = [
    "FORMATS",
    "SHA256SUMS",
    "BatchPredictor",
    "BatchSummary",
    "ReportError",
    "ReportOptions",
    "ReportWriteError",
    "run_batch",
]


@dataclass
class BatchSummary:
    """What ``run_batch`` did; ``rows`` are the final rows in input order."""

    n_files: int
    n_ok: int
    n_errors: int
    out_dir: Path
    rows: list[dict[str, Any]]
    complete: bool = True
    n_skipped: int = 0  # files that are not images by their name: listed, not analyzed
    n_hash_mismatches: int = 0
    problems: list[ScanProblem] = field(default_factory=list)
    aliases: list[tuple[Path, Path]] = field(default_factory=list)


def run_batch(
    inputs: Iterable[str | Path],
    predictor: BatchPredictor,
    out_dir: str | Path,
    options: ReportOptions | None = None,
    resume: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    finished: Iterable[tuple[Evidence | str | Path, Analysis | AnalysisError]] | None = None,
) -> BatchSummary:
    """Analyze every file under ``inputs`` and write a report folder ``out_dir``.

    ``out_dir`` must be new or empty (or hold the report to continue, with ``resume``); it may
    not lie inside an input folder. Events are plain dicts: ``start``, ``row``, ``phase``,
    ``finished``. ``cancel`` is polled between images; a cancelled report keeps its rows and
    is finished, marked incomplete.

    ``finished``: ``(Evidence or path, Analysis)`` pairs already computed (say by
    ``Predictor.analyze_stream``). A file under ``inputs`` with a finished analysis made by
    ``predictor``'s model in the report's mode is not analyzed again, only read once for its
    pictures (not at all when its ``Evidence`` is given); its analysis is seen at the report's
    threshold. A file whose bytes changed since is analyzed again; errors are not reused.
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
            None if finished is None else Finished(finished),
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
    finished: Finished | None,
) -> BatchSummary:
    check_options(options)
    if not roots:
        raise ReportError("no input files or folders were given")
    # Refused rather than excluded from the scan: either way it would write into evidence.
    refuse_inside_evidence(out_dir, roots, "report folder", ReportError)
    scan = scan_inputs(roots, exclude=[out_dir])
    if not scan.files:
        why = "; ".join(f"{display_path(p.path)}: {p.message}" for p in scan.problems[:3])
        raise ReportError("no files to analyze" + (f" ({why})" if why else ""))
    previous = prepare_out_dir(out_dir, resume)

    header = make_header(predictor, options, roots, out_dir, scan.problems, previous, scan.aliases)
    rows: list[dict[str, Any]] = list(previous[1]) if previous else []
    todo, known = files_to_do(scan.files, rows)
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
    drawing = drawing_pool()
    writer = _RowWriter(out_dir, options, rows, emit, total, done)
    args = (predictor, todo, known, options, header["mode"], next_index, drawing, writer)
    try:
        stream_rows(*args, cancel, finished)
    except BaseException:
        writer.drain(raise_failure=False)  # the journal holds every row announced
        raise
    finally:
        # Every row handed to the writer is drawn by now (after a failure, the rest are
        # dropped); a drawing thread still busy draws a row again, for nothing: not waited for.
        drawing.shutdown(wait=False, cancel_futures=True)
    writer.drain()
    with ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="ncl-report") as pool:
        emit({"type": "phase", "phase": "verify", "total": len(rows)})
        # Matching reads the analyzed files again: the bytes it reads are the end-of-batch hash.
        found = shared.find_shared_regions(
            out_dir, rows, scan.files, cancel, on=options.case_match, emit=emit
        )
        _verify_hashes(rows, scan.files, pool, found.hashes)
    header.update(found.header)

    complete = writer.written == len(todo)
    finish_header(header, rows, total, complete)
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
        aliases=list(scan.aliases),
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


class _RowWriter:
    """Writes finished rows durably in input order, keeps them, and reports each as a ``row``
    event.

    Writing (the row's pictures, an fsync per table and row) runs in a thread of its own, so
    that the model does not wait for the disk; the ``row`` events come from that thread. A
    failure is raised in the caller's thread by the next ``write`` or by ``drain``; no row is
    written after it.
    """

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
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ncl-report-rows")
        self._failure: BaseException | None = None

    def write(self, job: Future[Drawn]) -> None:
        """Queue the row that ``job`` draws (the row and its pictures), after those before it."""
        self._raise()
        self._thread.submit(self._write, job)

    def drain(self, raise_failure: bool = True) -> None:
        """Wait until every queued row is written (or dropped after a failure)."""
        self._thread.shutdown(wait=True)
        if raise_failure:
            self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _write(self, job: Future[dict[str, Any]]) -> None:
        if self._failure is not None:
            return
        try:
            row, files = job.result()
            files.write(self.out_dir)
            pictures = self.out_dir / item_folder(row["index"])
            if pictures.is_dir():
                sync_folder(pictures)  # the pictures are durable before the row naming them
            append_row(self.out_dir, row, self.with_csv)
        except OSError as exc:
            shown = display_path(self.out_dir)
            failure = ReportWriteError(f"cannot write the report in {shown}: {exc}")
            failure.__cause__ = exc
            self._failure = failure
            return
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._failure = exc
            return
        self.rows.append(row)
        self.written += 1
        index = self.done_before + self.written
        # A copy: the row gets its end-of-batch hash later, while a GUI may still hold this one.
        self.emit({"type": "row", "index": index, "total": self.total, "row": dict(row)})


def _verify_hashes(
    rows: list[dict[str, Any]],
    files: list[Path],
    pool: ThreadPoolExecutor,
    known: dict[str, str] | None = None,
) -> None:
    """Hash every input again (but those in ``known``, hashed at the end already, by path)
    and record whether it still matches its hash at the start."""
    real_paths = {display_path(p): p for p in files}
    known = known or {}

    def end_hash(row: dict[str, Any]) -> str | None:
        if row["path"] in known:
            return known[row["path"]]
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


def _write_documents(
    out_dir: Path,
    header: dict[str, Any],
    rows: list[dict[str, Any]],
    options: ReportOptions,
    colorbar: str,
) -> None:
    """Final tables, index.html, report.pdf, then the manifest (and its signature), then
    SHA256SUMS over everything in the folder."""
    write_tables(out_dir, header, rows, with_csv="csv" in options.formats)
    if "html" in options.formats:
        text = html_document(header, rows, colorbar)
        atomic_write_bytes(out_dir / INDEX_HTML, text.encode("utf-8"))
    if "pdf" in options.formats:
        atomic_write_bytes(out_dir / REPORT_PDF, pdf_bytes(header, rows, out_dir, colorbar))
    manifest = write_manifest(out_dir, header, rows, options.signing_key)
    hashed = {rel: entry["sha256"] for rel, entry in manifest["files"].items()}
    atomic_write_bytes(out_dir / SHA256SUMS, sha256sums_text(out_dir, hashed).encode("utf-8"))
