"""Shared test setup: small, deterministic, and light on the 2-core CI machine."""

import os

import pytest
import torch

from tiny import NARROW_CONFIG, TINY_CONFIG

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# At most two torch threads here, one in every process the tests start: processes that run
# beside the suite (CLI runs, DDP workers) would otherwise fight it for a 2-core machine's
# cores. (The whole suite, quiet 2-core Xeon: 5 min 31 s with one thread here.)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Under pytest-xdist (``make test`` runs two workers on a 2-core machine) each worker takes one.
torch.set_num_threads(
    1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads())
)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Models, settings and caches of a test never touch the real user's folders."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        monkeypatch.setenv(var, str(home / sub))


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A real (untrained, seeded) model file small enough for fast tests."""
    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, NCLNet(ModelConfig(**TINY_CONFIG)), name="tiny", metrics={"f1": 0.5})
    return path


@pytest.fixture(scope="session")
def narrow_model(tmp_path_factory):
    """A model file of the narrow test network (its metadata within every bound a real file
    must keep), for the hostile-input tests."""
    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "narrow.safetensors"
    save_model(path, NCLNet(ModelConfig(**NARROW_CONFIG)), name="narrow")
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Eight 64 px synthetic forgeries (tampered/ + masks/) and two authentic images."""
    import numpy as np
    from PIL import Image

    from ncl_core.data.synth import SynthConfig, generate_dataset

    root = tmp_path_factory.mktemp("tinydata")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        big = np.asarray(Image.fromarray(base).resize((96, 96), Image.BICUBIC))
        noisy = np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(photos / f"photo{i}.png")
    out = root / "data"
    generate_dataset(photos, out, 10, SynthConfig(size=64, seed=0, authentic_fraction=0.2))
    return out
