"""Training view: the recipe of the chosen kind of run, the monitor from start to end, more
time for a resumed run, and the finding of an uncalibrated fine-tuned model."""

from __future__ import annotations

import json

from gui_helpers import wait_analysis
from qt_helpers import configure_training


def test_fine_tuning_the_active_model_shows_the_fine_tune_recipe(qtbot, window, registered_model):
    from ncl_core.training.recipes import FINETUNE

    form = window.training.form
    qtbot.waitUntil(lambda: form.base_combo.currentData() == str(registered_model.path))
    assert "Recipe (fine-tune)" in form.recipe_label.text()
    assert form.time_spin.value() == FINETUNE.time_limit_min
    assert form.epochs_spin.value() == FINETUNE.epochs


def test_the_monitor_says_it_starts_plots_the_floor_and_clears_the_eta_at_the_end(
    qtbot, window, tiny_dataset
):
    view = window.training
    monitor = view.monitor
    configure_training(view, tiny_dataset, steps=2)
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=10_000)
    assert view.start() is not None
    assert "starting" in monitor.stats.text()  # before the first step
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=60_000)
    assert "ETA" not in monitor.stats.text()
    assert monitor.stats.text().startswith("Finished")
    # The held-out figures are plotted by step, with the all-manipulated floor beside them.
    metrics = {"f1": 0.3, "auc": 0.7, "floor_f1": 0.12}
    monitor.add_event({"type": "validation", "epoch": 1, "step": 2, "metrics": metrics})
    monitor.stop()
    steps, floors = monitor.val_curves["floor_f1"].getData()
    assert list(steps) == [2] and list(floors) == [0.12]
    # The legends have rows of their own: none of them is drawn inside a plot.
    for legend in (monitor.loss_legend, monitor.val_legend):
        assert legend.parentItem() not in (monitor.loss_plot, monitor.val_plot)
    assert {label.text for _, label in monitor.loss_legend.items} >= {"total", "ncl", "pc"}


def test_a_run_out_of_time_is_offered_more_time_before_it_resumes(qtbot, make_window):
    from ncl_core.paths import runs_dir

    run = runs_dir() / "20240502-091500"
    run.mkdir(parents=True)
    config = {"name": "ft", "time_limit_min": 30, "schedule_by_time": True}
    (run / "config.json").write_text(json.dumps(config))
    events = [
        {"type": "start", "total_steps": 5000, "time": "2024-05-02T09:15:00"},
        {"type": "checkpoint", "step": 120, "time": "2024-05-02T09:45:00"},
        {"type": "finished", "stopped_by_time_limit": True, "time": "2024-05-02T09:45:01"},
    ]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run / "checkpoint.pt").write_bytes(b"never loaded to be listed")

    dialog = make_window(wait_for_model=False).training.resume_dialog()
    qtbot.addWidget(dialog)
    assert dialog.more_minutes() == 15
    assert "30-minute time limit" in dialog.time_note.text()
    assert dialog.resume_button.isEnabled()
    dialog.more_spin.setValue(0)
    assert not dialog.resume_button.isEnabled()
    dialog.more_spin.setValue(40)
    assert dialog.more_minutes() == 40 and dialog.resume_button.isEnabled()


def test_an_uncalibrated_fine_tuned_model_says_so_beside_the_score(
    qtbot, window, registered_model, image_file
):
    view = window.analysis
    window.models.info.parent = "ab" * 32  # as a fine-tuned model's file names its base
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    label = view.panel.finding_label
    assert "fine-tuned model, not calibrated" in label.text()
    assert "ncl-forensics calibrate" in label.toolTip()


def test_a_fine_tune_ends_with_its_before_after_table_and_pictures(qtbot, window, tmp_path):
    import numpy as np

    from ncl_core.inference.render import save_png
    from ncl_core.training.comparison import side_by_side
    from ncl_core.training.events import comparison_rows

    monitor = window.training.monitor
    rng = np.random.default_rng(0)
    truth = np.zeros((48, 64), bool)
    truth[10:30, 20:40] = True
    picture = side_by_side(
        rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), truth, rng.random((48, 64)), truth * 0.9
    )
    save_png(tmp_path / "01-x.png", picture, durable=False)
    rows = comparison_rows({"f1": 0.10, "auc": 0.60}, {"f1": 0.25, "auc": 0.71, "iou": 0.2})
    assert [r["metric"] for r in rows] == ["f1", "auc"]  # only figures both hold
    monitor.add_event(
        {
            "type": "comparison",
            "rows": rows,
            "floor_f1": 0.12,
            "n_images": 7,
            "pictures": [str(tmp_path / "01-x.png"), str(tmp_path / "missing.png")],
        }
    )
    panel = monitor.comparison
    assert monitor.lower.currentWidget() is panel  # shown when it arrives
    assert "7 validation image(s)" in panel.caption.text() and "0.120" in panel.caption.text()
    cells = [[panel.table.item(r, c).text() for c in range(4)] for r in range(2)]
    assert cells[0] == ["F1 at 0.5", "0.100", "0.250", "+0.150"]
    assert cells[1][0] == "pixel AUC" and cells[1][3] == "+0.110"
    first, missing = panel.picture_labels
    assert 0 < first.pixmap().width() <= picture.shape[1]  # at most the pane's width
    assert "could not be read" in missing.text()
    monitor.reset()  # a new run starts empty, on its log
    assert panel.table.rowCount() == 0 and not panel.picture_labels
    assert monitor.lower.currentWidget() is monitor.log
