"""What a PyInstaller bundle relies on, checked from source: ``--self-test``, resources under
``sys._MEIPASS`` and no data-loader worker processes when frozen. (tests/test_bundle.py builds
the real bundle; it is marked ``bundle`` and skipped by default.)"""

import sys

import pytest

from app.main import main
from app.resources import sample_images
from ncl_core.models.modelfile import ModelRegistry
from ncl_core.paths import resource_path
from ncl_core.training import TrainConfig


def test_self_test_analyses_a_sample_with_the_default_model(tiny_model_path, capsys):
    registry = ModelRegistry()
    registry.set_default(registry.import_model(tiny_model_path).id)

    assert main(["--self-test"]) == 0

    out = capsys.readouterr().out
    assert f"sample image: {sample_images()[0]}" in out
    assert "model: tiny" in out
    assert "analysis: score" in out
    assert "GUI modules: PySide6" in out
    assert "Content Credentials: c2pa-python" in out and "a plain JPEG has none" in out
    assert "Qt platform plugins:" in out
    assert "self-test passed" in out


def test_self_test_without_a_model_fails_with_one_clear_line(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "resources" / "models" / "ncl-starter.safetensors"
    monkeypatch.setattr("ncl_core.models.registry.bundled_model_path", lambda: missing)

    assert main(["--self-test"]) == 1

    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("self-test FAILED at 'model': no model available")
    assert str(missing) in last and "ncl-forensics models import" in last
    assert "Traceback" not in captured.err


@pytest.mark.skipif(sys.platform != "linux", reason="names the Linux plugin")
def test_self_test_without_the_qt_platform_plugin_fails(
    tiny_model_path, tmp_path, monkeypatch, capsys
):
    registry = ModelRegistry()
    registry.set_default(registry.import_model(tiny_model_path).id)
    monkeypatch.setattr("PySide6.QtCore.QCoreApplication.libraryPaths", lambda: [str(tmp_path)])

    assert main(["--self-test"]) == 1

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"self-test FAILED at 'Qt platform plugin': Qt platform plugin 'xcb' missing in "
        f"{tmp_path / 'platforms'}"
    )


def test_self_test_without_samples_names_the_missing_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    assert main(["--self-test"]) == 1

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"self-test FAILED at 'sample images': no sample images under "
        f"{tmp_path / 'resources' / 'samples'}; the build is incomplete"
    )


def test_resources_are_found_under_meipass_when_frozen(tmp_path, monkeypatch):
    assert resource_path("samples").is_dir()  # from the source checkout
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("models", "x.safetensors") == tmp_path / "resources/models/x.safetensors"


def test_frozen_training_loads_data_in_process(monkeypatch):
    assert TrainConfig(workers=2).workers == 2
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert TrainConfig(workers=2).workers == 0
    assert TrainConfig.from_json(TrainConfig(workers=3).to_json()).workers == 0
