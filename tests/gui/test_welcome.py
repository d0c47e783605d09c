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
    assert first.batch.roots == sample_images()
    wait_analysis(qtbot, first.analysis)
    assert first.analysis.path == sample_images()[0]

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


def test_the_welcome_text_names_this_machines_folders():
    text = welcome_html()
    for folder in (models_dir(), runs_dir(), settings_path(), user_log_dir()):
        assert str(folder) in text
    assert "not proof" in text
    assert "Training" in text and "Batch" in text
