"""Batch reports read each input once, and export finished analyses without the model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from open_counter import count_opens, opens
from PIL import Image

from ncl_core.evidence.image import Evidence, load_evidence
from ncl_core.inference.predictor import Predictor
from ncl_core.report import RESULTS_JSONL, ReportOptions, run_batch
from ncl_core.settings import InferenceSettings

from imaging import pattern, save


@pytest.fixture(scope="module")
def predictor(tiny_model_path: Path) -> Predictor:
    return Predictor.load(tiny_model_path, device="cpu")


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    for i in range(3):
        save(folder / f"img{i}.jpg", pattern(40, 56, seed=i), quality=90)
    whole = io.BytesIO()
    Image.fromarray(pattern(64, 64, seed=7)).save(whole, format="JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (folder / "notes.md").write_text("not an image by its name\n")
    return folder


class NoModel:
    """A predictor that must not run: an export of finished analyses."""

    def __init__(self, real: Predictor) -> None:
        self.model_id, self.model_sha256, self.device = real.model_id, real.model_sha256, "cpu"
        self.default_mode = real.default_mode

    def analyze(self, *args, **kwargs):
        raise AssertionError("the model ran again")

    def analyze_stream(self, *args, **kwargs):
        raise AssertionError("the model ran again")


class Counting:
    """The real predictor, recording the files it was asked to analyze."""

    def __init__(self, real: Predictor) -> None:
        self.real, self.asked = real, []
        self.model_id, self.model_sha256, self.device = real.model_id, real.model_sha256, "cpu"
        self.default_mode = real.default_mode

    def analyze_stream(self, sources, settings=None, **kwargs):
        sources = list(sources)
        self.asked += [s.path if isinstance(s, Evidence) else Path(s) for s in sources]
        return self.real.analyze_stream(sources, settings, **kwargs)


def test_the_batch_report_reads_each_input_once(predictor, evidence, tmp_path, monkeypatch):
    files = sorted(p for p in evidence.iterdir())
    at_verify: dict[str, int] = {}

    with count_opens(monkeypatch, files) as counts:

        def on_event(event: dict) -> None:
            if event["type"] == "phase" and event["phase"] == "verify":
                at_verify.update(counts)

        summary = run_batch([evidence], predictor, tmp_path / "report", on_event=on_event)

    assert (summary.n_ok, summary.n_errors, summary.n_skipped) == (3, 1, 1)
    by_name = {p.name: p for p in files}
    # Analysis, pictures, views and metadata: one read of each image.
    for name in ("img0.jpg", "img1.jpg", "img2.jpg", "notes.md"):
        assert at_verify.get(str(by_name[name].resolve())) == 1, name
    # A file that cannot be decoded: read once, then its header once more for its row.
    assert at_verify.get(str(by_name["truncated.jpg"].resolve())) == 2
    # The end-of-batch check hashes every input once more, on purpose.
    for path in files:
        assert opens(counts, path) == at_verify[str(path.resolve())] + 1
    row = next(r for r in summary.rows if r["name"] == "truncated.jpg")
    assert row["status"] == "error" and row["format"] == "JPEG" and row["sha256_start"]


def test_an_export_of_finished_analyses_does_not_run_the_model(
    predictor, evidence, tmp_path, monkeypatch
):
    images = sorted(evidence.glob("img*.jpg"))
    inputs = [*images, evidence / "notes.md"]
    pairs = list(predictor.analyze_stream(images, InferenceSettings(mode="resize")))
    fresh = run_batch(inputs, predictor, tmp_path / "fresh", ReportOptions(mode="resize"))

    with count_opens(monkeypatch, images) as counts:
        summary = run_batch(
            inputs,
            NoModel(predictor),
            tmp_path / "export",
            ReportOptions(mode="resize"),
            finished=pairs,  # (Evidence, Analysis): nothing to read again
        )
    assert [opens(counts, p) for p in images] == [1, 1, 1]  # the end-of-batch hash check only
    assert [r["status"] for r in summary.rows] == [r["status"] for r in fresh.rows]
    for mine, theirs in zip(summary.rows, fresh.rows):
        assert mine["sha256_start"] == theirs["sha256_start"]
        if mine["status"] == "ok":
            assert mine["score"] == pytest.approx(theirs["score"])
            assert mine["area_percent"] == pytest.approx(theirs["area_percent"])
            assert (tmp_path / "export" / mine["panel_path"]).is_file()
    assert (summary.n_ok, summary.n_skipped, summary.n_hash_mismatches) == (3, 1, 0)

    # By path: each file read once for its pictures; the report's threshold applies at once.
    by_path = [(Path(e.source), a) for e, a in pairs]
    with count_opens(monkeypatch, images) as counts:
        strict = run_batch(
            [evidence / "img0.jpg", evidence / "img1.jpg"],
            NoModel(predictor),
            tmp_path / "strict",
            ReportOptions(mode="resize", threshold=0.9),
            finished=by_path,
        )
    assert [opens(counts, p) for p in images[:2]] == [2, 2]  # pictures + end-of-batch check
    expected = [100 * float((a.probability >= 0.9).mean()) for _, a in pairs[:2]]
    assert [r["area_percent"] for r in strict.rows] == pytest.approx(expected)
    assert all(r["threshold"] == 0.9 for r in strict.rows)


def test_finished_analyses_of_changed_files_or_other_settings_are_made_again(
    predictor, evidence, tmp_path
):
    images = sorted(evidence.glob("img*.jpg"))
    pairs = list(predictor.analyze_stream(images, InferenceSettings(mode="resize")))
    old_sha = pairs[1][1].sha256
    save(images[1], pattern(40, 56, seed=11), quality=90)  # the evidence changed since
    options = ReportOptions(mode="resize")

    # Given by path, the file is read for its pictures: changed bytes are analyzed again.
    counting = Counting(predictor)
    by_path = [(Path(e.source), a) for e, a in pairs]
    summary = run_batch(images, counting, tmp_path / "report", options, finished=by_path)
    assert counting.asked == [images[1]]
    changed = summary.rows[1]
    assert changed["sha256_start"] == load_evidence(images[1]).sha256 != old_sha
    assert changed["hash_check"] == "match"

    # Given with its evidence, the analysis stands for the bytes analyzed, and the report
    # flags that the file no longer has them.
    counting = Counting(predictor)
    summary = run_batch(images, counting, tmp_path / "kept", options, finished=pairs)
    assert counting.asked == []
    assert summary.rows[1]["sha256_start"] == old_sha
    assert summary.rows[1]["hash_check"] == "MISMATCH" and summary.n_hash_mismatches == 1

    # Another mode: nothing finished applies.
    tiled = Counting(predictor)
    run_batch(images, tiled, tmp_path / "tiled", ReportOptions(mode="tiled"), finished=pairs)
    assert tiled.asked == images


def test_an_export_keeps_the_journal_and_resume(predictor, evidence, tmp_path):
    images = sorted(evidence.glob("img*.jpg"))
    pairs = list(predictor.analyze_stream(images, InferenceSettings(mode="resize")))
    out = tmp_path / "report"
    calls = []

    def cancel() -> bool:  # after the first image
        calls.append(1)
        return len(calls) > 1  # the first call comes before any image

    options = ReportOptions(mode="resize")
    partial = run_batch(images, NoModel(predictor), out, options, finished=pairs, cancel=cancel)
    assert not partial.complete and len(partial.rows) == 1
    done = run_batch(
        images, NoModel(predictor), out, ReportOptions(mode="resize"), resume=True, finished=pairs
    )
    assert done.complete and [r["status"] for r in done.rows] == ["ok"] * 3
    lines = [json.loads(x) for x in (out / RESULTS_JSONL).read_text().splitlines()]
    assert sorted(r["index"] for r in lines if r["record"] == "row") == [1, 2, 3]
    assert np.isfinite([r["score"] for r in done.rows]).all()


def test_an_analysis_without_its_evidence_still_gets_its_pictures(predictor, evidence, tmp_path):
    images = sorted(evidence.glob("img*.jpg"))

    class NoPixels(Counting):
        """A predictor that keeps no pixels; the second file vanishes once analyzed."""

        def analyze_stream(self, sources, settings=None, **kwargs):
            for i, (_, result) in enumerate(super().analyze_stream(sources, settings, **kwargs)):
                if i == 1:
                    images[1].unlink()
                yield None, result

    summary = run_batch(images, NoPixels(predictor), tmp_path / "report")
    first, gone = summary.rows[0], summary.rows[1]
    assert first["status"] == "ok" and (tmp_path / "report" / first["panel_path"]).is_file()
    assert gone["status"] == "ok" and gone["panel_path"] is None
    assert any("pictures not written" in w for w in gone["warnings"])
    assert gone["hash_check"] == "FILE MISSING"
