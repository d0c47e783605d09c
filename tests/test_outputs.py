"""``ncl_core.inference.outputs``: the one evidence-folder rule and the one writer of an image's files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from ncl_core import __version__
from ncl_core.errors import EvidenceFolderError, ReportError
from ncl_core.evidence.image import load_evidence
from ncl_core.inference.outputs import (
    output_name,
    refuse_inside_evidence,
    unique_stem,
    write_output,
    write_outputs,
)
from ncl_core.inference.predictor import InferenceSettings, Predictor
from ncl_core.inference.render import overlay_rgb
from ncl_core.views import compute_views

from imaging import pattern, save


@pytest.fixture(scope="module")
def analyzed(tiny_model_path, tmp_path_factory):
    path = save(tmp_path_factory.mktemp("ev") / "photo.jpg", pattern(40, 56, seed=1), quality=90)
    evidence = load_evidence(path)
    predictor = Predictor.load(tiny_model_path, device="cpu")
    return evidence, predictor.analyze(evidence, settings=InferenceSettings("resize", 64))


def test_refuse_inside_evidence_names_both_and_raises_the_callers_error(tmp_path):
    evidence = tmp_path / "case"
    photo = save(evidence / "a.png", pattern(8, 8))
    refuse_inside_evidence(tmp_path / "out", [evidence])  # outside: fine
    with pytest.raises(EvidenceFolderError, match="inside the input folder"):
        refuse_inside_evidence(evidence / "sub", [evidence])
    with pytest.raises(ReportError, match="report folder .* folder holding the input"):
        refuse_inside_evidence(evidence, [photo], "report folder", ReportError)
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/raw\xff")
    os.mkdir(odd)
    with pytest.raises(EvidenceFolderError, match=r"raw\\xff"):  # printable, never a crash
        refuse_inside_evidence(os.path.join(odd, "out"), [odd])


def test_write_outputs_writes_the_command_lines_files_and_record(analyzed, tmp_path):
    evidence, analysis = analyzed
    views = compute_views(("ela", "metadata"), evidence)
    record = write_outputs(tmp_path, "photo", analysis, evidence.image, views=views)

    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "photo.mask.png",
        "photo.heatmap.png",
        "photo.overlay.png",
        "photo.ela.png",
        "photo.json",
    }
    with Image.open(tmp_path / "photo.mask.png") as im:
        mask = np.asarray(im)
    np.testing.assert_array_equal(mask, np.where(analysis.mask, 255, 0))
    with Image.open(tmp_path / "photo.heatmap.png") as im:  # palette: the value is p * 255
        assert im.mode == "P" and im.size == (56, 40)
        index = np.asarray(im).astype(float)
    assert np.abs(index / 255 - analysis.probability).max() <= 1 / 255 + 1e-6
    with Image.open(tmp_path / "photo.overlay.png") as im:
        overlay = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(
        overlay, overlay_rgb(evidence.image, analysis.probability, analysis.threshold)
    )
    saved = json.loads((tmp_path / "photo.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["app_version"] == __version__ and saved["sha256"] == evidence.sha256
    assert (
        saved["outputs"]["ela"]
        == saved["views"]["ela"]["output"]
        == str(tmp_path / "photo.ela.png")
    )
    assert "metadata" not in saved["outputs"] and saved["views"]["metadata"]["summary"]
    # The finding, in the words the panel, the command line and the reports use.
    from ncl_core.inference.finding import analysis_finding

    assert saved["finding"]["text"] == analysis_finding(analysis).text
    assert {"regions", "area_fraction", "localized", "calibrated"} <= set(saved["finding"])


def test_write_output_kinds_and_names(analyzed, tmp_path):
    evidence, analysis = analyzed
    plain = write_output("overlay", tmp_path / "o.png", analysis, evidence.image, overlay="off")
    with Image.open(plain) as im:
        np.testing.assert_array_equal(np.asarray(im), evidence.image)
    outlined = write_output(
        "overlay", tmp_path / "m.png", analysis.at(0.0), evidence.image, overlay="mask"
    )
    assert outlined.is_file()
    with pytest.raises(ValueError, match="needs the image"):
        write_output("overlay", tmp_path / "x.png", analysis)
    with pytest.raises(ValueError, match="unknown output"):
        write_output("glow", tmp_path / "x.png", analysis)

    assert output_name("/ev/photo.jpg", "mask") == "photo.mask.png"
    assert len(output_name("é" * 200 + ".jpg", "heatmap").encode()) <= 255
    used: set[str] = set()
    assert [unique_stem(p, used) for p in ("a/x.jpg", "b/x.png", "x.tif")] == ["x", "x-2", "x-3"]
