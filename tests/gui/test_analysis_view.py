"""Analysis view: the overlay, the threshold without inference, contour patches, errors."""

from __future__ import annotations

import numpy as np
import pytest
from open_counter import count_opens
from PIL import Image

from app.qtimage import array_from_qimage

from gui_helpers import wait_analysis


def _pixels(viewer) -> np.ndarray:
    return array_from_qimage(viewer.rendered().toImage()).astype(int)


def test_open_image_analyses_it_and_the_overlay_changes_the_rendered_pixels(
    qtbot, window, image_file
):
    view = window.analysis
    view.set_overlay_mode("off")
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    assert view.analysis.source == str(image_file)
    assert view.analysis.probability.shape == (96, 128)
    assert view.panel.sha_label.text().replace("\n", "") == view.analysis.sha256
    assert view.panel.score_label.text() == f"{view.analysis.score:.3f}"
    qtbot.wait(50)
    plain = _pixels(view.viewer)

    view.panel.opacity_slider.setValue(100)
    view.set_overlay_mode("heatmap")
    qtbot.waitUntil(lambda: view.viewer.layer_visible("heatmap"))
    qtbot.wait(50)
    heat = _pixels(view.viewer)
    assert np.abs(heat - plain).mean() > 5  # the heatmap really covers the image

    view.toggle_overlay()  # Space: back to the original
    qtbot.wait(50)
    assert np.array_equal(_pixels(view.viewer), plain)


def test_one_analysis_opens_the_image_file_once(qtbot, window, image_file, monkeypatch):
    """The file is read once: the pixels shown, the header, the hash, the model's input and the
    forensic views (metadata, a map) all come from the same ``Evidence``."""
    import os

    view = window.analysis
    panel = view.forensic
    with count_opens(monkeypatch, [image_file]) as counts:
        window.open_paths([image_file])
        wait_analysis(qtbot, view)
        qtbot.waitUntil(lambda: panel.result("metadata") is not None and not panel.is_busy())
        panel.select(shown="ela")
        qtbot.waitUntil(lambda: panel.result("ela") is not None and not panel.is_busy())
    assert counts[os.path.realpath(image_file)] == 1
    assert view.panel.file_label.text() == "photo.png"
    assert view.panel.size_label.text().startswith("128 × 96 px, PNG")
    assert view.panel.sha_label.text().replace("\n", "") == view.analysis.sha256
    assert view.state.evidence.sha256 == view.analysis.sha256


def test_a_result_of_other_bytes_is_not_shown_over_the_file(qtbot, window, image_file):
    """A batch row's analysis is shown only if the file still has the bytes it analyzed."""
    from dataclasses import replace

    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    first = view.analysis
    stale = replace(first, sha256="0" * 64, score=-1.0)
    view.open_image(image_file, analysis=stale)
    qtbot.waitUntil(lambda: view.analysis is not first and not view.is_busy(), timeout=30_000)
    assert view.analysis.sha256 == first.sha256 and view.analysis.score == first.score
    assert "changed since it was analyzed" in window.message_bar.text()


def test_threshold_slider_redraws_the_mask_without_running_the_model(
    qtbot, window, image_file, monkeypatch
):
    from ncl_core.inference.predictor import Predictor

    calls = []
    original = Predictor.analyze
    monkeypatch.setattr(
        Predictor, "analyze", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    view = window.analysis
    view.set_overlay_mode("mask")
    view.set_threshold(0.0)
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    assert len(calls) == 1
    qtbot.waitUntil(lambda: view.mask is not None)
    assert view.mask.all()  # threshold 0 flags every pixel
    before = _pixels(view.viewer)

    prob = view.analysis.probability
    middle = float(np.quantile(prob, 0.5))
    renders = view.mask_renders
    view.panel.threshold_slider.setValue(round(middle * 100))
    qtbot.waitUntil(lambda: view.mask_renders > renders)
    expected = prob >= view.threshold()
    assert np.array_equal(view.mask, expected)
    assert 0 < view.mask.sum() < view.mask.size
    assert view.panel.area_label.text().startswith(f"{100 * expected.mean():.2f} %")
    # The finding is worded again at the new threshold, in the reports' words.
    from ncl_core.inference.finding import analysis_finding

    found = analysis_finding(view.analysis, view.threshold())
    assert view.panel.finding_label.text() == found.text
    assert f"at {view.threshold():.2f}" in found.text
    qtbot.wait(50)
    assert not np.array_equal(_pixels(view.viewer), before)
    assert len(calls) == 1  # no new inference


def test_contour_patch_view_counts_a_known_ground_truth_mask(qtbot, window, tmp_path):
    view = window.analysis
    p = window.models.model_config().patch_px
    side = 16 * p  # a 16 x 16 patch grid
    Image.fromarray(np.full((side, side, 3), 128, np.uint8)).save(tmp_path / "img.png")
    mask = np.zeros((side, side), np.uint8)
    mask[: 2 * p, : p + p // 2] = 255  # two full patches, two half-covered ones
    Image.fromarray(mask).save(tmp_path / "img_gt.png")

    window.open_paths([tmp_path / "img.png"])
    wait_analysis(qtbot, view)
    view.load_ground_truth(tmp_path / "img_gt.png")
    expected = {"authentic": 256 - 4, "tampered": 2, "contour": 2}
    qtbot.waitUntil(lambda: view.patch_counts() == expected)
    assert view.panel.patch_check.isChecked()
    assert view.panel.patch_counts_label.text().startswith("2 tampered, 2 contour, 252 authentic")
    assert view.viewer.layer_visible("patches")

    # From the prediction at threshold 0 every patch is fully flagged.
    view.panel.patch_source.setCurrentIndex(view.panel.patch_source.findData("prediction"))
    view.set_threshold(0.0)
    qtbot.waitUntil(lambda: view.patch_counts() == {"authentic": 0, "tampered": 256, "contour": 0})


def test_ground_truth_of_another_size_is_a_clear_message(qtbot, window, image_file, tmp_path):
    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_gt.png")
    view.load_ground_truth(tmp_path / "small_gt.png")
    qtbot.waitUntil(lambda: window.message_bar.level == "error")
    assert "small_gt.png" in window.message_bar.text()
    assert view.ground_truth is None


def test_a_corrupt_image_gives_a_message_not_a_crash(qtbot, window, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    window.open_paths([bad])
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=10_000)
    assert "broken.jpg" in window.message_bar.text()
    assert "Traceback" not in window.message_bar.text()
    assert window.analysis.analysis is None


def test_without_a_model_images_still_open_with_a_clear_message(
    qtbot, make_window, image_file, monkeypatch, tmp_path
):
    monkeypatch.setattr(
        "ncl_core.models.registry.bundled_model_path", lambda: tmp_path / "none.safetensors"
    )
    window = make_window()
    assert window.models.info is None
    assert "no model" in window.message_bar.text().lower()
    window.open_paths([image_file])
    qtbot.waitUntil(lambda: window.analysis.image is not None and not window.analysis.is_busy())
    assert window.analysis.viewer.has_image()
    assert window.analysis.panel.score_label.text().startswith("no model")


def test_cancel_drops_the_running_analysis(qtbot, window, image_file):
    view = window.analysis
    window.open_paths([image_file])
    view.cancel()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=30_000)
    assert view.analysis is None
    assert "cancelled" in window.statusBar().currentMessage().lower()


def test_settings_persist_between_windows(qtbot, make_window, registered_model):
    first = make_window()
    first.analysis.set_threshold(0.37)
    first.analysis.set_overlay_mode("outline")
    first.close()
    second = make_window()
    assert second.analysis.threshold() == 0.37
    assert second.analysis.overlay_mode() == "outline"


def test_save_writes_mask_heatmap_overlay_and_json(qtbot, window, image_file, tmp_path):
    import json

    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    forensic = view.forensic
    qtbot.waitUntil(lambda: forensic.result("metadata") is not None and not forensic.is_busy())
    out = tmp_path / "out"
    out.mkdir()
    for kind, name in (
        ("mask", "m.png"),
        ("heatmap", "h.png"),
        ("overlay", "o.png"),
        ("json", "a.json"),
    ):
        job = view.save(kind, out / name)
        qtbot.waitUntil(lambda j=job: not j.is_running(), timeout=10_000)
    mask = np.asarray(Image.open(out / "m.png"))
    assert mask.shape == (96, 128)
    assert np.array_equal(mask > 0, view.analysis.probability >= view.threshold())
    assert Image.open(out / "o.png").size == (128, 96)
    assert Image.open(out / "h.png").size == (128, 96)
    data = json.loads((out / "a.json").read_text())
    assert data["sha256"] == view.analysis.sha256
    assert data["threshold"] == view.threshold()
    assert data["model_sha256"] == window.models.info.sha256
    # The finding the panel shows, and the summaries of the forensic views computed.
    assert data["finding"]["text"] == view.panel.finding_label.text()
    assert data["views"]["metadata"]["summary"] == forensic.result("metadata").summary


def test_command_line_images_open_the_first_and_queue_all(qtbot, window, image_file, tmp_path):
    second = tmp_path / "second.png"
    Image.open(image_file).save(second)
    window.open_startup([str(image_file), str(second)])
    wait_analysis(qtbot, window.analysis)
    assert window.analysis.path == image_file
    qtbot.waitUntil(lambda: not window.batch.is_busy(), timeout=30_000)
    assert [s for _, s, _ in window.batch.row_status()] == ["ok", "ok"]
    assert str(image_file) in window.settings.recent_files()


def _save_buttons_enabled(window) -> list[bool]:
    view = window.analysis
    return [b.isEnabled() for b in view.panel.save_buttons.values()] + [
        a.isEnabled() for a in window.save_actions
    ]


def _block_analysis(monkeypatch) -> None:
    """Make every analysis run until it is cancelled (a large image in tiled mode)."""
    import time

    from ncl_core.inference.predictor import Cancelled, Predictor

    def slow(self, source, *args, cancel=None, **kwargs):
        while not cancel():
            time.sleep(0.01)
        raise Cancelled()

    monkeypatch.setattr(Predictor, "analyze", slow)


def test_a_new_open_shows_only_the_new_file_while_it_runs_and_after_cancel(
    qtbot, window, image_file, tmp_path, monkeypatch
):
    from ncl_core.evidence.hashing import sha256_file

    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    assert all(_save_buttons_enabled(window))
    large = tmp_path / "other" / "large.png"
    large.parent.mkdir()
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(large)

    _block_analysis(monkeypatch)
    window.open_paths([large])
    qtbot.waitUntil(lambda: view.path == large and view.is_busy(), timeout=10_000)

    def panels_belong_to_the_large_file() -> None:
        assert view.panel.file_label.text() == "large.png"
        assert view.panel.size_label.text().startswith("80 × 60 px")
        assert view.panel.sha_label.toolTip() == sha256_file(large)
        assert view.panel.sha_label.text().replace("\n", "") == sha256_file(large)
        assert view.viewer.image_size() == (80, 60)
        assert view.analysis is None
        assert view.panel.area_label.text() == view.panel.model_label.text() == "–"
        assert view.panel.time_label.text() == "–"
        assert not any(_save_buttons_enabled(window))
        for layer in ("heatmap", "mask", "outline"):
            assert not view.viewer.layer_visible(layer)  # no overlay of the previous file

    panels_belong_to_the_large_file()
    view.cancel()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    panels_belong_to_the_large_file()
    assert view.panel.score_label.text() == "cancelled"
    assert view.save_dialog("mask") is None  # Ctrl+S does nothing either


@pytest.mark.parametrize("kind", ["text_file", "decompression_bomb"])
def test_a_failed_open_leaves_nothing_of_the_previous_file(
    qtbot, window, image_file, tmp_path, kind
):
    from imaging import png_with_header_only

    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    if kind == "text_file":
        bad = tmp_path / "notes.txt"
        bad.write_text("meeting notes, not an image\n")
    else:
        bad = png_with_header_only(tmp_path / "huge.png", 20_000, 15_000)
    window.open_paths([bad])
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=10_000)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    assert bad.name in window.message_bar.text()
    assert view.analysis is None and view.image is None and view.path is None
    assert not view.viewer.has_image()
    assert view.stack.currentIndex() == 0 and bad.name in view.placeholder.text()
    assert view.panel.file_label.text() == bad.name
    for label in (view.panel.size_label, view.panel.sha_label, view.panel.meta_label):
        assert label.text() == "–"
    for label in (view.panel.area_label, view.panel.model_label, view.panel.time_label):
        assert label.text() == "–"
    assert view.panel.score_label.text() == "could not be opened"
    assert not any(_save_buttons_enabled(window))
    assert view.mask is None
    assert window.windowTitle() != f"{bad.name} — NCL Forensics"


def test_saves_never_go_into_an_evidence_folder_and_start_in_documents(
    qtbot, window, image_file, tmp_path, monkeypatch
):
    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(documents))
    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)

    # The dialog starts in the documents folder, with a name like photo.mask.png.
    asked = []
    monkeypatch.setattr(view, "ask_save_path", lambda kind, s: asked.append(s) or str(s))
    for kind, name in (
        ("mask", "photo.mask.png"),
        ("heatmap", "photo.heatmap.png"),
        ("overlay", "photo.overlay.png"),
        ("json", "photo.json"),
    ):
        job = view.save_dialog(kind)
        qtbot.waitUntil(lambda j=job: not j.is_running(), timeout=10_000)
        assert asked[-1] == documents / name
        assert (documents / name).is_file()

    # Into the evidence folder (or below it): refused, nothing written, a clear message.
    evidence = image_file.parent
    before = sorted(p.name for p in evidence.rglob("*"))
    for target in (evidence / "photo.mask.png", evidence / "sub" / "photo.json"):
        monkeypatch.setattr(view, "ask_save_path", lambda kind, s, t=target: str(t))
        assert view.save_dialog("mask") is None
        assert window.message_bar.level == "error"
        assert (
            "evidence" in window.message_bar.text() and str(evidence) in window.message_bar.text()
        )
    assert view.save("json", evidence / "direct.json") is None
    assert sorted(p.name for p in evidence.rglob("*")) == before

    # The last folder used is remembered, and an evidence folder never is.
    elsewhere = tmp_path / "case-outputs"
    elsewhere.mkdir()
    monkeypatch.setattr(view, "ask_save_path", lambda kind, s: str(elsewhere / "m.png"))
    job = view.save_dialog("mask")
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10_000)
    assert view.default_save_path("overlay") == elsewhere / "photo.overlay.png"
    window.settings.set("dirs/save", str(evidence))  # e.g. from an older version
    assert view.default_save_path("overlay") == documents / "photo.overlay.png"


def test_the_side_panel_is_never_cut_off_at_1280_by_800(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QGroupBox

    from ncl_core.data.io import ImageInfo

    window.welcome.show()
    window.resize(1280, 800)
    view = window.analysis
    exif = {
        "make": "Canon",
        "model": "EOS R5 Mark II (a long model name from the camera)",
        "software": "Adobe_Photoshop_2024_(Windows)_build_25.1.0.20231023.r.120_x64_en_US",
        "datetime": "2024:01:01 12:00:00",
    }
    info = ImageInfo(format="JPEG", width=64, height=48, mode="RGB", exif=exif)
    from ncl_core.evidence.image import Evidence

    shown = Evidence(np.zeros((48, 64, 3), np.uint8), path=tmp_path / "x.jpg", info=info)
    view.state.show_image(shown, "ab" * 32)
    assert window.minimumSizeHint().width() <= 1280 and window.minimumSizeHint().height() <= 800

    def check() -> None:
        qtbot.wait(50)
        viewport = view.panel.viewport()
        assert view.panel.content.width() <= viewport.width()
        for box in view.panel.content.findChildren(QGroupBox):
            right = box.mapTo(viewport, box.rect().topRight()).x()
            assert box.mapTo(viewport, box.rect().topLeft()).x() >= 0, box.title()
            assert right < viewport.width(), box.title()
        # The Analysis view lies inside the window, right of the welcome pane.
        left = view.mapTo(window, view.rect().topLeft()).x()
        assert left >= window.welcome.geometry().right()
        assert view.mapTo(window, view.rect().topRight()).x() < window.width()

    check()
    view.splitter.setSizes([5000, 1])  # the panel dragged as narrow as it goes
    check()


def _held_bytes(view) -> dict[str, int]:
    """The memory the Analysis view keeps of its own, by what keeps it: the distinct bytes of
    its arrays and of the pixmaps its viewers and caches hold (a numpy view of a pixmap's
    pixels is not counted twice). The library's ``Analysis`` (its float32 map) is not counted.
    """
    from numpy.lib.array_utils import byte_bounds

    ranges: list[tuple[int, int, str]] = []
    pixmaps = [
        (f"{n}.{k}", i.pixmap())
        for n, v in (("main", view.viewer), ("side", view.side_viewer))
        for k, i in v._items.items()
    ]
    pixmaps.append(("heat cache", view.layers.heat_pixmap))
    for label, pixmap in pixmaps:
        if pixmap is not None and not pixmap.isNull():
            image = pixmap.toImage()  # shallow: the pixmap's own pixels on raster platforms
            start = np.frombuffer(image.constBits(), np.uint8).ctypes.data
            ranges.append((start, start + image.sizeInBytes(), label))
    arrays = [
        (k, v)
        for part in (view.state, view.layers)
        for k, v in vars(part).items()
        if isinstance(v, np.ndarray)
    ]
    for results in view.forensic._cache.values():
        arrays += [(f"view {k}", r.map) for k, r in results.items() if r.map is not None]
    for label, array in arrays:
        if array is not getattr(view.analysis, "probability", None):
            start, end = byte_bounds(array)
            ranges.append((start, end, label))
    held: dict[str, int] = {}
    reach = 0
    for start, end, label in sorted(ranges):
        new = end - max(start, reach)  # bytes not already counted (overlapping buffers)
        if new > 0:
            held[label] = held.get(label, 0) + new
        reach = max(reach, end)
    return held


def test_a_large_image_is_held_once_and_its_layers_at_display_resolution(
    qtbot, make_window, tmp_path
):
    """A 24-megapixel photograph: the view keeps its pixels once (shared by the viewer) and the
    drawn layers at most 16 megapixels each, so what it holds stays within 3 x the RGB image
    (before: a numpy copy plus a 32-bit pixmap, and every layer at full resolution)."""
    from ncl_core.analysis import Analysis

    h, w = 4000, 6000
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, :, 0] = np.arange(w, dtype=np.uint32)[None, :] % 251
    rgb[:, :, 1] = np.arange(h, dtype=np.uint32)[:, None] % 241
    path = tmp_path / "large.bmp"
    Image.fromarray(rgb).save(path)
    prob = np.full((h, w), 0.1, np.float32)
    prob[1000:2001, 3000:4001] = 0.9  # odd edges: blocks half inside the region
    prob[3999, 5999] = 0.95  # one flagged pixel in the corner block
    analysis = Analysis(
        str(path), None, w, h, prob, 0.5, 0.9, "m", "0" * 64, {"mode": "tiled"}, "cpu", 1.0, "x"
    )
    window = make_window(wait_for_model=False)
    view = window.analysis
    view.set_overlay_mode("heatmap")
    view.set_threshold(0.5)
    view.open_image(path, analysis=analysis)
    wait_analysis(qtbot, view, timeout=300_000)
    qtbot.waitUntil(lambda: view.viewer.layer_visible("heatmap"), timeout=300_000)
    budget = 3 * rgb.nbytes
    held = _held_bytes(view)
    assert sum(held.values()) <= budget, held
    assert view.image.shape == (h, w, 3) and np.array_equal(
        view.image[::997, ::1499], rgb[::997, ::1499]
    )
    assert view.viewer.image_size() == (w, h)

    renders = view.mask_renders
    view.set_overlay_mode("mask")
    qtbot.waitUntil(lambda: view.mask_renders > renders, timeout=300_000)
    held = _held_bytes(view)
    assert sum(held.values()) <= budget, held  # the heatmap stays cached beside the mask
    # The mask is drawn from 2 x 2 blocks: a block is flagged when any of its pixels is.
    assert view.mask.shape == (h // 2, w // 2)
    assert view.mask[500, 1500] and view.mask[1000, 2000] and view.mask[1999, 2999]
    assert not view.mask[499, 1499] and not view.mask[1001, 2001]
    assert view.mask.sum() == 501 * 501 + 1
    # The area is still counted at full resolution.
    assert view.panel.area_label.text().startswith(f"{100 * (1001 * 1001 + 1) / (h * w):.2f} %")
