"""GUI test fixtures: a main window on a tiny real model, in isolated user folders.

The root conftest redirects XDG_* per test, so the registry, settings (QSettings ini under the
config dir) and training runs of a test never touch the real user's folders.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

os.environ.setdefault("QT_API", "pyside6")


@pytest.fixture(scope="session")
def gui_model_path(tmp_path_factory):
    """A tiny real model file whose probabilities spread over a useful range.

    An untrained network predicts almost the same value everywhere; its last head is scaled
    so that thresholds between 0.1 and 0.5 split the map, as a trained model's would.
    """
    import torch

    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2))
    with torch.no_grad():
        model.head4.weight.mul_(3000)
        model.head4.bias.zero_()
    path = tmp_path_factory.mktemp("gui-model") / "gui-tiny.safetensors"
    save_model(path, model, name="gui-tiny", metrics={"f1": 0.5, "auc": 0.7})
    return path


@pytest.fixture
def registered_model(gui_model_path):
    """The tiny model, imported into this test's (empty) registry as the default."""
    from ncl_core.models.modelfile import ModelRegistry

    registry = ModelRegistry()
    info = registry.import_model(gui_model_path)
    registry.set_default(info.id)
    return info


@pytest.fixture(autouse=True)
def _no_bundled_model(monkeypatch, tmp_path):
    """GUI tests bring their own models: the registry starts empty whether or not the
    repository ships a starter model."""
    monkeypatch.setattr(
        "ncl_core.models.registry.bundled_model_path", lambda: tmp_path / "no-bundled.safetensors"
    )


@pytest.fixture
def make_window(qtbot, monkeypatch):
    """Build main windows; each is closed at the end (cancelling its work) and checked clean."""
    from app.main_window import MainWindow
    from app.settings import Settings

    windows = []

    def make(wait_for_model: bool = True) -> MainWindow:
        settings = Settings()
        if settings.raw("analysis/mode") is None:
            settings.set("analysis/mode", "tiled")  # one 128 px tile: fast on a CPU
        window = MainWindow(settings)
        window.confirm = lambda text: True
        qtbot.addWidget(window)
        window.resize(1000, 700)
        window.show()
        if wait_for_model:
            qtbot.waitUntil(lambda: not window.models.loading, timeout=20_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.jobs.running() == []
    # Their Qt objects go now, on this thread, not in some later test's worker thread.
    windows.clear()
    gc.collect()


@pytest.fixture
def window(make_window, registered_model):
    return make_window()


@pytest.fixture
def image_file(tmp_path):
    """A 128 x 96 PNG with structure (a pasted bright square), so probabilities vary."""
    from PIL import Image

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:96, 0:128]
    rgb = np.stack([xx * 2, yy * 2, (xx + yy)], axis=2).astype(np.float32)
    rgb += rng.normal(0, 10, rgb.shape)
    rgb[20:60, 30:80] = 230
    path = tmp_path / "evidence" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path
