"""The PyInstaller bundle, built for real from build.spec and run from outside the checkout.

Slow (minutes, and several GB of disk for the CUDA build of torch), so marked ``bundle`` and
skipped by default; run it with ``python -m pytest -m bundle tests/test_bundle.py`` after
``pip install -e '.[bundle]'``. docs/BUNDLE.md has the measured numbers.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ncl_core.models.modelfile import ModelRegistry
from ncl_core.paths import BUNDLED_MODEL_NAME, bundled_model_path

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[1]
EXE_NAME = "ncl-forensics.exe" if os.name == "nt" else "ncl-forensics"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """Build into a temporary folder (never into the checkout); yields the executable."""
    pytest.importorskip(
        "PyInstaller", reason="install the bundle extra: pip install -e '.[bundle]'"
    )
    work = tmp_path_factory.mktemp("pyinstaller")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(ROOT / "build.spec"),
        ],
        cwd=ROOT,
        check=True,
    )
    yield work / "dist" / "ncl-forensics" / EXE_NAME
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def model_available(tiny_model_path):
    """The bundled model when the build has one, else a tiny model in the user's registry."""
    if not bundled_model_path().is_file():
        registry = ModelRegistry()
        registry.set_default(registry.import_model(tiny_model_path).id)
    return bundled_model_path().is_file()


def _run(exe: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH")}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_self_test_passes_in_the_bundle(bundle, model_available, tmp_path):
    result = _run(bundle, "--self-test", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test (bundle," in result.stdout
    assert "GUI modules: PySide6" in result.stdout
    assert "Content Credentials: c2pa-python" in result.stdout  # its native library is in
    assert "Qt platform plugins:" in result.stdout
    assert "self-test passed" in result.stdout
    if model_available:
        assert "bundled" in result.stdout


def test_self_test_without_any_model_says_so(bundle, tmp_path):
    internal = bundle.parent / "_internal"
    if (internal / "resources" / "models" / BUNDLED_MODEL_NAME).is_file():
        pytest.skip("this build bundles a model")
    result = _run(bundle, "--self-test", cwd=tmp_path)
    assert result.returncode == 1
    assert "self-test FAILED at 'model': no model available" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_analyze_runs_from_the_bundle(bundle, model_available, tmp_path):
    sample = bundle.parent / "_internal" / "resources" / "samples" / "tampered"
    image = sorted(sample.glob("*.jpg"))[0]
    out = tmp_path / "out"
    result = _run(bundle, "analyze", str(image), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{image}: score" in result.stdout
    summary = json.loads((out / f"{image.stem}.json").read_text())
    assert 0.0 <= summary["score"] <= 1.0
    for kind in ("mask", "heatmap", "overlay"):
        assert (out / f"{image.stem}.{kind}.png").is_file()


def test_the_bundle_carries_only_what_the_app_uses(bundle):
    internal = bundle.parent / "_internal"
    assert (internal / "resources" / "samples" / "masks").is_dir()
    assert list((internal / "torchvision").glob("_C_stable.*")), "torchvision's operators"
    present = {p.name for p in (internal / "PySide6").iterdir()}
    for unused in ("QtWebEngineCore", "QtQml", "QtQuick", "QtNetwork", "QtSvg", "QtTest"):
        assert not any(name.startswith(f"{unused}.") for name in present), unused
    assert not (internal / "triton").exists()
