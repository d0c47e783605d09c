"""Models view: import, activate, export and remove through the registry."""

from __future__ import annotations


def test_import_activate_export_remove(qtbot, window, registered_model, tiny_model_path, tmp_path):
    view = window.models_view
    qtbot.waitUntil(lambda: view.table.rowCount() == 1)
    assert view.table.item(0, 0).text() == "★"  # the active model

    view.import_model(tiny_model_path)
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=10_000)
    row = next(r for r in range(2) if view.table.item(r, 1).text() == "tiny")
    tiny = view.infos[row]

    view.activate(tiny)
    qtbot.waitUntil(lambda: window.models.info is not None and window.models.info.name == "tiny")
    assert view.table.item(row, 0).text() == "★"
    assert window.model_label.text() == "model: tiny"
    assert "0.500" in view.table.item(row, 4).text()  # its F1 from the file's metadata

    view.table.selectRow(row)
    assert tiny.sha256 in view.details.toPlainText()

    dest = tmp_path / "exported.safetensors"
    job = view.export_model(tiny, dest)
    qtbot.waitUntil(lambda: not job.is_running())
    assert dest.read_bytes() == tiny_model_path.read_bytes()

    view.remove(tiny)
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=10_000)
    qtbot.waitUntil(lambda: window.models.info.sha256 == registered_model.sha256, timeout=10_000)


def test_a_successful_import_replaces_the_import_error(qtbot, window, tiny_model_path, tmp_path):
    view = window.models_view
    qtbot.waitUntil(lambda: view.table.rowCount() == 1)
    bad = tmp_path / "colleague.safetensors"
    bad.write_bytes(b"not a model at all")
    view.import_model(bad)
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=10_000)
    assert "colleague.safetensors" in window.message_bar.text()

    view.import_model(tiny_model_path)
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=10_000)
    assert window.message_bar.level != "error"
    assert "colleague.safetensors" not in window.message_bar.text()


def test_a_model_is_never_exported_into_an_evidence_folder(
    qtbot, window, registered_model, image_file
):
    view = window.models_view
    window.open_paths([image_file])
    dest = image_file.parent / "model.safetensors"
    assert view.export_model(registered_model, dest) is None
    assert window.message_bar.level == "error" and "evidence" in window.message_bar.text()
    assert not dest.exists()


def test_figures_stand_beside_their_floor_and_the_images_they_come_from():
    from types import SimpleNamespace

    from app.models_view import f1_text, measured_on_text

    starter = SimpleNamespace(
        metrics={"f1": 0.128, "floor_f1": 0.129, "n_images": 170.0},
        trained_on={"validation": ["/data/nist16-A", "/data/authentic-A"]},
    )
    tuned = SimpleNamespace(metrics={"f1": 0.31, "n_images": 6}, trained_on={})
    assert f1_text(starter) == "0.128 / 0.129" and f1_text(tuned) == "0.310"
    assert measured_on_text(starter) == "170 image(s) of nist16-A +1"
    assert measured_on_text(tuned) == "6 image(s)"
    assert measured_on_text(SimpleNamespace(metrics={}, trained_on={})) == "–"
    held = {"validation": ["held out of the set mine: 8 of 39 images"]}
    text = measured_on_text(SimpleNamespace(metrics={"n_images": 8.0}, trained_on=held))
    assert text == "8 image(s) held out of the set mine: 8 of 39 images"


def test_an_average_of_models_shows_its_ingredients_and_its_calibration():
    from types import SimpleNamespace

    from app.models_view import f1_text, measured_on_text, trained_on_text

    made_of = [{"name": "a", "sha256": "1" * 64, "weight": 0.5}] * 2
    calibration = {"n_tampered": 170, "at_0.5": {"f1": 0.178, "floor_f1": 0.128, "auc": 0.7}}
    soup = SimpleNamespace(
        bundled=False,
        metrics={},
        trained_on={"average_of": made_of},
        inference={"calibration": calibration},
    )
    assert trained_on_text(soup) == "average of 2 models"
    assert f1_text(soup) == "0.178 / 0.128"
    assert measured_on_text(soup) == "170 manipulated image(s) of its calibration"
    uncalibrated = SimpleNamespace(metrics={}, trained_on={}, inference={})
    assert f1_text(uncalibrated) == "–" and measured_on_text(uncalibrated) == "–"


def test_figures_are_compared_only_when_measured_on_the_same_images(qtbot, window, tmp_path):
    import torch

    from ncl_core.models.modelfile import ModelRegistry, save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    from tiny import TINY_CONFIG

    torch.manual_seed(0)
    net = NCLNet(ModelConfig(**TINY_CONFIG))
    registry = ModelRegistry()
    infos = {}
    for name, validation_id, metrics, baseline in (
        ("base", "same", {"f1": 0.30, "auc": 0.70}, None),
        ("tuned", "same", {"f1": 0.35, "auc": 0.74}, {"f1": 0.20, "auc": 0.65}),
        ("other", "elsewhere", {"f1": 0.60, "auc": 0.90}, None),
    ):
        trained_on = {
            "validation_id": validation_id,
            **({"baseline": baseline} if baseline else {}),
        }
        path = tmp_path / f"{name}.safetensors"
        save_model(path, net, name=name, metrics=metrics, trained_on=trained_on)
        infos[name] = registry.import_model(path)
    view = window.models_view
    view.refresh()
    n = len(registry.list())  # with the window's own test model
    qtbot.waitUntil(lambda: view.table.rowCount() == n, timeout=10_000)
    view.activate(infos["base"])
    qtbot.waitUntil(lambda: window.models.info is not None and window.models.info.name == "base")
    rows = {view.table.item(r, 1).text(): r for r in range(n)}
    gain = view.table.item(rows["tuned"], 6).text()
    assert gain == "F1 0.200 → 0.350" and view.table.item(rows["base"], 6).text() == "–"

    view.table.selectRow(rows["tuned"])
    assert "not comparable" in view.table.item(rows["other"], 4).toolTip()
    assert "same validation images" in view.table.item(rows["base"], 4).toolTip()
    details = view.details.toPlainText()
    assert "before and after fine-tuning" in details and "0.2000 → 0.3500" in details
    assert "F1 at 0.5" in details.split("compared with the active model (base)")[1]

    view.table.selectRow(rows["other"])
    details = view.details.toPlainText()
    assert "not comparable here: measured on other images" in details
    assert "not comparable" in view.table.item(rows["tuned"], 5).toolTip()
