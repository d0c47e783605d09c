"""Batch reports with forensic views: the maps on each page, metadata on every row."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from test_report import FakePredictor

from ncl_core.report import ReportError, ReportOptions, run_batch

from imaging import pattern, save


@pytest.fixture
def evidence(tmp_path):
    folder = tmp_path / "evidence"
    exif = Image.Exif()
    exif[0x0131] = "PhotoEditor 3"
    image = pattern(96, 128, seed=2, noise=8)
    image[20:52, 10:42] = image[50:82, 80:112]  # a copy, for the clone view
    save(folder / "a.jpg", image, quality=90, exif=exif.tobytes())
    save(folder / "b.png", pattern(96, 128, seed=3, noise=8))
    return folder


def test_views_appear_on_each_page_and_metadata_on_every_row(evidence, tmp_path):
    out = tmp_path / "report"
    options = ReportOptions(views=("ela", "jpeg", "clone"))

    summary = run_batch([evidence], FakePredictor(), out, options)

    assert summary.n_errors == 0
    rows = {r["name"]: r for r in summary.rows}
    a, b = rows["a.jpg"], rows["b.png"]
    assert "PhotoEditor 3" in a["metadata"]
    assert b["metadata"].startswith("not applicable: no EXIF")
    assert list(a["views"]) == ["ela", "jpeg", "clone"]
    assert a["views"]["jpeg"]["summary"].startswith("IJG standard tables at quality 90")
    assert b["views"]["jpeg"]["applicable"] is False and "map_path" not in b["views"]["jpeg"]
    assert b["status"] == "ok"  # a view that does not apply is no error
    with Image.open(out / a["views"]["ela"]["map_path"]) as im:
        assert im.size == (128, 96)
    assert (out / a["views_panel_path"]).is_file()

    html = (out / "index.html").read_text()
    assert "Forensic views" in html and a["views"]["clone"]["map_path"] in html
    assert "not applicable: not a JPEG file (PNG)" in html
    with open(out / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert "PhotoEditor 3" in table[0]["metadata"] + table[1]["metadata"]
    views_cell = next(r["views"] for r in table if r["name"] == "a.jpg")
    assert json.loads(views_cell)["ela"]["applicable"] is True
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")


def test_rows_get_metadata_without_views_and_unknown_views_are_refused(evidence, tmp_path):
    summary = run_batch([evidence], FakePredictor(), tmp_path / "r1")
    a = next(r for r in summary.rows if r["name"] == "a.jpg")
    assert "PhotoEditor 3" in a["metadata"] and a["views"] is None
    with pytest.raises(ReportError, match="unknown view"):
        run_batch([evidence], FakePredictor(), tmp_path / "r2", ReportOptions(views=("magic",)))


def test_resume_needs_the_same_views(evidence, tmp_path):
    out = tmp_path / "report"
    run_batch([evidence / "a.jpg"], FakePredictor(), out, ReportOptions(views=("ela",)))
    with pytest.raises(ReportError, match="views"):
        run_batch([evidence], FakePredictor(), out, ReportOptions(views=("noise",)), resume=True)
    done = run_batch([evidence], FakePredictor(), out, ReportOptions(views=("ela",)), resume=True)
    assert all(r["views"] and list(r["views"]) == ["ela"] for r in done.rows)
    assert np.isfinite([r["score"] for r in done.rows]).all()


def test_a_view_as_reported_is_made_on_the_bounded_copy_and_drawn_at_full_size(monkeypatch):
    import dataclasses

    import ncl_core.report.forensic_views as report_views
    from ncl_core.evidence.image import Evidence
    from ncl_core.report.forensic_views import bounded_evidence, view_as_reported
    from ncl_core.views import VIEWS, compute_view

    image = pattern(96, 128, seed=2, noise=6)
    evidence = Evidence(image)
    small = view_as_reported("ela", evidence)  # within the bound: the view itself
    assert np.array_equal(small.map, compute_view("ela", evidence).map)
    assert "scaled down" not in small.summary

    monkeypatch.setattr(report_views, "VIEW_MAX_PIXELS", 48 * 64)
    found = view_as_reported("ela", evidence)
    assert found.map.shape == (96, 128) and "scaled down to 64x48 px" in found.summary
    bounded, _ = bounded_evidence(evidence)
    on_copy = compute_view("ela", bounded).map
    assert on_copy.shape == (48, 64)
    assert abs(float(found.map.mean()) - float(on_copy.mean())) < 0.02
    assert view_as_reported("ela", evidence, keep_map=False).map is None

    def broken(*args, **kwargs):
        raise RuntimeError("broke")

    monkeypatch.setitem(VIEWS, "ela", dataclasses.replace(VIEWS["ela"], compute=broken))
    failed = view_as_reported("ela", evidence)
    assert not failed.applicable and failed.summary.startswith("failed: RuntimeError: broke")
