"""Fixtures of the reliability suite: a loaded tiny model and small file systems that fill up."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine, two threads run the tiny network 5-50x
    slower (they spin waiting for each other), and this suite must stay fast."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny architecture, recorded as trained at 64 px: resize mode then feeds the network
    64 x 64 images in every entry point (``batch`` has no ``--input-size``), which keeps the
    suite fast."""
    import torch

    from ncl_core.models.modelfile import save_model
    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2))
    path = tmp_path_factory.mktemp("small-model") / "small.safetensors"
    return save_model(path, model, name="small", train_config={"size": 64})


@pytest.fixture(scope="session")
def tiny_predictor(small_model_path: Path):
    """The real ``Predictor`` on ``small_model_path``, on the CPU."""
    from ncl_core.inference.predictor import Predictor

    return Predictor.load(small_model_path, device="cpu")


@pytest.fixture(scope="session")
def hostile_models(
    tmp_path_factory: pytest.TempPathFactory, small_model_path: Path
) -> tuple[Path, dict[str, Path]]:
    """(marker, kind -> file): pickles with a payload that writes ``marker``, broken models."""
    from reliability.hostile import write_bad_safetensors, write_pickle_payloads

    root = tmp_path_factory.mktemp("hostile-models")
    marker = root / "CODE_RAN"
    files = write_pickle_payloads(root / "shared", marker)
    files.update(write_bad_safetensors(root / "shared", small_model_path))
    return marker, files


def _mount_tool_missing() -> str | None:
    if os.name != "posix" or not shutil.which("mount"):
        return "no mount command"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    return None


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``small_fs("200k")`` mounts a real tmpfs of that size and returns it (root only).

    Real ENOSPC and EROFS, not simulated ones: the library sees exactly what a full USB stick
    or a write-protected share gives it. Skips where mounting is not allowed; the
    monkeypatched tests in test_storage.py cover the same code paths everywhere.
    """
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        why = _mount_tool_missing()
        if why:
            pytest.skip(why)
        point = tmp_path / f"fs{len(mounts)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=False)
