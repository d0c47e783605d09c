"""Forensic batch reports: HTML, CSV, JSONL and PDF, with hashes.

``run_batch`` is the entry point, used by ``ncl-forensics batch`` and the GUI's batch view.
A report folder holds index.html, report.pdf, results.csv (a plain table), report.json (its
header), results.jsonl, MANIFEST.json (every file's SHA-256, the evidence's, the tool's and the
model's; ``ncl_core.report.manifest``, checked by ``ncl_core.report.verification``), SHA256SUMS and the
pictures under ``images/``; see ``ncl_core.report.rows`` for the row fields.
"""

from ncl_core.inference.finding import FINDING_POSITIVE, image_finding
from ncl_core.report.html import INDEX_HTML
from ncl_core.report.pdf import REPORT_PDF
from ncl_core.report.rows import (
    REPORT_JSON,
    RESULTS_CSV,
    RESULTS_JSONL,
    ROW_FIELDS,
    SKIPPED_NOT_IMAGE,
    load_journal,
)
from ncl_core.report.runner import (
    FORMATS,
    SHA256SUMS,
    BatchPredictor,
    BatchSummary,
    ReportError,
    ReportOptions,
    ReportWriteError,
    run_batch,
)

__all__ = [
    "FINDING_POSITIVE",
    "FORMATS",
    "INDEX_HTML",
    "REPORT_JSON",
    "REPORT_PDF",
    "RESULTS_CSV",
    "RESULTS_JSONL",
    "ROW_FIELDS",
    "SHA256SUMS",
    "SKIPPED_NOT_IMAGE",
    "BatchPredictor",
    "BatchSummary",
    "ReportError",
    "ReportWriteError",
    "ReportOptions",
    "image_finding",
    "load_journal",
    "run_batch",
]
