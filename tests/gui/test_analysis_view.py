"""Analysis view: the overlay, the threshold without inference, contour patches, errors."""

from __future__ import annotations

import numpy as np
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
    assert view.sha_label.text().replace("\n", "") == view.analysis.sha256
    assert view.score_label.text() == f"{view.analysis.score:.3f}"
    qtbot.wait(50)
    plain = _pixels(view.viewer)

    view.opacity_slider.setValue(100)
    view.set_overlay_mode("heatmap")
    qtbot.waitUntil(lambda: view.viewer.layer_visible("heatmap"))
    qtbot.wait(50)
    heat = _pixels(view.viewer)
    assert np.abs(heat - plain).mean() > 5  # the heatmap really covers the image

    view.toggle_overlay()  # Space: back to the original
    qtbot.wait(50)
    assert np.array_equal(_pixels(view.viewer), plain)


def test_threshold_slider_redraws_the_mask_without_running_the_model(
    qtbot, window, image_file, monkeypatch
):
    from ncl_core.infer import Predictor

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
    view.threshold_slider.setValue(round(middle * 100))
    qtbot.waitUntil(lambda: view.mask_renders > renders)
    expected = prob >= view.threshold()
    assert np.array_equal(view.mask, expected)
    assert 0 < view.mask.sum() < view.mask.size
    assert view.area_label.text().startswith(f"{100 * expected.mean():.2f} %")
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
    assert view.patch_check.isChecked()
    assert view.patch_counts_label.text().startswith("2 tampered, 2 contour, 252 authentic")
    assert view.viewer.layer_visible("patches")

    # From the prediction at threshold 0 every patch is fully flagged.
    view.patch_source.setCurrentIndex(view.patch_source.findData("prediction"))
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
        "ncl_core.modelfile.bundled_model_path", lambda: tmp_path / "none.safetensors"
    )
    window = make_window()
    assert window.models.info is None
    assert "no model" in window.message_bar.text().lower()
    window.open_paths([image_file])
    qtbot.waitUntil(lambda: window.analysis.image is not None and not window.analysis.is_busy())
    assert window.analysis.viewer.has_image()
    assert window.analysis.score_label.text().startswith("no model")


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


def test_command_line_images_open_the_first_and_queue_all(qtbot, window, image_file, tmp_path):
    second = tmp_path / "second.png"
    Image.open(image_file).save(second)
    window.open_startup([str(image_file), str(second)])
    wait_analysis(qtbot, window.analysis)
    assert window.analysis.path == image_file
    qtbot.waitUntil(lambda: not window.batch.is_busy(), timeout=30_000)
    assert [s for _, s, _ in window.batch.row_status()] == ["ok", "ok"]
    assert str(image_file) in window.settings.recent_files()
