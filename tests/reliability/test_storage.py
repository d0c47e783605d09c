"""Disk full and read-only output folders (crashes and resources).

Every write must end in one clear error naming the file, with the previous file intact and no
temporary file left behind. The ``small_fs`` tests use a real, tiny tmpfs (root only; skipped
elsewhere); the monkeypatched ones reach the same code paths on any machine.
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from ncl_core import fsutil
from ncl_core.cli import EXIT_FAILED, main
from ncl_core.evidence.hashing import sha256_file
from ncl_core.fsutil import atomic_write_bytes
from ncl_core.models.modelfile import ModelRegistry, save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import LossConfig, ModelConfig
from ncl_core.report import RESULTS_JSONL, ReportError, run_batch
from ncl_core.report import runner as batch_module
from ncl_core.training import CHECKPOINT_NAME, TrainConfig, Trainer, TrainingError
from reliability.hostile import assert_clean_console, read_jsonl, remount_read_only

from imaging import pattern, save
from tiny import NARROW_CONFIG


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in folder.rglob("*") if p.is_file()}


def _noise_images(folder: Path, n: int, side: int = 160) -> list[Path]:
    """Photos that do not compress, so a report's pictures fill a small disk quickly."""
    rng = np.random.default_rng(0)
    return [
        save(folder / f"img{i}.jpg", rng.integers(0, 255, (side, side, 3), np.uint8), quality=95)
        for i in range(n)
    ]


# --- the atomic write itself (any machine) ------------------------------------------------------


def test_disk_full_during_an_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out" / "results.jsonl"
    atomic_write_bytes(dest, b"previous content\n")

    def write_bytes(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])  # part of it lands on disk, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(dest, b"new content that will not fit\n" * 100)
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"[Errno 28] No space left on device: '{dest}'"
    monkeypatch.undo()
    assert dest.read_bytes() == b"previous content\n"
    assert [p.name for p in dest.parent.iterdir()] == ["results.jsonl"]


def test_read_only_folder_names_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "model.safetensors"
    dest.write_bytes(b"previous")
    real_open = fsutil.os.open

    def read_only_open(path, flags, mode=0o777):
        if flags & fsutil.os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(fsutil.os, "open", read_only_open)
    with pytest.raises(OSError, match=rf"Read-only file system: '{dest}'$"):
        atomic_write_bytes(dest, b"new")
    assert dest.read_bytes() == b"previous" and _temp_files(tmp_path) == []


def test_a_250_character_name_is_written_atomically(tmp_path: Path) -> None:
    dest = tmp_path / ("n" * 246 + ".png")  # the temporary name must not exceed 255 bytes
    atomic_write_bytes(dest, b"data")
    assert dest.read_bytes() == b"data" and _temp_files(tmp_path) == []


def test_disk_full_while_appending_a_report_row(
    tmp_path: Path, tiny_predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = tmp_path / "evidence"
    for i in range(5):
        save(evidence / f"img{i}.png", pattern(32, 48, seed=i))
    out = tmp_path / "report"
    real_append = batch_module.append_row
    appended: list[int] = []

    def append_row(out_dir, row, with_csv=True):
        if len(appended) == 2:
            with open(out_dir / RESULTS_JSONL, "a", encoding="utf-8") as fh:
                fh.write('{"record": "row", "index": 3, "pa')  # cut short by the full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(out_dir, row, with_csv)
        appended.append(row["index"])

    monkeypatch.setattr(batch_module, "append_row", append_row)
    with pytest.raises(ReportError, match=r"cannot write the report in .*No space left on device"):
        run_batch([evidence], tiny_predictor, out)
    monkeypatch.undo()
    records = read_jsonl(out / RESULTS_JSONL)
    assert [r["index"] for r in records if r["record"] == "row"] == [1, 2]
    done = run_batch([evidence], tiny_predictor, out, resume=True)
    rows = [r for r in read_jsonl(out / RESULTS_JSONL) if r["record"] == "row"]
    assert done.complete and sorted(r["index"] for r in rows) == [1, 2, 3, 4, 5]
    assert len({r["path"] for r in rows}) == 5 and _temp_files(out) == []


# --- a real full disk (tmpfs) --------------------------------------------------------------------


def test_full_disk_model_file_and_registry(
    small_fs, small_model_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    disk = small_fs("1m")
    previous = disk / "model.safetensors"
    previous.write_bytes(b"the previous model")
    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2))
    with pytest.raises(OSError, match=rf"cannot write the model file {previous} .*os error 28"):
        save_model(previous, model)
    assert previous.read_bytes() == b"the previous model" and _temp_files(disk) == []

    registry = ModelRegistry(disk / "models", bundled=disk / "none.safetensors")
    with pytest.raises(
        OSError, match=r"No space left on device: '.*/models/small-\w+\.safetensors'"
    ):
        registry.import_model(small_model_path)
    assert registry.list() == [] and _temp_files(disk) == []

    monkeypatch.setenv("XDG_DATA_HOME", str(disk))
    assert main(["models", "import", str(small_model_path)]) == EXIT_FAILED
    (line,) = assert_clean_console(capsys.readouterr().err, ("error: ",))
    assert "No space left on device" in line and ".safetensors" in line
    assert _temp_files(disk) == []


def _train_config(run: Path, **kw) -> TrainConfig:
    small = ModelConfig(**NARROW_CONFIG, patch_cells=2)
    base = dict(
        out=str(run / "model.safetensors"),
        model=small,
        loss=LossConfig(max_negatives=16, contour_mode="drop"),
        size=64,
        batch_size=2,
        workers=0,
        run_dir=str(run),
        val_fraction=0.0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_full_disk_during_training_keeps_the_last_checkpoint(
    small_fs, tiny_dataset, tmp_path: Path
) -> None:
    # Measure one checkpoint, then give the run a disk with room for it and little more.
    probe = tmp_path / "probe"
    Trainer(_train_config(probe, data=(str(tiny_dataset),), steps=1)).fit()
    size = (probe / CHECKPOINT_NAME).stat().st_size
    disk = small_fs(f"{int(size * 1.3) // 1024}k")
    run = disk / "run"
    events: list[dict] = []
    trainer = Trainer(
        _train_config(run, data=(str(tiny_dataset),), steps=3, checkpoint_every=1), events.append
    )
    with pytest.raises(
        TrainingError, match=r"cannot write the checkpoint .*No space left"
    ) as caught:
        trainer.fit()
    message = str(caught.value)
    assert f"{run / CHECKPOINT_NAME}" in message and f"--resume {run}" in message
    assert "\n" not in message
    checkpoint = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert checkpoint["step"] == 1
    assert _temp_files(disk) == []
    assert events[-1] == {**events[-1], "type": "failed", "message": message}


def test_full_disk_during_a_batch_then_resume(
    small_fs, tmp_path: Path, small_model_path: Path, capsys
) -> None:
    evidence = tmp_path / "evidence"
    _noise_images(evidence, 8)
    disk = small_fs("400k")
    report = disk / "report"
    args = ["batch", str(evidence), "--report", str(report), "--model", str(small_model_path)]
    assert main(args) == EXIT_FAILED  # a report that cannot be written is a failed run
    (line,) = [
        x
        for x in assert_clean_console(capsys.readouterr().err, ("error: ", "model "))
        if x.startswith("error: ")
    ]
    assert f"error: cannot write the report in {report}: " in line and "No space left" in line
    records = read_jsonl(report / RESULTS_JSONL)  # every complete line parses
    written = [r for r in records if r["record"] == "row"]
    assert records[0]["record"] == "header" and 0 < len(written) < 8
    assert _temp_files(report) == []

    subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
    assert main([*args, "--resume"]) == 0
    rows = [r for r in read_jsonl(report / RESULTS_JSONL) if r["record"] == "row"]
    assert len(rows) == 8 and len({r["path"] for r in rows}) == 8
    before = {r["path"]: r["sha256_start"] for r in written}
    assert {r["path"]: r["sha256_start"] for r in rows if r["path"] in before} == before
    capsys.readouterr()


# --- a read-only output folder (tmpfs remounted read-only) ---------------------------------------


def test_read_only_outputs_fail_clearly_and_change_nothing(
    small_fs, tmp_path: Path, small_model_path: Path, tiny_predictor, tiny_dataset, capsys
) -> None:
    evidence = tmp_path / "evidence"
    image = save(evidence / "photo.png", pattern(32, 48))
    disk = small_fs("4m")
    run_batch([evidence], tiny_predictor, disk / "report")
    (disk / "analysis").mkdir()
    (disk / "model.safetensors").write_bytes(b"the previous model")
    remount_read_only(disk)
    before = _snapshot(disk)

    with pytest.raises(ReportError, match=r"cannot create the report folder .*Read-only"):
        run_batch([evidence], tiny_predictor, disk / "new-report")
    with pytest.raises(ReportError, match=r"cannot write the report in .*Read-only"):
        run_batch([evidence], tiny_predictor, disk / "report", resume=True)

    model = NCLNet(ModelConfig(backbone="resnet18", output_stride=16, patch_cells=2))
    with pytest.raises(OSError, match=rf"Read-only file system: '{disk / 'model.safetensors'}'"):
        save_model(disk / "model.safetensors", model)

    out = disk / "analysis"
    assert main(["analyze", str(image), "--out", str(out), "--model", str(small_model_path)]) == 1
    (line,) = [
        x
        for x in assert_clean_console(capsys.readouterr().err, ("error: ", "model "))
        if x.startswith("error: ")
    ]
    assert line == f"error: [Errno 30] Read-only file system: '{out / 'photo.mask.png'}'"

    train = ["train", "--data", str(tiny_dataset), "--size", "64", "--patch-cells", "2"]
    assert main([*train, "--run-dir", str(disk / "run"), "--out", str(disk / "m.safetensors")]) == 1
    (line,) = [
        x
        for x in assert_clean_console(capsys.readouterr().err, ("error: ", "dataset "))
        if x.startswith("error: ")
    ]
    assert "Read-only file system" in line and str(disk) in line
    assert _snapshot(disk) == before
