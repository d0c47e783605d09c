"""Training view: dataset check, a 2-step run plotted live, cancel, close mid-training."""

from __future__ import annotations

from app.main_window import TAB_TRAINING

from qt_helpers import configure_training


def test_an_unusable_folder_explains_the_expected_layouts(qtbot, window, tmp_path):
    (tmp_path / "images").mkdir()
    view = window.training
    view.form.data_field.set_text(str(tmp_path))
    qtbot.waitUntil(lambda: "Expected one of these layouts" in view.form.data_summary.text())
    assert view.start() is None
    assert window.message_bar.level == "error"


def test_a_two_step_run_puts_points_on_the_loss_plots_and_registers_the_model(
    qtbot, window, tiny_dataset
):
    window.tabs.setCurrentIndex(TAB_TRAINING)
    view = window.training
    configure_training(view, tiny_dataset, steps=2)
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=10_000)
    assert "tampered" in view.form.data_summary.text()
    assert view.start() is not None
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=60_000)
    counts = view.monitor.point_counts()
    assert counts["total"] == counts["ncl"] == counts["pc"] == 2
    assert len(view.monitor.lr_curve.getData()[0]) == 2
    assert "New model registered" in view.result_label.text()
    assert view.activate_button.isVisible()
    # One click makes it active.
    view.activate_button.click()
    qtbot.waitUntil(
        lambda: window.models.info is not None and window.models.info.name.startswith("ncl-"),
        timeout=20_000,
    )


def test_cancel_stops_training_and_keeps_a_checkpoint(qtbot, window, tiny_dataset):
    view = window.training
    configure_training(view, tiny_dataset, steps=500)
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=10_000)
    view.start()
    qtbot.waitUntil(lambda: view.monitor.point_counts().get("total", 0) >= 1, timeout=60_000)
    view.cancel()
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=60_000)
    assert "cancelled" in window.statusBar().currentMessage().lower()
    assert (view.run_dir / "checkpoint.pt").is_file()
    assert view.monitor.point_counts()["total"] < 500


def test_closing_the_window_mid_training_cancels_and_waits(
    qtbot, make_window, registered_model, tiny_dataset
):
    window = make_window()
    asked = []
    window.confirm = lambda text: asked.append(text) or True
    view = window.training
    configure_training(view, tiny_dataset, steps=500)
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=10_000)
    job = view.start()
    qtbot.waitUntil(lambda: view.monitor.point_counts().get("total", 0) >= 1, timeout=60_000)
    assert window.close()
    assert asked and "training" in asked[0]
    assert job.wait(0)  # the worker thread has finished
    assert window.jobs.running() == []


def test_refusing_to_close_keeps_the_work_running(
    qtbot, make_window, registered_model, tiny_dataset
):
    window = make_window()
    window.confirm = lambda text: False
    view = window.training
    configure_training(view, tiny_dataset, steps=500)
    qtbot.waitUntil(lambda: view.form.dataset_ok, timeout=10_000)
    view.start()
    assert not window.close()
    assert view.is_busy()
    window.confirm = lambda text: True  # the fixture closes it at the end


def test_the_packaged_app_shows_that_it_uses_no_loader_processes(make_window, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    spin = make_window().training.form.workers_spin
    assert spin.value() == 0 and not spin.isEnabled()
    assert "packaged app" in spin.toolTip()


def test_start_from_defaults_to_fine_tuning_the_active_model(qtbot, window, registered_model):
    combo = window.training.form.base_combo
    qtbot.waitUntil(lambda: combo.count() > 1)
    assert combo.currentData() == str(registered_model.path)
    assert combo.currentText().startswith("Fine-tune: gui-tiny")

    # A choice of the analyst sticks when the registry is listed again.
    index = combo.findData("preset:resnet18")
    combo.setCurrentIndex(index)
    window.models_view.refresh()
    qtbot.waitUntil(lambda: not window.jobs.running(), timeout=10_000)
    assert combo.currentData() == "preset:resnet18"


def _hand_written_run(folder, config, events):
    import json

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "checkpoint.pt").write_bytes(b"never loaded to be listed")
    return folder


def test_resume_lists_each_run_with_model_data_step_and_date(qtbot, make_window, monkeypatch):
    import os
    from datetime import datetime

    from PySide6.QtWidgets import QDialog

    from app.resume_dialog import ResumeDialog
    from ncl_core.paths import runs_dir

    fine_tune = _hand_written_run(
        runs_dir() / "20240502-091500",
        {
            "name": "casia-ft",
            "base_model": "/models/ncl-starter-0123456789ab.safetensors",
            "model": {"backbone": "resnet50"},
            "data": ["/evidence/sets/CASIA2"],
            "synthetic": None,
        },
        [
            {"type": "start", "total_steps": 5000, "time": "2024-05-02T09:15:00"},
            {"type": "checkpoint", "step": 1200, "time": "2024-05-02T11:40:00"},
            {"type": "cancelled", "step": 1200, "time": "2024-05-02T11:40:01"},
        ],
    )
    damaged = runs_dir() / "20240501-080000"
    damaged.mkdir(parents=True)
    (damaged / "checkpoint.pt").write_bytes(b"")
    (damaged / "config.json").write_text("{cut sho")
    saved = datetime(2024, 5, 1, 8, 30).timestamp()  # its only date: the checkpoint's
    os.utime(damaged / "checkpoint.pt", (saved, saved))

    view = make_window(wait_for_model=False).training
    dialog = view.resume_dialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 2
    model, data, progress, date, state = dialog.row_texts(0)
    assert model == "casia-ft: fine-tuning ncl-starter (resnet50)"
    assert data == "CASIA2"
    assert progress == "step 1200 of 5000 (24 %)"
    assert date == "started 2024-05-02 09:15, saved 11:40"
    assert state == "cancelled"
    assert str(fine_tune) in dialog.table.item(0, 0).toolTip()
    # The damaged run is listed with what could be read, and why the rest is missing.
    model, data, progress, date, state = dialog.row_texts(1)
    assert (model, data, progress) == ("unknown model", "unknown data", "no step recorded")
    assert date == "started 2024-05-01 08:00, saved 08:30"
    assert "config.json cannot be read" in state and "no events.jsonl" in state
    assert dialog.selected_path() == fine_tune  # the most recent is preselected

    # The Resume… button shows this dialog and resumes the chosen run.
    chosen = []
    monkeypatch.setattr(ResumeDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(view, "resume", lambda path, more=None: chosen.append(path))
    view.resume_button.click()
    assert chosen == [fine_tune]


def _recipe_fields(config) -> dict:
    """The settings of a TrainConfig that the recipes set."""
    return {
        "size": config.size,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "time_limit_min": config.time_limit_min,
        "schedule_by_time": config.schedule_by_time,
        "output_stride": config.model.output_stride,
    }


def _cli_defaults(command: str) -> dict:
    """What the CLI's own flag handling makes of a bare ``train`` or ``finetune``."""
    from ncl_core.cli import _train_config, build_parser

    args = build_parser().parse_args([command])
    return _recipe_fields(_train_config(args, finetune=command == "finetune"))


def _form_defaults(form) -> dict:
    form.data_field.set_text("/nonexistent/data")  # build_config needs a folder; not scanned
    return _recipe_fields(form.build_config())


def test_gui_cli_and_library_defaults_agree(qtbot, window, registered_model):
    """Both kinds of run start from one recipe, in the library, the CLI and the form."""
    from ncl_core.training import TrainConfig
    from ncl_core.training.recipes import FINETUNE, SCRATCH

    library = TrainConfig()
    scratch = {**SCRATCH.settings(), "output_stride": SCRATCH.output_stride}
    scratch.pop("workers")
    assert _recipe_fields(library) == scratch
    assert library.model.backbone == SCRATCH.backbone
    assert _cli_defaults("train") == scratch

    form = window.training.form
    qtbot.waitUntil(lambda: form.base_combo.count() > 1)
    form.base_combo.setCurrentIndex(form.base_combo.findData(f"preset:{SCRATCH.backbone}"))
    assert _form_defaults(form) == scratch
    assert "from scratch" in form.recipe_label.text()

    finetune = {**FINETUNE.settings(), "output_stride": FINETUNE.output_stride}
    finetune.pop("workers")
    assert _cli_defaults("finetune") == finetune
    form.base_combo.setCurrentIndex(form.base_combo.findData(str(registered_model.path)))
    defaults = _form_defaults(form)
    # A fine-tuned model keeps its base's network.
    defaults["output_stride"] = FINETUNE.output_stride
    assert defaults == finetune
    # The recipe's settings are shown, with what it was measured to give.
    assert "× 0.1" in form.recipe_label.text() and "floor" in form.recipe_label.text()
