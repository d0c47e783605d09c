"""Batch reports: a messy evidence folder in, a complete, safe report folder out."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ncl_core import __version__
from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.evidence.hashing import sha256_file
from ncl_core.evidence.image import Evidence, load_or_error
from ncl_core.inference.finding import image_finding
from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig
from ncl_core.report import (
    FINDING_POSITIVE,
    INDEX_HTML,
    REPORT_JSON,
    REPORT_PDF,
    RESULTS_CSV,
    RESULTS_JSONL,
    ROW_FIELDS,
    SHA256SUMS,
    ReportError,
    ReportOptions,
    run_batch,
)
from ncl_core.report.rows import display_path

from imaging import pattern, save
from tiny import NARROW_CONFIG

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
UNICODE = "café_证据_ü.png"
NON_UTF8 = b"raw\xff.png"
MODEL_SHA = "ab" * 32


class FakePredictor:
    """Stands in for ``ncl_core.inference.predictor.Predictor``: real Analysis objects, no network weights.

    The "probability" is the red channel, so a red patch is a confident detection.
    """

    model_id = "fake-ncl"
    model_sha256 = MODEL_SHA
    device = "cpu"

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[Path] = []
        self.fail_after = fail_after

    def analyze(self, path: Path, settings=None) -> Analysis:
        mode = settings.mode if settings is not None and settings.mode != "auto" else "resize"
        started = datetime.now(timezone.utc).isoformat()
        t0 = time.perf_counter()
        with Image.open(path) as im:
            fmt = im.format
            rgb = np.asarray(im.convert("RGB"))
        prob = rgb[:, :, 0].astype(np.float32) / 255.0
        return Analysis(
            source=str(path),
            sha256=sha256_file(path),
            width=rgb.shape[1],
            height=rgb.shape[0],
            probability=prob,
            threshold=0.5,
            score=float(prob.max()),
            model_id=self.model_id,
            model_sha256=self.model_sha256,
            settings={"mode": mode},
            device=self.device,
            duration_s=time.perf_counter() - t0,
            started_utc=started,
            image_format=fmt,
        )

    def analyze_stream(self, paths, settings=None):
        """(evidence, result) pairs, as ``Predictor.analyze_stream`` gives them."""
        for path in paths:
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise RuntimeError("simulated crash")
            self.seen.append(Path(path))
            loaded = load_or_error(path)
            evidence = loaded if isinstance(loaded, Evidence) else None
            try:
                yield evidence, self.analyze(Path(path), settings)
            except OSError as exc:  # Pillow: unidentified or truncated image
                yield None, AnalysisError(str(path), f"{path}: cannot read the image ({exc})")


def _evidence(root: Path) -> Path:
    """Good images, a truncated JPEG, a text file named .png, odd names, nesting, a loop."""
    ev = root / "evidence"
    red = pattern(40, 56, seed=1) // 3
    red[8:24, 10:30] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS <R5>"
    exif[0x0131] = '=HYPERLINK("http://example.invalid")'
    save(ev / "a_red.jpg", red, quality=95, exif=exif)
    save(ev / "b_plain.png", pattern(32, 32, seed=2) // 3)
    save(ev / UNICODE, pattern(36, 28, seed=3))
    save(ev / HOSTILE, pattern(30, 30, seed=4))
    save(ev / "nested" / "deeper" / "c.png", pattern(24, 40, seed=5))
    whole = io.BytesIO()
    Image.fromarray(pattern(64, 64, seed=6)).save(whole, format="JPEG", quality=90)
    (ev / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (ev / "notes.png").write_text("this is not an image\n")
    (ev / "README.md").write_text("case notes: not an image by its name\n")
    with open(os.path.join(os.fsencode(ev), NON_UTF8), "wb") as fh:
        fh.write((ev / "b_plain.png").read_bytes())
    os.symlink("..", ev / "nested" / "loop")  # nested/loop -> evidence: a cycle
    return ev


N_FILES = 9  # files _evidence writes (the loop is a folder link, not a file)
N_BAD = 2  # truncated.jpg, notes.png: named like images, cannot be decoded
N_SKIPPED = 1  # README.md: not an image by its name


def _files(root: Path) -> list[str]:
    """Regular files under root, not following links, as str paths usable with open()."""
    found = []
    for dirpath, _, filenames in os.walk(os.fsencode(root)):
        found += [os.fsdecode(os.path.join(dirpath, name)) for name in filenames]
    return found


def _tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under root (without following links) with its bytes' hash or link target."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, os.fsencode(root))
            st = os.lstat(full)
            if os.path.islink(full):
                state[rel] = ("link", os.readlink(full), st.st_mtime_ns)
            elif os.path.isdir(full):
                state[rel] = ("dir", st.st_mtime_ns)
            else:
                state[rel] = ("file", sha256_file(os.fsdecode(full)), st.st_size, st.st_mtime_ns)
    return state


def _jsonl(out: Path) -> tuple[dict, list[dict]]:
    records = [json.loads(line) for line in (out / RESULTS_JSONL).read_text("utf-8").splitlines()]
    headers = [r for r in records if r["record"] == "header"]
    assert len(headers) == 1 and records[0]["record"] == "header"
    return headers[0], [r for r in records if r["record"] == "row"]


def _csv_rows(out: Path) -> list[dict]:
    """results.csv read as the plain table it is: no lines to skip."""
    with open(out / RESULTS_CSV, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    return _evidence(tmp_path)


@pytest.fixture(scope="module")
def real_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The real ``Predictor`` on a tiny, randomly initialised model file (CPU, ~0.3 s/image)."""
    torch.manual_seed(0)
    config = ModelConfig(**NARROW_CONFIG)
    path = save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", NCLNet(config))
    return Predictor.load(path, device="cpu")


@pytest.fixture(scope="module")
def real_report(
    tmp_path_factory: pytest.TempPathFactory, real_predictor: Predictor
) -> SimpleNamespace:
    """One batch over the messy folder with the real Predictor, shared by the checks below."""
    root = tmp_path_factory.mktemp("real")
    evidence = _evidence(root)
    before = _tree_state(evidence)
    events: list[dict] = []
    options = ReportOptions(analyst="A. Analyst", case_id="<b>CASE-7</b>", thumbnails=48)
    out = root / "report"
    summary = run_batch([evidence], real_predictor, out, options, on_event=events.append)
    return SimpleNamespace(
        evidence=evidence,
        out=out,
        summary=summary,
        events=events,
        before=before,
        after=_tree_state(evidence),
    )


def test_batch_report_on_a_messy_folder(real_report: SimpleNamespace, real_predictor) -> None:
    summary, out = real_report.summary, real_report.out

    # Row count equals file count; bad files are error rows, the batch went on.
    assert summary.complete
    assert (summary.n_files, summary.n_ok, summary.n_errors, summary.n_skipped) == (
        N_FILES,
        N_FILES - N_BAD - N_SKIPPED,
        N_BAD,
        N_SKIPPED,
    )
    header, rows = _jsonl(out)
    assert len(rows) == len(summary.rows) == N_FILES
    by_name = {r["name"]: r for r in rows}
    assert "truncated" in by_name["truncated.jpg"]["error"]
    assert by_name["notes.png"]["status"] == "error" and by_name["notes.png"]["error"]
    skipped = by_name["README.md"]
    assert skipped["status"] == "skipped" and skipped["error"] is None
    assert skipped["warnings"] == ["skipped: not an image"] and skipped["sha256_start"]
    assert header["n_errors"] == N_BAD and header["n_skipped"] == N_SKIPPED
    assert by_name["raw\\xff.png"]["status"] == "ok"  # undecodable bytes shown, not fatal
    assert any("loop" in p.message for p in summary.problems)

    # Hashes are right, at the start and re-checked at the end.
    real_paths = {display_path(p): p for p in _files(real_report.evidence)}
    assert set(real_paths) == {r["path"] for r in rows}
    for row in rows:
        assert row["sha256_start"] == sha256_file(real_paths[row["path"]])
        assert row["sha256_end"] == row["sha256_start"] and row["hash_check"] == "match"

    # Each analyzed row agrees with its own mask file; EXIF; the header block.
    for row in (r for r in rows if r["status"] == "ok"):
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert mask.shape == (row["height"], row["width"]) and set(np.unique(mask)) <= {0, 255}
        assert row["area_percent"] == pytest.approx(100 * (mask == 255).mean())
        assert (
            row["finding"]
            == image_finding(
                row["score"],
                None,
                0.5,
                area_fraction=row["area_percent"] / 100,
                regions=row["regions"],
            ).text
        )
        for key in ("image_path", "heatmap_path", "overlay_path", "thumbnail_path", "panel_path"):
            assert (out / row[key]).is_file()
    red = by_name["a_red.jpg"]
    assert (red["exif_make"], red["exif_model"], red["format"]) == ("Canon", "EOS <R5>", "JPEG")
    assert header["app_version"] == __version__
    assert header["model_sha256"] == real_predictor.model_sha256
    assert header["model_validation"] == "not calibrated on labeled data"
    assert (header["mode"], header["threshold"], header["device"]) == ("resize", 0.5, "cpu")
    assert header["case_id"] == "<b>CASE-7</b>" and header["status"] == "complete"
    assert header["started_utc"] <= header["ended_utc"]

    # CSV: a plain table (column names on its first line), formula-looking metadata defused;
    # the header block is report.json beside it.
    first_line = (out / RESULTS_CSV).read_text("utf-8").splitlines()[0]
    assert first_line == ",".join(ROW_FIELDS)
    csv_rows = _csv_rows(out)
    assert len(csv_rows) == N_FILES and list(csv_rows[0]) == list(ROW_FIELDS)
    assert [r["path"] for r in csv_rows] == [r["path"] for r in rows]
    report_json = json.loads((out / REPORT_JSON).read_text("utf-8"))
    assert report_json["model_sha256"] == real_predictor.model_sha256
    assert report_json["case_id"] == "<b>CASE-7</b>" and report_json["status"] == "complete"
    csv_red = next(r for r in csv_rows if r["name"] == "a_red.jpg")
    assert csv_red["exif_software"].startswith("'=")

    # SHA256SUMS covers every file written, with the right hashes.
    sums = dict(
        reversed(line.split("  ", 1)) for line in (out / SHA256SUMS).read_text().splitlines()
    )
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(sums) == written - {SHA256SUMS}
    assert all(sha256_file(out / rel) == digest for rel, digest in sums.items())

    # Events: start, one per row in order, finished.
    kinds = [e["type"] for e in real_report.events]
    assert kinds[0] == "start" and kinds[-1] == "finished" and kinds.count("row") == N_FILES
    rows_seen = [e["index"] for e in real_report.events if e["type"] == "row"]
    assert rows_seen == list(range(1, N_FILES + 1))

    # Input tree byte-identical (and nothing written into it).
    assert real_report.after == real_report.before


def test_html_is_escaped_and_self_contained(real_report: SimpleNamespace) -> None:
    out = real_report.out
    page = (out / INDEX_HTML).read_text("utf-8")
    assert html.escape(HOSTILE) in page
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "<b>CASE-7</b>" not in page and "&lt;b&gt;CASE-7&lt;/b&gt;" in page
    assert UNICODE in page and "EOS &lt;R5&gt;" in page
    # No network: no absolute URLs in any src/href, no scripts; every local reference exists.
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and "<script" not in page.lower()
    for ref in refs:
        assert "://" not in ref and not ref.startswith("//")
        if not ref.startswith("#"):
            assert (out / ref).is_file(), ref
    # Summary sorted by score, errors last.
    ranked = sorted(
        (r for r in real_report.summary.rows if r["status"] == "ok"), key=lambda r: -r["score"]
    )
    positions = [page.index(f'id="item-{r["index"]:05d}"') for r in ranked]
    assert positions == sorted(positions)
    assert page.index("truncated.jpg</h2>") > positions[-1]


def test_pdf_opens_and_holds_the_names(real_report: SimpleNamespace, tmp_path: Path) -> None:
    pdf = real_report.out / REPORT_PDF
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", pdf, tmp_path / "page"],
            check=True,
            timeout=60,
        )
        page = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"))
        assert page.shape[0] > page.shape[1] > 200  # A4 portrait
        assert (page < 128).mean() > 0.002  # there is text on it
    else:
        assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 2
        assert b"/Subtype /Image" in data
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", pdf, "-"], check=True, capture_output=True, timeout=60
        ).stdout.decode("utf-8")
        assert HOSTILE in text and "café" in text and "<b>CASE-7</b>" in text


def test_a_pdf_without_a_unicode_font(
    evidence: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine with no Unicode TrueType font gets the built-in Latin-1 font: names are cut
    with "..." in the summary, and what the font cannot draw is replaced, never a crash."""
    from ncl_core.report import pdf as pdf_module

    monkeypatch.setattr(pdf_module, "find_unicode_font", lambda: None)
    out = tmp_path / "report"
    run_batch([evidence], FakePredictor(), out, ReportOptions(formats=("pdf",)))
    data = (out / REPORT_PDF).read_bytes()
    assert data.startswith(b"%PDF-") and b"Helvetica" in data
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", out / REPORT_PDF, "-"], check=True, capture_output=True
        ).stdout.decode("utf-8")
        assert "..." in text and "café" in text and "…" not in text


@pytest.mark.parametrize("unicode_font", [True, False])
def test_text_cells_draw_what_cells_draw(unicode_font: bool) -> None:
    """The PDF's fast cells (``text_cell``) write the same page content as fpdf2's ``cell``:
    fonts, sizes, colours, positions and page breaks; only a colour is set before the text
    object instead of inside it (normalised here; the footer is fpdf2's cell in both)."""
    import re
    from datetime import datetime, timezone

    from ncl_core.report.pdf import _ReportPDF, find_unicode_font

    font = find_unicode_font() if unicode_font else None
    documents = []
    for fast in (False, True):
        pdf = _ReportPDF("title", font, [])
        pdf.compress = False
        pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))
        pdf.add_page()
        for i in range(150):  # two page breaks
            pdf.use(7.5 + i % 3, bold=i % 2 == 0, color=(200, 0, 0) if i % 5 == 1 else (0, 0, 0))
            pdf.set_x(pdf.l_margin + (i % 4) * 5)
            for width, text in ((40.0, f"line {i}: SHA-256 0123456789abcdef café"), (0, "end")):
                (pdf.text_cell if fast else pdf.cell)(width, 4.0, text)
            pdf.ln(4.0)
        documents.append(bytes(pdf.output()))
    colour_inside = re.compile(rb"BT ([-\d.]+ [-\d.]+ Td) ([\d.]+ [\d.]+ [\d.]+ rg) ")
    assert colour_inside.search(documents[0])  # the pattern below does match cell's output
    file_id = re.compile(rb"/ID \[<[0-9A-F]+><[0-9A-F]+>\]")  # a hash of the bytes
    cell_output, fast_output = (
        file_id.sub(b"", colour_inside.sub(rb"\2 BT \1 ", d)) for d in documents
    )
    assert cell_output == fast_output
    assert documents[1].count(b"/Type /Page\n") == 3


@pytest.mark.parametrize("unicode_font", [True, False])
def test_pdf_wraps_long_values_inside_the_margin(unicode_font: bool) -> None:
    from ncl_core.report.pdf import _ReportPDF, find_unicode_font

    font = find_unicode_font() if unicode_font else None
    pdf = _ReportPDF("title", font, [])
    pdf.add_page()
    pdf.use(7.5)
    width = 60.0
    text = "a finding worded at length " * 6 + "f" * 40 + "0123456789abcdef" * 8 + "\nnext line"
    lines = pdf.wrapped(text, width)
    assert len(lines) >= 6 and lines[-1] == "next line"
    assert all(0 < pdf.get_string_width(line) <= width for line in lines)
    # Nothing lost: only the spaces a line broke at are dropped.
    assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace("\n", "")
    assert pdf.wrapped("short", width) == ["short"]


def test_formats_option_and_findings(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    summary = run_batch([evidence], FakePredictor(), out, ReportOptions(formats=("pdf",)))
    assert (out / REPORT_PDF).is_file() and (out / RESULTS_JSONL).is_file()  # the journal stays
    assert not (out / INDEX_HTML).exists() and not (out / RESULTS_CSV).exists()
    by_name = {r["name"]: r for r in summary.rows}
    red = by_name["a_red.jpg"]  # the fake flags red pixels
    assert red["finding"].startswith(f"{FINDING_POSITIVE} (score ") and red["score"] > 0.9
    assert "0.5; uncalibrated model" in red["finding"]
    assert red["area_percent"] == pytest.approx(100 * 16 * 20 / (40 * 56), abs=1.0)
    # The red patch is one concentrated region: localized, with its area and region count.
    assert "localized: " in red["finding"] and "in 1 region at 0.50" in red["finding"]
    assert red["regions"] == 1
    plain = by_name["b_plain.png"]["finding"]
    assert plain.startswith("none indicated (score ") and "uncalibrated model" in plain


PICTURE_FIELDS = ("image_path", "heatmap_path", "overlay_path", "mask_path", "panel_path")


def test_pictures_for_the_images_with_a_finding_only(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    summary = run_batch([evidence], FakePredictor(), out, ReportOptions(pictures="indicated"))
    by_name = {r["name"]: r for r in summary.rows}
    red, plain = by_name["a_red.jpg"], by_name["b_plain.png"]
    assert red["finding"].startswith(FINDING_POSITIVE)
    assert plain["finding"].startswith("none indicated")
    for field in (*PICTURE_FIELDS, "thumbnail_path"):
        assert (out / red[field]).is_file(), field
    assert not any(plain.get(field) for field in PICTURE_FIELDS)
    folder = (out / plain["thumbnail_path"]).parent
    assert [p.name for p in folder.iterdir()] == ["thumb.jpg"]
    # The thumbnail looks as it does in a report with every picture.
    full = tmp_path / "full"
    every = {r["name"]: r for r in run_batch([evidence], FakePredictor(), full).rows}
    assert all(every["b_plain.png"].get(field) for field in PICTURE_FIELDS)
    only = np.asarray(Image.open(out / plain["thumbnail_path"]), dtype=np.float32)
    drawn = np.asarray(Image.open(full / every["b_plain.png"]["thumbnail_path"]), dtype=np.float32)
    assert only.shape == drawn.shape and np.abs(only - drawn).mean() < 6
    # The documents say why the pictures are missing; the header records the choice.
    page = (out / INDEX_HTML).read_text("utf-8")
    assert "pictures: indicated" in page and "for the images with a finding only" in page
    assert _jsonl(out)[0]["pictures"] == "indicated"
    assert (out / REPORT_PDF).read_bytes().startswith(b"%PDF-")
    # A report resumes only with the pictures it began with.
    with pytest.raises(ReportError, match="pictures"):
        run_batch([evidence], FakePredictor(), out, ReportOptions(), resume=True)


def test_a_report_of_an_older_version_resumes_with_every_picture(
    evidence: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    first = FakePredictor()
    run_batch([evidence], first, out, cancel=lambda: len(first.seen) >= 2)
    lines = (out / RESULTS_JSONL).read_text("utf-8").splitlines()
    header = json.loads(lines[0])
    del header["pictures"]  # not recorded before the choice existed
    (out / RESULTS_JSONL).write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", "utf-8")
    with pytest.raises(ReportError, match="pictures 'all'"):
        run_batch(
            [evidence], FakePredictor(), out, ReportOptions(pictures="indicated"), resume=True
        )
    done = run_batch([evidence], FakePredictor(), out, resume=True)
    assert done.complete and len(done.rows) == N_FILES


def test_links_to_one_file_are_analyzed_once_and_listed(evidence: Path, tmp_path: Path) -> None:
    import json
    import os

    os.link(evidence / "a_red.jpg", evidence / "z_hard.jpg")
    out = tmp_path / "report"
    summary = run_batch([evidence], FakePredictor(), out, ReportOptions(formats=("html",)))
    names = [r["name"] for r in summary.rows]
    assert "z_hard.jpg" not in names and names.count("a_red.jpg") == 1
    assert summary.aliases == [(evidence / "z_hard.jpg", evidence / "a_red.jpg")]
    header = json.loads((out / "report.json").read_text(encoding="utf-8"))
    merged = header["merged_aliases"]
    assert [m["path"].endswith("z_hard.jpg") for m in merged] == [True]
    assert "z_hard.jpg" in (out / INDEX_HTML).read_text(encoding="utf-8")


def test_findings_follow_the_model_calibration() -> None:
    def text(score, threshold):
        found = image_finding(score, None, 0.5, {"score_threshold": threshold}, area_fraction=0)
        return found.text

    # A score of 0.55 reads differently by calibration: above a calibrated 0.52, below 0.6.
    assert text(0.55, 0.52).startswith(FINDING_POSITIVE)
    assert text(0.55, 0.6).startswith("none indicated")
    assert "calibrated 0.60" in text(0.55, 0.6)
    assert "uncalibrated" in text(0.55, None)


def test_cancel_then_resume_gives_every_row_once(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    rows_seen: list[dict] = []

    def on_event(event: dict) -> None:
        if event["type"] == "row":
            rows_seen.append(event["row"])

    first = FakePredictor()
    partial = run_batch(
        [evidence], first, out, on_event=on_event, cancel=lambda: len(first.seen) >= 2
    )
    assert not partial.complete and 2 <= len(partial.rows) < N_FILES
    header, rows = _jsonl(out)
    assert header["status"] == "incomplete" and len(rows) == len(partial.rows)
    assert "INCOMPLETE" in (out / INDEX_HTML).read_text("utf-8")

    second = FakePredictor()
    done = run_batch([evidence], second, out, resume=True)
    assert done.complete and len(done.rows) == N_FILES
    # Finished files were not analyzed again (README.md is never analyzed: not an image).
    analyzed = [r for r in done.rows if r["status"] != "skipped"]
    analyzed_before = [r for r in partial.rows if r["status"] != "skipped"]
    assert len(second.seen) == len(analyzed) - len(analyzed_before)
    header, rows = _jsonl(out)
    assert len(rows) == N_FILES
    assert len({r["path"] for r in rows}) == N_FILES and len({r["index"] for r in rows}) == N_FILES
    assert header["status"] == "complete" and len(header["resumed_utc"]) == 1
    assert len(_csv_rows(out)) == N_FILES


def test_rows_survive_a_crash_and_resume_completes(evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    reported: list[dict] = []
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_batch(
            [evidence],
            FakePredictor(fail_after=5),
            out,
            on_event=lambda e: reported.append(e) if e["type"] == "row" else None,
        )
    # Every row announced before the crash is on disk (at most the five images analyzed and
    # the file skipped as no image); the report was never finished.
    header, rows = _jsonl(out)
    assert header["status"] == "running" and len(rows) == len(reported) <= 6
    assert not (out / INDEX_HTML).exists()

    summary = run_batch([evidence], FakePredictor(), out, resume=True)
    assert summary.complete and len(summary.rows) == N_FILES
    assert len({r["path"] for r in _jsonl(out)[1]}) == N_FILES
    # Picture folders of images analyzed but never written as rows were cleared.
    folders = {p.name for p in (out / "images").iterdir() if p.is_dir()}
    assert folders == {f"{r['index']:05d}" for r in summary.rows if r["status"] == "ok"}


def test_changed_input_is_flagged(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    target = save(ev / "x.png", pattern(20, 20))
    save(ev / "y.png", pattern(20, 20, seed=9))

    class Tamperer(FakePredictor):
        def analyze(self, path, settings=None):
            result = super().analyze(path, settings)
            if Path(path) == target:
                save(target, pattern(20, 20, seed=3))  # the evidence changes mid-batch
            return result

    summary = run_batch([ev], Tamperer(), tmp_path / "out")
    assert summary.n_hash_mismatches == 1
    changed = next(r for r in summary.rows if r["name"] == "x.png")
    assert changed["hash_check"] == "MISMATCH" and changed["sha256_end"] == sha256_file(target)
    assert "MISMATCH" in (tmp_path / "out" / INDEX_HTML).read_text("utf-8")
    csv_rows = _csv_rows(tmp_path / "out")
    assert json.loads((tmp_path / "out" / REPORT_JSON).read_text())["n_hash_mismatches"] == 1
    assert [r["hash_check"] for r in csv_rows] == ["MISMATCH", "match"]


def test_refusals_are_clear(evidence: Path, tmp_path: Path) -> None:
    inside = evidence / "nested" / "report"
    with pytest.raises(ReportError, match="inside the input folder"):
        run_batch([evidence], FakePredictor(), inside)
    assert not inside.exists()
    with pytest.raises(ReportError, match="folder holding the input"):
        run_batch([evidence / "a_red.jpg"], FakePredictor(), evidence)

    out = tmp_path / "busy"
    out.mkdir()
    (out / "other.txt").write_text("x")
    with pytest.raises(ReportError, match="not empty"):
        run_batch([evidence], FakePredictor(), out)
    with pytest.raises(ReportError, match="no report to resume"):
        run_batch([evidence], FakePredictor(), out, resume=True)

    done = tmp_path / "done"
    run_batch([evidence / "b_plain.png"], FakePredictor(), done)
    with pytest.raises(ReportError, match="threshold"):
        run_batch([evidence], FakePredictor(), done, ReportOptions(threshold=0.7), resume=True)
    with pytest.raises(ReportError, match="no files to analyze"):
        run_batch([tmp_path / "missing"], FakePredictor(), tmp_path / "r2")
    with pytest.raises(ReportError, match="mode must be one of"):
        run_batch([evidence], FakePredictor(), tmp_path / "r4", ReportOptions(mode="zoom"))
    with pytest.raises(ReportError, match="unknown report format"):
        run_batch([evidence], FakePredictor(), tmp_path / "r3", ReportOptions(formats=("docx",)))
    with pytest.raises(ReportError, match="pictures must be one of"):
        run_batch([evidence], FakePredictor(), tmp_path / "r5", ReportOptions(pictures="some"))


def test_invalid_model_output_is_an_error_row(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    save(ev / "nan.png", pattern(20, 20))
    save(ev / "fine.png", pattern(20, 20, seed=2))

    class Broken(FakePredictor):
        def analyze(self, path, settings=None):
            result = super().analyze(path, settings)
            if Path(path).name == "nan.png":
                result.probability[:] = np.nan
                result.score = float("nan")
            return result

    summary = run_batch([ev], Broken(), tmp_path / "out")
    assert [(r["name"], r["status"]) for r in summary.rows] == [
        ("fine.png", "ok"),
        ("nan.png", "error"),
    ]
    assert "invalid score" in summary.rows[1]["error"]
    assert len(_jsonl(tmp_path / "out")[1]) == 2  # strict JSON (no NaN) was written


def test_a_journal_of_an_older_version_keeps_its_renamed_columns(tmp_path):
    # Reports begun before "analysed_utc" became "analyzed_utc" resume with the time kept.
    import json

    from ncl_core.report.rows import RESULTS_JSONL, load_journal

    records = [
        {"record": "header", "tool": "ncl-forensics"},
        {"record": "row", "index": 0, "path": "a.jpg", "analysed_utc": "2026-12-01T10:00:00Z"},
        {"record": "row", "index": 1, "path": "b.jpg", "analyzed_utc": "2026-12-05T10:00:00Z"},
    ]
    (tmp_path / RESULTS_JSONL).write_text("".join(json.dumps(r) + "\n" for r in records))
    header, rows = load_journal(tmp_path)
    assert header == {"tool": "ncl-forensics"}
    assert [r["analyzed_utc"] for r in rows] == ["2026-12-01T10:00:00Z", "2026-12-05T10:00:00Z"]
    assert all("analysed_utc" not in r for r in rows)
