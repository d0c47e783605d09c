"""The Analysis view's side panel and legend as a new user meets them: typing a threshold,
scrolling past controls, the result in sight at 1280 x 800, labels that name what is shown."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel

from gui_helpers import wait_analysis


def _wait_views(qtbot, view) -> None:
    qtbot.waitUntil(lambda: not view.forensic.is_busy(), timeout=30_000)
    qtbot.wait(20)  # the re-draw their results ask for


def _type_threshold(qtbot, spin, text: str) -> None:
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text.replace(".", spin.locale().decimalPoint()))


@pytest.mark.parametrize("typed", ["0.35", ".35"])
def test_a_typed_threshold_is_kept_as_typed(qtbot, window, typed):
    view = window.analysis
    spin = view.panel.threshold_spin
    assert view.threshold() == 0.5
    _type_threshold(qtbot, spin, typed[:2])  # "0." or ".3": nothing taken mid-typing
    assert view.threshold() == 0.5
    assert spin.lineEdit().text().endswith(typed[1:2].replace(".", spin.locale().decimalPoint()))
    _type_threshold(qtbot, spin, typed)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)  # typing ends: the value is taken
    assert view.threshold() == pytest.approx(0.35)
    assert spin.value() == pytest.approx(0.35)
    assert view.panel.threshold_slider.value() == 35


def _wheel(widget, up: bool = False) -> QWheelEvent:
    centre = QPointF(widget.rect().center())
    delta = QPoint(0, 120 if up else -120)
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(),
        delta,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)
    return event


def test_the_wheel_changes_a_panel_control_only_when_it_has_the_focus(qtbot, window):
    panel = window.analysis.panel
    combo, spin, slider = panel.cmap_combo, panel.threshold_spin, panel.opacity_slider
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    window.analysis.viewer.setFocus()  # the focus elsewhere, as after a click on the image
    qtbot.waitUntil(window.analysis.viewer.hasFocus, timeout=5_000)
    before = (combo.currentIndex(), spin.value(), slider.value())
    for widget in (combo, spin, slider):
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel gives no focus
        event = _wheel(widget)
        assert not event.isAccepted()  # handed on: the panel scrolls instead
        assert not widget.hasFocus()
    assert (combo.currentIndex(), spin.value(), slider.value()) == before
    # Clicked (focused), a control takes the wheel as usual.
    for widget in (combo, spin, slider):
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus, timeout=5_000)
        assert _wheel(widget, up=widget is not combo).isAccepted()
    assert combo.currentIndex() == before[0] + 1
    assert spin.value() == pytest.approx(before[1] + 0.01)
    assert slider.value() != before[2]
    # Every combo box of the panel is guarded, the forensic views' and the label box's too.
    from PySide6.QtWidgets import QComboBox

    for other in panel.content.findChildren(QComboBox):
        assert other.focusPolicy() == Qt.FocusPolicy.StrongFocus
        value = other.currentIndex()
        assert not _wheel(other).isAccepted() and other.currentIndex() == value


def _jpeg_with_exif(path, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R5 Mark II (a long model name from the camera)"
    exif[0x0131] = "Adobe_Photoshop_2024_(Windows)_build_25.1.0.20231023.r.120_x64_en_US"
    Image.fromarray(rgb).save(path, quality=90, exif=exif)


def test_the_result_is_in_sight_at_1280_by_800_and_the_panel_keeps_its_width(
    qtbot, window, image_file, tmp_path
):
    window.resize(1280, 800)
    view = window.analysis
    panel = view.panel
    table = view.forensic.table
    view.open_image(image_file)
    wait_analysis(qtbot, view)
    _wait_views(qtbot, view)
    viewport = panel.viewport()
    for label in (panel.finding_label, panel.score_label):
        top_left = label.mapTo(viewport, QPoint(0, 0))
        assert label.isVisible() and label.text() not in ("", "–")
        assert top_left.y() >= 0 and top_left.y() + label.height() <= viewport.height()
        assert top_left.x() >= 0 and top_left.x() + label.width() <= viewport.width()
    assert table.rowCount() == 0 and not table.isVisibleTo(panel)  # no metadata: no table
    width = panel.width()

    other = tmp_path / "a_much_longer_file_name_without_any_space_from_another_camera.jpg"
    _jpeg_with_exif(other, seed=3)
    view.open_image(other)
    wait_analysis(qtbot, view)
    _wait_views(qtbot, view)
    qtbot.wait(50)  # the panel's re-fit after new text
    assert view.path == other
    assert table.rowCount() > 0 and table.isVisibleTo(panel)  # metadata: listed
    assert panel.width() == width
    assert panel.content.width() <= viewport.width()


def test_the_legend_and_the_panes_name_the_map_shown(qtbot, window, tmp_path):
    from PIL import Image

    # Noise only in one corner: the noise view cannot judge departures and draws the level.
    image = np.full((256, 256, 3), 120, np.uint8)
    rng = np.random.default_rng(1)
    image[:64, :64] = np.clip(120 + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "flat.png"
    Image.fromarray(image).save(path)
    view = window.analysis
    legend = view.legend
    view.open_image(path)
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: "tampering probability" in " ".join(legend.texts()), timeout=10_000)

    view.forensic.select(shown="ela")
    _wait_views(qtbot, view)
    qtbot.waitUntil(lambda: "Error level (ELA)" in " ".join(legend.texts()), timeout=10_000)
    text = " ".join(legend.texts())
    assert "tampering probability" not in text
    assert "grey levels" in text  # its scale, in the units of its map

    view.forensic.select(shown="noise")
    _wait_views(qtbot, view)
    qtbot.waitUntil(lambda: "Noise level" in " ".join(legend.texts()), timeout=10_000)
    assert view.forensic.result("noise").details["judged"] is False
    text = " ".join(legend.texts())
    assert "more noise" in text and "not judged" in text  # as drawn: the level itself

    # Side by side: the panes say what they show.
    view.set_side_by_side(True)
    qtbot.waitUntil(lambda: view.side_viewer.caption.text() == "Noise level", timeout=10_000)
    assert view.viewer.caption.text() == "original"
    assert view.panel.panes_label.text() == "left: original · right: Noise level"
    view.forensic.select(shown="ncl", beside="clone")
    _wait_views(qtbot, view)
    qtbot.waitUntil(lambda: view.side_viewer.caption.text() == "Clone detection", timeout=10_000)
    assert view.viewer.caption.text() == "image with NCL map (the model)"
    view.set_side_by_side(False)
    qtbot.waitUntil(lambda: not view.side_viewer.isVisible(), timeout=5_000)
    assert view.viewer.caption.text() == "" and not view.viewer.caption.isVisible()


def test_the_patch_legend_is_never_cut(qtbot, window, image_file):
    window.resize(1000, 700)
    view = window.analysis
    view.open_image(image_file)
    wait_analysis(qtbot, view)
    view.set_show_patches(True)
    legend = view.legend
    qtbot.waitUntil(lambda: any("authentic" in t for t in legend.texts()), timeout=10_000)
    height = legend.height()
    widest = max(p.width for p in legend.layout(10_000)) + 20
    for width in (legend.width(), widest):  # the window's, and too narrow for one row
        legend.resize(width, legend.height())
        assert legend.cut() == []
        names = [t.split()[0] for t in legend.texts()]
        assert names[-3:] == ["tampered", "contour", "authentic"]
        assert all(p.x + p.width <= width for p in legend.layout())
        swatches = [p.text for p in legend.layout() if p.kind == "swatch"]
        assert [t.split()[0] for t in swatches] == ["tampered", "contour", "authentic"]
    assert legend.rows() >= 2  # the items went on to more rows, whole
    # The patches off, or another map: the legend keeps its height (the image does not jump).
    legend.resize(window.analysis.legend.width(), height)
    view.set_show_patches(False)
    qtbot.waitUntil(lambda: not any("authentic" in t for t in legend.texts()), timeout=10_000)
    view.forensic.select(shown="ela")
    _wait_views(qtbot, view)
    qtbot.waitUntil(lambda: "Error level (ELA)" in " ".join(legend.texts()), timeout=10_000)
    assert legend.height() == height and legend.cut() == []


def test_the_export_dialog_shows_its_lines_whole(qtbot, window):
    dialog = window.batch.make_report_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert "threshold" in dialog.settings_label.text()
    for label in dialog.findChildren(QLabel):
        if label.wordWrap() and label.isVisible():
            assert label.height() >= label.heightForWidth(label.width()), label.text()
            bottom = label.mapTo(dialog, QPoint(0, label.height())).y()
            assert bottom <= dialog.height(), label.text()


def test_the_first_window_fits_the_screen(qtbot, registered_model):
    from app.main_window import MainWindow
    from app.settings import Settings

    window = MainWindow(Settings())  # no saved geometry: the first run
    window.confirm = lambda text: True
    qtbot.addWidget(window)
    room = window.screen().availableGeometry()
    assert window.width() <= room.width() and window.height() <= room.height()
    qtbot.waitUntil(lambda: not window.models.loading, timeout=20_000)
    window.close()
    assert window.jobs.running() == []
