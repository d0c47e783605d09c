"""Forensic views in the Analysis view: a map layer like the model's, computed off the GUI
thread, cached per image, two side by side, and the metadata table."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.forensic_views import NCL
from app.qtimage import array_from_qimage

from gui_helpers import wait_analysis


@pytest.fixture
def forged_jpeg(tmp_path):
    """A JPEG host (quality 75) with a square pasted in without compression, saved at 95."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    base = np.stack([xx * 1.5, yy * 2, (xx + yy)], axis=2) + rng.normal(0, 8, (96, 128, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + 20, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=75)
    host = np.asarray(Image.open(buf)).copy()
    host[32:64, 48:80] = np.clip(rng.normal(128, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0131] = "Forger 2.0"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    path = tmp_path / "evidence-jpeg" / "forged.jpg"
    path.parent.mkdir()
    Image.fromarray(host).save(path, quality=95, exif=exif.tobytes())
    return path


def _pixels(viewer) -> np.ndarray:
    return array_from_qimage(viewer.rendered().toImage()).astype(int)


def _wait_combined(qtbot, panel) -> None:
    """Until the shown image's combined evidence is made and no view job runs."""
    qtbot.waitUntil(
        lambda: panel.result("combined") is not None and not panel.is_busy(), timeout=30000
    )


def _table(panel) -> dict[tuple[str, str], str]:
    t = panel.table
    return {
        (t.item(r, 0).text(), t.item(r, 1).text()): t.item(r, 2).text() for r in range(t.rowCount())
    }


def test_a_view_is_an_overlay_layer_computed_off_the_gui_thread_and_cached(
    qtbot, window, forged_jpeg
):
    view = window.analysis
    panel = view.forensic
    view.set_overlay_mode("heatmap")
    view.panel.opacity_slider.setValue(100)
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: panel.result("metadata") is not None and not panel.is_busy())
    assert ("EXIF", "Software") in _table(panel) and _table(panel)[
        ("EXIF", "Software")
    ] == "Forger 2.0"
    assert "Forger 2.0" in panel.meta_summary.text()
    qtbot.wait(50)
    ncl_pixels = _pixels(view.viewer)

    panel.select(shown="ela")
    qtbot.waitUntil(lambda: panel.result("ela") is not None and not panel.is_busy())
    ela = panel.result("ela")
    # metadata and Content Credentials for every image, the combined evidence for every
    # analysed one, then ELA
    assert "MainThread" not in panel.computed_in and len(panel.computed_in) == 4
    qtbot.waitUntil(
        lambda: view.layers.heat_key == (id(ela.map), view.panel.cmap_combo.currentData())
    )
    qtbot.wait(50)
    ela_pixels = _pixels(view.viewer)
    assert np.abs(ela_pixels - ncl_pixels).mean() > 3  # the drawn layer is the ELA map
    assert ela.map[32:64, 48:80].mean() > 2 * ela.map.mean()
    assert "Error level" in panel.status_label.text()

    # The threshold applies to the view's map as it does to the model's.
    view.set_overlay_mode("mask")
    view.set_threshold(0.5)
    qtbot.waitUntil(lambda: view.mask is not None and view.mask.shape == ela.map.shape)
    qtbot.waitUntil(lambda: np.array_equal(view.mask, ela.map >= 0.5))

    # Back to the model's map and to ELA again: from the cache, no new computation.
    panel.select(shown=NCL)
    panel.select(shown="ela")
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    qtbot.wait(100)
    assert len(panel.computed_in) == 4
    assert panel.result("ela") is ela


def test_two_maps_side_by_side(qtbot, window, forged_jpeg):
    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    panel.select(shown="ela", beside="noise")
    assert view.panel.side_check.isChecked() and view.side_viewer.isVisible()
    qtbot.waitUntil(lambda: panel.result("noise") is not None and panel.result("ela") is not None)
    qtbot.waitUntil(lambda: view.side_viewer.image_size() == (128, 96))
    assert "Noise level" in panel.status_label.text() and "Error level" in panel.status_label.text()


def test_gps_on_demand_and_not_applicable_views(qtbot, window, forged_jpeg, image_file):
    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: panel.table.rowCount() > 0 and not panel.is_busy())
    assert _table(panel)[("GPS", "GPSLatitudeRef")].startswith("(hidden")
    panel.gps_check.setChecked(True)
    qtbot.waitUntil(lambda: _table(panel).get(("GPS", "GPSLatitudeRef")) == "N")

    panel.select(shown="jpeg")
    window.open_paths([image_file])  # a PNG: no JPEG tables, no metadata
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: panel.result("jpeg") is not None)
    assert "not applicable: not a JPEG file (PNG)" in panel.status_label.text()
    assert "not applicable" in panel.meta_summary.text()
    assert panel.shown_map(view.analysis) is None


def test_ela_quality_is_the_files_own_and_can_be_chosen(qtbot, window, forged_jpeg):
    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    panel.select(shown="ela")
    qtbot.waitUntil(lambda: panel.result("ela") is not None and not panel.is_busy())
    assert panel.result("ela").details["quality"] == 95  # the file's own tables
    assert "quality 95 (the file's own quality" in panel.status_label.text()
    panel.ela_quality_combo.setCurrentIndex(panel.ela_quality_combo.findData(70))
    qtbot.waitUntil(lambda: panel.result("ela") is not None and not panel.is_busy())
    assert panel.result("ela").details["quality"] == 70
    assert "quality 70 (chosen)" in panel.status_label.text()


def test_combined_view_takes_the_model_map_as_a_cue(qtbot, window, forged_jpeg):
    view = window.analysis
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    panel = view.forensic
    panel.select(shown="combined")
    _wait_combined(qtbot, panel)
    result = panel.result("combined")
    assert result.details["with_model"] and result.map.shape == view.analysis.probability.shape
    assert "share by cue" in panel.status_label.text()


def test_the_combined_finding_is_in_the_result_panel_for_every_analysed_image(
    qtbot, window, forged_jpeg
):
    view = window.analysis
    label = view.panel.combined_label
    assert label.text() == "–"
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    panel = view.forensic
    assert panel.shown() == NCL and not panel.beside()  # nobody asked for the view
    _wait_combined(qtbot, panel)
    result = panel.result("combined")
    assert result.details["with_model"]
    qtbot.waitUntil(lambda: label.text() == result.summary.split(";")[0])
    assert label.text().startswith(("manipulation indicated", "none indicated"))
    assert f"{result.details['image_score']:.3f}" in label.text()


def test_a_view_that_fails_costs_only_itself(qtbot, window, forged_jpeg, monkeypatch):
    from ncl_core.views import clone

    def broken(*args, **kwargs):
        raise RuntimeError("clone detection broke")

    monkeypatch.setattr(clone, "compute", broken)  # a cue of the combined evidence
    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    _wait_combined(qtbot, panel)
    assert panel.result("combined").summary == "failed: RuntimeError: clone detection broke"
    assert view.panel.combined_label.text() == panel.result("combined").summary
    # computed in the same job, and kept
    assert "Forger 2.0" in panel.meta_summary.text()
    assert panel.result("c2pa") is not None


def test_the_combined_evidence_of_a_very_large_image_is_the_reports(
    qtbot, window, forged_jpeg, monkeypatch
):
    import ncl_core.report.forensic_views as report_views

    monkeypatch.setattr(report_views, "VIEW_MAX_PIXELS", 64 * 48)  # this image is "very large"
    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    _wait_combined(qtbot, panel)
    result = panel.result("combined")
    assert result.map.shape == view.analysis.probability.shape  # drawn over the whole image
    assert "scaled down to 64x48 px" in result.summary
    evidence = window.analysis.state.evidence
    bounded, _ = report_views.bounded_evidence(evidence)
    from ncl_core.views import compute_view

    as_reported = compute_view("combined", bounded, model_map=view.analysis.probability)
    assert result.details["image_score"] == as_reported.details["image_score"]


def test_the_combined_evidence_is_made_again_with_another_models_map(qtbot, window, forged_jpeg):
    from ncl_core.views import compute_view

    view = window.analysis
    panel = view.forensic
    window.open_paths([forged_jpeg])
    wait_analysis(qtbot, view)
    _wait_combined(qtbot, panel)
    first = panel.result("combined")
    other = np.zeros_like(view.analysis.probability)  # as another model's analysis gives it
    panel.set_model_map(other)
    qtbot.waitUntil(
        lambda: (
            panel.result("combined") is not None
            and panel.result("combined") is not first
            and not panel.is_busy()
        ),
        timeout=30000,
    )
    expected = compute_view("combined", panel.evidence, model_map=other)
    assert panel.result("combined").details["image_score"] == expected.details["image_score"]
    assert expected.details["image_score"] != first.details["image_score"]
