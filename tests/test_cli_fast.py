"""Every mistake on the command line is answered before torch loads (it takes a second or more):
the exit code, the message, and ``torch`` still absent from ``sys.modules`` at that point.

All the cases run in one fresh process (the test suite itself has torch loaded); each case's
result is checked by its own test. No test here measures time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imaging import pattern, save

# Runs ``main`` on each case in turn, capturing what it prints and whether torch is loaded
# after it (once loaded it stays, so the first case to load it is the one that fails).
DRIVER = """
import contextlib, io, json, sys
from ncl_core.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                    "torch": "torch" in sys.modules})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def place(tmp_path_factory, tiny_model_path):
    """An image, an evidence folder, a used report folder and a registry holding ``tiny``."""
    root = tmp_path_factory.mktemp("fast")
    evidence = root / "evidence"
    image = save(evidence / "img.png", pattern(24, 32))
    used = root / "used-report"
    used.mkdir()
    (used / "notes.txt").write_text("an earlier report")
    data = root / "xdg-data"
    models = data / "ncl-forensics" / "models"
    models.mkdir(parents=True)
    shutil.copyfile(tiny_model_path, models / "tiny-000000000000.safetensors")
    return {"root": root, "evidence": evidence, "image": image, "used": used, "data": data}


def _cases(p: dict[str, Path]) -> dict[str, tuple[list[str], int, list[str]]]:
    """name: (argv, exit code, what stderr (or stdout, for exit 0) must say)."""
    img, root, evidence = str(p["image"]), p["root"], p["evidence"]
    analyze_usage = "usage: ncl-forensics analyze"
    return {
        "missing image": (
            ["analyze", str(root / "missing.jpg")],
            2,
            ["error: ", "missing.jpg: no such file or folder; check the path", "batch"],
        ),
        "all images missing": (
            ["analyze", str(root / "a.jpg"), str(root / "b.jpg")],
            2,
            ["none of the 2 images exists", "a.jpg", "b.jpg"],
        ),
        "a folder to analyze": (
            ["analyze", str(evidence)],
            2,
            ["is a folder", "ncl-forensics batch"],
        ),
        "threshold above 1": (
            ["analyze", img, "--threshold", "1.5"],
            2,
            [analyze_usage, "argument --threshold: must be a number from 0 to 1, got '1.5'"],
        ),
        "threshold not a number": (
            ["analyze", img, "--threshold", "nan"],
            2,
            ["argument --threshold: must be a number from 0 to 1"],
        ),
        "batch threshold below 0": (
            ["batch", img, "--report", str(root / "r"), "--threshold", "-0.1"],
            2,
            ["usage: ncl-forensics batch", "argument --threshold"],
        ),
        "unknown mode": (
            ["analyze", img, "--mode", "fast"],
            2,
            [analyze_usage, "invalid choice: 'fast'", "'auto', 'resize', 'tiled'"],
        ),
        "unknown model": (
            ["analyze", img, "--model", "nosuchmodel"],
            2,
            ["error: nosuchmodel: no such model file", "models list"],
        ),
        "tile out of range": (
            ["analyze", img, "--tile", "1"],
            2,
            ["error: --tile must be from 64 to 4096 px, got 1"],
        ),
        "mistyped option": (
            ["analyze", img, "--treshold", "0.5"],
            2,
            [analyze_usage, "unrecognized arguments: --treshold 0.5", "did you mean --threshold?"],
        ),
        "unknown command": (
            ["frobnicate"],
            2,
            ["unknown command 'frobnicate'", "analyze, batch, train"],
        ),
        "near miss of a command": (
            ["analyse", img],
            2,
            ["unknown command 'analyse'", "did you mean 'analyze'?"],
        ),
        "out is a file": (
            ["analyze", img, "--out", img],
            2,
            ["error: --out ", "is a file"],
        ),
        "out inside the evidence": (
            ["analyze", img, "--out", str(evidence / "results")],
            2,
            ["evidence folder"],
        ),
        "batch inputs missing": (
            ["batch", str(root / "nothing-here"), "--report", str(root / "r")],
            2,
            ["nothing-here: no such file or folder"],
        ),
        "batch report not empty": (
            ["batch", str(evidence), "--report", str(p["used"])],
            2,
            ["is not empty", "--resume"],
        ),
        "batch report inside the evidence": (
            ["batch", str(evidence), "--report", str(evidence / "report")],
            2,
            ["evidence folder"],
        ),
        "eval data missing": (
            ["eval", "--data", str(root / "no-data")],
            2,
            ["--data ", "no-data: no such dataset folder or list"],
        ),
        "calibrate unknown model": (
            ["calibrate", "--data", str(evidence), "--out", str(root / "c.safetensors")]
            + ["--model", "nosuchmodel"],
            2,
            ["nosuchmodel: no such model file"],
        ),
        "models info without a target": (
            ["models", "info"],
            2,
            ["usage: ncl-forensics models", "models info needs a model id, name or file"],
        ),
        "models info of an unknown model": (
            ["models", "info", "nosuchmodel"],
            2,
            ["nosuchmodel: no such model file", "models list"],
        ),
        "models list": (["models", "list"], 0, ["ncl-starter", "[bundled]", "tiny"]),
        "models info by name": (["models", "info", "tiny"], 0, ['"name": "tiny"']),
    }


@pytest.fixture(scope="module")
def answers(place):
    cases = _cases(place)
    env = {**os.environ, "XDG_DATA_HOME": str(place["data"])}
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(place["root"] / var.lower())
    argvs = [argv for argv, _, _ in cases.values()]
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=place["root"],
    )
    assert result.returncode == 0, result.stderr
    return dict(zip(cases, json.loads(result.stdout), strict=True))


CASE_NAMES = list(_cases({k: Path("/x") for k in ("root", "evidence", "image", "used")}))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_mistake_answers_before_torch_loads(place, answers, name):
    _, code, says = _cases(place)[name]
    answer = answers[name]
    printed = answer["err"] if code else answer["out"]
    assert answer["rc"] == code, answer
    for text in says:
        assert text in printed, (text, printed)
    if code:
        assert "Traceback" not in answer["err"]
        # A usage error is one line (after argparse's usage, when it prints one).
        assert printed.strip().splitlines()[-1].count("error: ") == 1
    assert not answer["torch"], f"{name}: torch was loaded before the answer"


def test_a_mistyped_command_through_the_launcher_loads_no_qt_nor_torch():
    code = (
        "import sys\n"
        "from app.main import main\n"
        "rc = main(['frobnicate'])\n"
        "heavy = [m for m in ('torch', 'PySide6') if m in sys.modules]\n"
        "sys.exit(3 if heavy else rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "unknown command 'frobnicate'" in result.stderr


def test_paths_still_open_the_app_and_bare_words_are_commands(tmp_path, monkeypatch):
    import app.gui
    from app.main import _is_path, main

    opened: list[list[str]] = []
    monkeypatch.setattr(app.gui, "run_gui", lambda argv: opened.append(argv) or 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Evidence").mkdir()
    for argv in (["photo.jpg"], ["/no/such/folder"], ["Evidence"], ["--samples"], []):
        assert main(argv) == 0
    assert opened == [["photo.jpg"], ["/no/such/folder"], ["Evidence"], ["--samples"], []]
    assert _is_path("missing.png") and _is_path(f"sub{os.sep}dir") and _is_path("Evidence")
    assert not _is_path("frobnicate") and not _is_path("analyze")


def test_the_header_reader_agrees_with_safetensors(tiny_model_path, tmp_path):
    """``models list`` reads model headers without torch; what it reads is what safetensors
    reads, and what safetensors refuses it refuses."""
    from safetensors import safe_open

    from ncl_core.models.modelfile import safetensors_metadata

    with safe_open(str(tiny_model_path), framework="pt") as fh:
        assert safetensors_metadata(tiny_model_path) == fh.metadata()
    data = tiny_model_path.read_bytes()
    for name, content in (
        ("truncated", data[: len(data) // 2]),
        ("short", data[:5]),
        ("one byte more", data + b"\0"),
        ("not json", data[:8] + b"x" * (len(data) - 8)),
    ):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ValueError):
            safetensors_metadata(path)
        with pytest.raises(Exception):  # noqa: B017 - whatever safetensors raises
            safe_open(str(path), framework="pt")
