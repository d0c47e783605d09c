"""Untrusted model files: refused everywhere, and no code ever runs.

tests/test_modelfile.py already proves ``load_model`` (and ``import_model`` for the pickles)
refuses these kinds of files; here every hostile file goes through every door a shared model
can come in by: the loader, the predictor, the registry, and the CLI's ``models import``,
``models info``, ``analyze --model`` and ``finetune --model``, plus a pickled resume checkpoint.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ncl_core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import ModelFileError, ModelRegistry, load_model, read_model_info
from ncl_core.training import CHECKPOINT_NAME, Trainer, TrainingError
from reliability.hostile import CodeExecution, assert_clean_console

from imaging import pattern, save

# What the one-line message must say for each kind of hostile file.
REASONS = {
    "pickle_pt": r"not a readable \.safetensors model file.*pickled \.pt/\.pth files are refused",
    "pickle_pth": r"not a readable \.safetensors model file.*pickled \.pt/\.pth files are refused",
    "pickle_renamed_safetensors": r"not a readable \.safetensors model file",
    "truncated_safetensors": r"not a readable \.safetensors model file",
    "other_architecture": r"configuration is invalid .*backbone must be one of",
    "config_of_other_size": r"weights do not match its configuration",
    "missing_tensors": r"weights do not match its configuration \(\d+ missing",
}


def test_every_hostile_model_kind_has_a_reason(hostile_models) -> None:
    assert set(hostile_models[1]) == set(REASONS)


def test_the_payload_is_live(tmp_path: Path) -> None:
    """The payload really runs code when unpickled, so its absence below means something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(CodeExecution(marker)))
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_library_refuses_and_runs_nothing(hostile_models, tmp_path: Path, kind: str) -> None:
    marker, files = hostile_models
    path = files[kind]
    for attempt in (
        lambda: load_model(path),
        lambda: Predictor.load(path, device="cpu"),
        lambda: ModelRegistry(tmp_path / "registry").import_model(path),
    ):
        with pytest.raises(ModelFileError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(str(path)) and "\n" not in message
        assert re.search(REASONS[kind], message), message
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").iterdir())
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_cli_refuses_in_one_line_and_runs_nothing(
    hostile_models, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker, files = hostile_models
    path = str(files[kind])
    image = save(tmp_path / "evidence" / "photo.png", pattern(32, 32))
    data = tmp_path / "data"  # never read: the base model is refused first
    for argv in (
        ["models", "import", path],
        ["analyze", str(image), "--model", path],
        ["batch", str(image), "--report", str(tmp_path / "report"), "--model", path],
        ["finetune", "--data", str(data), "--model", path, "--run-dir", str(tmp_path / "run")],
    ):
        assert main(argv) == EXIT_USAGE, argv
        (line,) = assert_clean_console(capsys.readouterr().err, ("error: ",))
        assert line.startswith(f"error: {path}: ") and re.search(REASONS[kind], line), line
    # ``models info`` reads the header only: a valid header with bad weights is shown.
    header_ok = kind in ("config_of_other_size", "missing_tensors")
    assert main(["models", "info", path]) == (EXIT_OK if header_ok else EXIT_USAGE)
    assert_clean_console(capsys.readouterr().err, ("error: ",))
    assert main(["models", "list"]) == EXIT_OK  # the registry is untouched and still works
    assert "small" not in capsys.readouterr().out
    assert not marker.exists()


def test_hostile_files_dropped_into_the_registry_folder_are_skipped(
    hostile_models, tmp_path: Path, small_model_path: Path
) -> None:
    marker, files = hostile_models
    registry = ModelRegistry(tmp_path / "registry", bundled=tmp_path / "none.safetensors")
    good = registry.import_model(small_model_path)
    for path in files.values():
        (registry.root / path.name).write_bytes(path.read_bytes())
    listed = registry.list()
    # Files with a valid header are listed (loading them is refused, as above); none runs code.
    assert good.sha256 in {info.sha256 for info in listed}
    assert not {info.path.name for info in listed} & {
        "shared-model.pt",
        "shared-model.pth",
        "shared-model.safetensors",
        "truncated.safetensors",
        "vit.safetensors",
    }
    assert not marker.exists()


def test_a_pickled_resume_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "CODE_RAN"
    run = tmp_path / "run"
    run.mkdir()
    torch.save(
        {"format": "ncl-forensics-checkpoint", "hook": CodeExecution(marker)}, run / CHECKPOINT_NAME
    )
    with pytest.raises(
        TrainingError, match=r"checkpoint\.pt: refused: not a checkpoint that can be loaded safely"
    ):
        Trainer.resume(run)
    assert main(["train", "--resume", str(run)]) == EXIT_FAILED
    (line,) = assert_clean_console(capsys.readouterr().err, ("error: ",))
    assert "refused: not a checkpoint that can be loaded safely" in line
    assert not marker.exists()

    # A damaged checkpoint (e.g. cut short by a copy) is one line too.
    data = (run / CHECKPOINT_NAME).read_bytes()
    (run / CHECKPOINT_NAME).write_bytes(data[: len(data) // 2])
    assert main(["train", "--resume", str(run)]) == EXIT_FAILED
    (line,) = assert_clean_console(capsys.readouterr().err, ("error: ",))
    assert re.match(rf"error: {run / CHECKPOINT_NAME}: the checkpoint cannot be read \(.+\)$", line)


def test_model_names_cannot_steer_where_the_registry_writes(
    tmp_path: Path, small_model_path: Path
) -> None:
    """The name inside a shared model file is the file name of its registry copy: it must not
    climb out of the registry folder, start a hidden file, or exceed the name length limit."""
    tensors = load_file(str(small_model_path))
    metadata = read_metadata(small_model_path)
    registry = ModelRegistry(tmp_path / "data" / "models", bundled=tmp_path / "none")
    names = ["../../../escaped", "/abs/olute", ".hidden", "名" * 120, 'a "b" <c>']
    for i, name in enumerate(names):
        path = tmp_path / f"shared{i}.safetensors"
        tensors["head4.bias"] = tensors["head4.bias"] + 1  # a distinct file each time
        save_file(tensors, str(path), metadata=dict(metadata, name=name))
        info = registry.import_model(path)
        assert info.path.parent == registry.root and not info.path.name.startswith(".")
        assert info.name == name  # shown as given; only the file name is made safe
    assert sorted(p.parent for p in tmp_path.rglob("*.safetensors") if "shared" not in p.name) == [
        registry.root
    ] * len(names)
    assert len(registry.list()) == len(names)


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata())


def test_import_of_a_good_model_still_works(small_model_path: Path, capsys) -> None:
    assert main(["models", "import", str(small_model_path)]) == EXIT_OK
    assert read_model_info(small_model_path).name in capsys.readouterr().out
