"""``ncl-forensics batch``: analyze files and folders (recursively) into a report folder."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from ncl_core.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_analysis_args,
    check_inputs,
    load_predictor,
    progress,
    resolve_model_arg,
    shown,
    view_names,
)
from ncl_core.errors import ReportError, UsageError
from ncl_core.settings import DEFAULT_PICTURES, PICTURES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "batch", help="analyze files and folders (recursively) into a report folder"
    )
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument(
        "--report", required=True, help="report folder to create (or continue with --resume)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue a report, skipping files already in it"
    )
    p.add_argument("--analyst", help="analyst name for the report header")
    p.add_argument("--case-id", help="case identifier for the report header")
    p.add_argument(
        "--views",
        metavar="LIST",
        help="forensic views on each file's page, comma-separated: ela,noise,jpeg,dq,clone,combined,metadata,c2pa "
        "or all (every row gets the metadata and Content Credentials summaries regardless)",
    )
    p.add_argument(
        "--sign-key",
        metavar="FILE",
        help="sign the report's manifest with your Ed25519 private key (MANIFEST.sig; "
        "passphrase from NCL_FORENSICS_KEY_PASSPHRASE or asked)",
    )
    p.add_argument(
        "--case-match",
        action="store_true",
        help="also compare the images with each other for regions shared between them "
        "(report.json shared_regions, shown side by side in the report; about twice the "
        "model's time per image on a CPU, at most a minute plus a second per image)",
    )
    p.add_argument(
        "--pictures",
        choices=PICTURES,
        default=DEFAULT_PICTURES,
        help="which analyzed images get their display copy, heatmap, overlay, mask and PDF "
        "panel: all (default), or only those with a finding, for a faster and smaller report "
        "of a large batch (every image keeps its row and thumbnail)",
    )
    add_analysis_args(p, input_size=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every mistake of the command line is said before the model loads (a second or more).
    check_inputs(args.inputs, "inputs", "batch takes image files and folders")
    views = view_names(args)
    _check_report_folder(Path(args.report), args.inputs, args.resume)
    signing_key = None
    if args.sign_key:  # read first: a wrong passphrase must not cost a whole batch
        from ncl_core.report.signing import load_private_key

        signing_key = load_private_key(args.sign_key)
    resolve_model_arg(args)
    from ncl_core.report import ReportOptions, run_batch

    predictor = load_predictor(args)
    options = ReportOptions(
        mode=args.mode,
        threshold=args.threshold,
        tile=args.tile,
        precision=args.precision,
        analyst=args.analyst,
        case_id=args.case_id,
        views=views,
        pictures=args.pictures,
        case_match=args.case_match,
        signing_key=signing_key,
    )
    bar = progress(None, "batch")

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "start":
            # A resumed report starts at the files already done; its rate (and so its time
            # left) counts only the files analyzed now.
            done = int(event.get("done") or 0)
            bar.total = event.get("total")
            bar.initial = bar.n = bar.last_print_n = done
            bar.start_t = bar.last_print_t = time.time()
            bar.refresh()
        elif event["type"] == "row":
            bar.update(1)
            row = event.get("row", {})
            if row.get("status") == "error":
                bar.write(f"error: {shown(row.get('error'))}", file=sys.stderr)

    with bar:
        summary = run_batch(
            args.inputs, predictor, args.report, options, resume=args.resume, on_event=on_event
        )
    for problem in summary.problems:
        print(f"warning: {shown(problem.path)}: {shown(problem.message)}", file=sys.stderr)
    if summary.aliases:
        print(
            f"note: {len(summary.aliases)} path(s) named a file already listed (symbolic or hard "
            "links) and were analyzed once, under the first name; all are in report.json "
            "(merged_aliases)",
            file=sys.stderr,
        )
        for alias, kept in summary.aliases[:5]:
            print(f"  {shown(alias)} = {shown(kept)}", file=sys.stderr)
    print(
        f"report: {shown(summary.out_dir)} ({summary.n_ok} analyzed, {summary.n_errors} error(s))"
    )
    if summary.n_hash_mismatches:
        print(
            f"WARNING: {summary.n_hash_mismatches} input file(s) changed during the batch",
            file=sys.stderr,
        )
    if summary.n_errors:
        print(
            f"{summary.n_errors} of {summary.n_files} file(s) could not be analyzed",
            file=sys.stderr,
        )
    return EXIT_FAILED if summary.n_errors or summary.n_hash_mismatches else EXIT_OK


def _check_report_folder(report: Path, inputs: list[str], resume: bool) -> None:
    """The report folder's rules that need no model, checked before it loads; ``run_batch``
    applies them all again (and those of a report to resume)."""
    from ncl_core.inference.outputs import refuse_inside_evidence

    if report.exists() and not report.is_dir():
        raise UsageError(f"--report {shown(report)} is a file; choose a folder for the report")
    refuse_inside_evidence(report, inputs, "report folder", ReportError)
    if not resume:
        with contextlib.suppress(OSError):  # an unreadable folder: run_batch says why
            if report.is_dir() and any(report.iterdir()):
                raise UsageError(
                    f"--report {shown(report)} is not empty; choose a new folder, or add "
                    "--resume to continue the report it holds"
                )
