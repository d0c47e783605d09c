"""First run: the samples and the welcome pane; later runs: neither, unless asked from Help."""

from app.resources import sample_images
from app.settings import settings_path
from app.welcome import welcome_html
from ncl_core.paths import models_dir, runs_dir, user_log_dir

from gui_helpers import wait_analysis


def test_first_run_opens_the_samples_with_the_welcome_pane(qtbot, make_window, registered_model):
    assert not settings_path().exists()
    first = make_window()
    assert first.welcome.isVisible()
    first.open_startup([])
    wait_analysis(qtbot, first.analysis)
    assert first.analysis.path == sample_images()[0]
    # Samples are demo files: never queued into the Batch view on their own.
    assert first.batch.roots == [] and first.batch.table.rowCount() == 0

    first.welcome.close()  # its ✕
    assert not first.welcome.isVisible()
    first.welcome_action.trigger()  # Help ▸ Welcome
    assert first.welcome.isVisible()
    first.close()

    second = make_window()
    assert not second.welcome.isVisible()
    second.open_startup([])
    assert second.analysis.path is None
    assert second.batch.roots == []
    second.welcome_action.trigger()
    assert second.welcome.isVisible()


def test_make_run_shows_a_sample_but_queues_none(qtbot, make_window, registered_model, tmp_path):
    from PIL import Image

    window = make_window()
    window.open_startup([], samples=True)  # ncl-forensics --samples, as `make run` starts
    wait_analysis(qtbot, window.analysis)
    assert window.analysis.path == sample_images()[0]
    assert window.batch.roots == [] and window.batch.table.rowCount() == 0
    # The analyst's casework is queued alone.
    folder = tmp_path / "case"
    folder.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(folder / "a.png")
    window.open_paths([folder])
    assert window.batch.roots == [folder]
    qtbot.waitUntil(lambda: not window.batch.is_busy(), timeout=30_000)
    assert [name for name, _, _ in window.batch.row_status()] == ["a.png"]


def test_the_open_dialog_starts_in_the_last_folder_used_or_home(
    qtbot, make_window, registered_model, tmp_path, monkeypatch
):
    from pathlib import Path

    from PIL import Image

    from app import main_window

    window = make_window()
    window.open_startup([], samples=True)
    wait_analysis(qtbot, window.analysis)
    started, chosen = [], []

    def dialog(parent, title, start, filters):
        started.append(start)
        return (chosen.pop() if chosen else ""), ""

    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName", dialog)
    window.open_dialog()  # nothing opened through it yet: home, not the samples' folder
    assert started == [str(Path.home())]
    picked = tmp_path / "case" / "photo.png"
    picked.parent.mkdir()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(picked)
    chosen.append(str(picked))
    window.open_dialog()
    window.open_dialog()  # the folder of the image opened last, remembered in the settings
    assert started[-1] == str(picked.parent)
    assert window.settings.get("dirs/open") == str(picked.parent)
    window.settings.set("dirs/open", str(tmp_path / "gone"))  # removed since: home again
    window.open_dialog()
    assert started[-1] == str(Path.home())


def test_the_welcome_text_names_this_machines_folders():
    text = welcome_html()
    for folder in (models_dir(), runs_dir(), settings_path(), user_log_dir()):
        assert str(folder) in text
    assert "not proof" in text
    assert "Training" in text and "Batch" in text


def test_open_samples_analyses_them_even_while_the_model_loads(
    qtbot, make_window, registered_model
):
    window = make_window(wait_for_model=False)
    assert window.models.loading  # the first run: the samples come before the model
    window.open_samples()
    batch = window.batch
    n = len(sample_images())
    qtbot.waitUntil(lambda: batch.table.rowCount() == n and not batch.is_busy(), timeout=60_000)
    qtbot.waitUntil(lambda: all(s == "ok" for _, s, _ in batch.row_status()), timeout=60_000)
    assert all("no model" not in note for _, _, note in batch.row_status())


def test_open_samples_again_retries_the_samples_that_failed(
    qtbot, make_window, gui_model_path, tmp_path
):
    from ncl_core.models.modelfile import ModelRegistry

    window = make_window()  # an empty registry: no model
    assert window.models.info is None
    window.open_samples()
    batch = window.batch
    n = len(sample_images())
    qtbot.waitUntil(lambda: batch.table.rowCount() == n and not batch.is_busy(), timeout=30_000)
    assert all(s == "error" for _, s, _ in batch.row_status())

    window.models.set_model(ModelRegistry().import_model(gui_model_path))
    window.open_samples()
    qtbot.waitUntil(lambda: all(s == "ok" for _, s, _ in batch.row_status()), timeout=60_000)
    assert batch.table.rowCount() == n
