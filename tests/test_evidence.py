"""Each image is read once: ``load_evidence``, ``Predictor.analyze_stream`` and the batch report.

Opens are counted by wrapping ``open`` (``builtins``, ``io`` and ``os``), so Pillow, pathlib and
our own readers are all seen, in every thread.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from open_counter import count_opens, opens
from PIL import Image

from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.errors import ImageReadError
from ncl_core.evidence.image import Evidence, load_evidence, load_or_error, read_ahead
from ncl_core.inference.predictor import InferenceSettings, Predictor

from imaging import pattern, save

SMALL = InferenceSettings(mode="resize", input_size=64)


def _rotated_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    return save(path, pattern(24, 40, seed=3), quality=92, exif=exif)


@pytest.fixture(scope="module")
def predictor(tiny_model_path: Path) -> Predictor:
    return Predictor.load(tiny_model_path, device="cpu")


def test_load_evidence_reads_the_file_once_and_hashes_the_bytes_it_decoded(tmp_path, monkeypatch):
    path = _rotated_jpeg(tmp_path / "ev" / "phone.jpg")
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    with count_opens(monkeypatch, [path]) as counts:
        evidence = load_evidence(path)

    assert opens(counts, path) == 1
    assert evidence.data == before[0] and evidence.size_bytes == len(before[0])
    assert evidence.sha256 == hashlib.sha256(before[0]).hexdigest() == evidence.file_sha256
    assert evidence.image.shape == (40, 24, 3) and evidence.image.dtype == np.uint8
    assert "image was EXIF-rotated (orientation 6)" in evidence.warnings
    assert evidence.format == "JPEG" and evidence.info.exif["make"] == "Canon"
    assert (evidence.info.width, evidence.info.height) == (24, 40)
    assert evidence.path == path and evidence.source == str(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # evidence is never written


def test_unreadable_files_are_image_read_errors_naming_the_file(tmp_path):
    whole = io.BytesIO()
    Image.fromarray(pattern(64, 64)).save(whole, format="JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.getvalue()[:300])
    with pytest.raises(ImageReadError, match=r"cut\.jpg"):
        load_evidence(cut)
    with pytest.raises(ImageReadError, match=r"missing\.png: file not found"):
        load_evidence(tmp_path / "missing.png")

    # For batches: an error result, hashed when the bytes could be read.
    error = load_or_error(cut)
    assert isinstance(error, AnalysisError) and "cut.jpg" in error.message
    assert error.sha256 == hashlib.sha256(cut.read_bytes()).hexdigest()
    missing = load_or_error(tmp_path / "missing.png")
    assert isinstance(missing, AnalysisError) and missing.sha256 is None


def test_analyzing_one_image_opens_it_once(predictor, tmp_path, monkeypatch):
    path = _rotated_jpeg(tmp_path / "ev" / "phone.jpg")

    with count_opens(monkeypatch, [path]) as counts:
        evidence = load_evidence(path)
        result = predictor.analyze(evidence, settings=SMALL)
    assert opens(counts, path) == 1

    with count_opens(monkeypatch, [path]) as counts:
        from_path = predictor.analyze(path, settings=SMALL)
    assert opens(counts, path) == 1

    for analysis in (result, from_path):
        assert analysis.sha256 == evidence.sha256 and analysis.source == str(path)
        assert analysis.image_format == "JPEG" and (analysis.width, analysis.height) == (24, 40)
        assert analysis.warnings == list(evidence.warnings)
    np.testing.assert_array_equal(result.probability, from_path.probability)


def test_analyze_stream_gives_each_analysis_with_its_evidence(predictor, tmp_path, monkeypatch):
    good = [save(tmp_path / f"img{i}.png", pattern(40, 56, seed=i)) for i in range(3)]
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    in_memory = load_evidence(good[2])
    sources = [good[0], bad, good[1], in_memory]

    with count_opens(monkeypatch, [*good, bad]) as counts:
        pairs = list(predictor.analyze_stream(sources, settings=SMALL))

    assert [opens(counts, p) for p in good] == [1, 1, 0]  # the Evidence was not read again
    assert opens(counts, bad) == 1
    assert [type(r) for _, r in pairs] == [Analysis, AnalysisError, Analysis, Analysis]
    (e0, r0), (e1, r1), (e2, r2), (e3, r3) = pairs
    assert e1 is None and "bad.png" in r1.message
    assert r1.sha256 == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert e3 is in_memory and r3.source == str(good[2])
    for evidence, result in ((e0, r0), (e2, r2), (e3, r3)):
        assert result.sha256 == evidence.sha256 and result.source == evidence.source
        assert result.probability.shape == evidence.image.shape[:2]
    # The plain iterator gives the same results without the evidence.
    plain = list(predictor.analyze_many(sources, settings=SMALL))
    assert [r.source for r in plain] == [r.source for _, r in pairs]


def test_read_ahead_stops_when_closed_and_passes_source_errors_on(tmp_path):
    paths = [save(tmp_path / f"img{i}.png", pattern(20, 20, seed=i)) for i in range(6)]
    loaded = read_ahead(paths, prefetch=1)
    assert isinstance(next(loaded), Evidence)
    loaded.close()  # the reader thread ends; nothing blocks

    def sources():
        yield paths[0]
        raise RuntimeError("the list of files broke")

    with pytest.raises(RuntimeError, match="broke"):
        list(read_ahead(sources()))
