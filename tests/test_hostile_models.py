"""Hostile model files: weights that give silent nonsense, metadata without bounds, and names
that impersonate another model's id are refused in one line, before anything is built."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch
from hostile_files import model_tensors, write_model

from ncl_core.cli import EXIT_OK, EXIT_USAGE, main
from ncl_core.errors import ModelFileError
from ncl_core.fsutil import shorten_name
from ncl_core.models.modelfile import load_model, read_model_info
from ncl_core.models.registry import ModelRegistry, resolve_model

from imaging import pattern, save
from tiny import NARROW_CONFIG


@pytest.fixture(scope="module")
def tensors() -> dict:
    return model_tensors(NARROW_CONFIG)


def _registry_files() -> list[Path]:
    root = ModelRegistry().root
    return sorted(root.glob("*.safetensors")) if root.is_dir() else []


def _bad_weights(tensors: dict) -> dict[str, dict]:
    float_keys = [k for k, v in tensors.items() if v.is_floating_point()]
    bias = next(k for k in float_keys if k.endswith(".bias"))
    nan = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in tensors.items()
    }
    inf = dict(tensors, **{bias: torch.full_like(tensors[bias], float("inf"))})
    ints = {
        k: v.round().to(torch.int32) if v.is_floating_point() else v for k, v in tensors.items()
    }
    return {"all_nan": nan, "inf_bias": inf, "integer_weights": ints}


@pytest.mark.parametrize("kind", ["all_nan", "inf_bias", "integer_weights"])
def test_weights_that_give_silent_nonsense_are_refused(
    tmp_path: Path, tensors: dict, kind: str, capsys
) -> None:
    path = write_model(tmp_path / f"{kind}.safetensors", _bad_weights(tensors)[kind], NARROW_CONFIG)
    with pytest.raises(ModelFileError, match="NaN or infinite|floating-point"):
        load_model(path)
    image = save(tmp_path / "img.png", pattern(24, 32))
    assert main(["models", "import", str(path)]) == EXIT_USAGE
    assert main(["analyze", str(image), "--model", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(str(path) in line for line in errors)
    assert "Traceback" not in err and not _registry_files()


DEEP = "[" * 100_000 + "]" * 100_000
METADATA_CASES = {
    "aspp_3_000_000": dict(config={"aspp_channels": 3_000_000}),
    "negative_channels": dict(config={"decoder_channels": -16}),
    "text_channels": dict(config={"stage3_channels": "32"}),
    "patch_cells_huge": dict(config={"patch_cells": 100_000}),
    "input_size_40000": dict(inference={"mode": "resize", "input_size": 40_000}),
    "tile_1": dict(inference={"mode": "tiled", "tile": 1}),
    "fuse_size_40000": dict(inference={"mode": "resize", "fuse_sizes": [384, 40_000]}),
    "fuse_sizes_100": dict(inference={"mode": "resize", "fuse_sizes": [384] * 100}),
    "fuse_sizes_text": dict(inference={"mode": "resize", "fuse_sizes": "384"}),
    "margin_3": dict(inference={"mode": "resize", "margin": 3}),
    "margin_text": dict(inference={"mode": "resize", "margin": "wide"}),
    "tile_negative": dict(inference={"mode": "tiled", "tile": -64}),
    "training_size_40000": dict(train_config={"size": 40_000}),
    "score_threshold_text": dict(inference={"calibration": {"score_threshold": "high"}}),
    "metrics_nested_100000": dict(raw={"metrics": '{"a": ' + DEEP + "}"}),
    # NaN in metrics reads as "not measured" (null); anywhere else it is refused.
    "inference_nan": dict(raw={"inference": '{"threshold": NaN}'}),
    "metrics_infinity": dict(raw={"metrics": '{"f1": Infinity}'}),
    "name_5_million": dict(raw={"name": "n" * 5_000_000}),
}


def _metadata_case(tmp_path: Path, tensors: dict, case: str) -> Path:
    spec = METADATA_CASES[case]
    config = {**NARROW_CONFIG, **spec.get("config", {})}
    raw = {key: json.dumps(spec[key]) for key in ("inference", "train_config") if key in spec}
    raw.update(spec.get("raw", {}))
    return write_model(tmp_path / f"{case}.safetensors", tensors, config, **raw)


@pytest.mark.parametrize("case", sorted(METADATA_CASES))
def test_metadata_out_of_bounds_is_refused_before_building(
    tmp_path: Path, tensors: dict, case: str, capsys, monkeypatch
) -> None:
    path = _metadata_case(tmp_path, tensors, case)
    built = []  # no network is built from the metadata: no gigabytes allocated for it
    monkeypatch.setattr("ncl_core.network.model.NCLNet", lambda *a, **k: built.append(a))
    with pytest.raises(ModelFileError, match="configuration is invalid") as refused:
        read_model_info(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert main(["models", "import", str(path)]) == EXIT_USAGE
    assert built == []
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    assert not _registry_files()


def test_a_hostile_file_dropped_into_the_registry_never_breaks_the_listing(
    tmp_path: Path, tensors: dict, tiny_model_path: Path, capsys
) -> None:
    good = ModelRegistry().import_model(tiny_model_path)
    for case in ("metrics_nested_100000", "aspp_3_000_000", "name_5_million"):
        source = _metadata_case(tmp_path, tensors, case)
        (ModelRegistry().root / source.name).write_bytes(source.read_bytes())
    assert [m.id for m in ModelRegistry().list() if not m.bundled] == [good.id]
    assert main(["models", "list"]) == EXIT_OK
    assert good.id in capsys.readouterr().out


def test_shorten_name_is_linear(monkeypatch) -> None:
    encoded = []  # the length of every string encoded

    def fsencode(name):
        encoded.append(len(name))
        assert len(encoded) < 1000, "the name is encoded over and over"
        return fsencode_real(name)

    fsencode_real = os.fsencode
    monkeypatch.setattr(os, "fsencode", fsencode)
    assert shorten_name("証" * 5_000_000, 120) == "証" * 40
    # The whole name is encoded once; then only names of at most 120 characters, at most 121
    # times (cutting one character at a time from 5 million re-encoded millions: minutes).
    assert encoded[0] == 5_000_000 and max(encoded[1:]) <= 120 and len(encoded) <= 122


def test_a_name_cannot_shadow_another_models_id(
    tmp_path: Path, tensors: dict, tiny_model_path: Path, capsys
) -> None:
    registry = ModelRegistry()
    real = registry.import_model(tiny_model_path)
    impostor = write_model(tmp_path / "impostor.safetensors", tensors, NARROW_CONFIG, name=real.id)
    with pytest.raises(ModelFileError, match="looks like a model id"):
        registry.import_model(impostor)
    other = write_model(tmp_path / "other.safetensors", tensors, NARROW_CONFIG, name="ok")
    with pytest.raises(ModelFileError, match="looks like a model id"):
        registry.import_model(other, name="deadbeef")
    # Dropped in by hand, it is listed, but the id still means the real model everywhere.
    (registry.root / "impostor.safetensors").write_bytes(impostor.read_bytes())
    assert len([m for m in registry.list() if not m.bundled]) == 2
    assert registry.get(real.id).sha256 == real.sha256
    assert resolve_model(real.id, registry).sha256 == real.sha256
    capsys.readouterr()
    assert main(["models", "info", real.id]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["sha256"] == real.sha256
    assert main(["models", "default", real.id]) == EXIT_OK
    assert registry.default().sha256 == real.sha256
    assert main(["models", "remove", real.id]) == EXIT_OK
    assert all(m.sha256 != real.sha256 for m in registry.list())
    assert (registry.root / "impostor.safetensors").exists()


def test_concurrent_imports_of_one_file_leave_one_entry(tiny_model_path: Path) -> None:
    results: list[object] = []

    def work(name: str) -> None:
        try:
            results.append(ModelRegistry().import_model(tiny_model_path, name=name).sha256)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            results.append(exc)

    # Under different file names, so that only the registry's lock keeps one copy.
    threads = [threading.Thread(target=work, args=(f"copy{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and isinstance(results[0], str)
    assert len(_registry_files()) == 1
    assert len([m for m in ModelRegistry().list() if not m.bundled]) == 1


@pytest.mark.parametrize("flags", [["--tile", "1"], ["--tile", "-64"], ["--input-size", "40000"]])
def test_inference_flags_out_of_bounds_are_usage_errors(
    tmp_path: Path, tiny_model_path: Path, flags: list[str], capsys
) -> None:
    image = save(tmp_path / "img.png", pattern(24, 32))
    assert main(["analyze", str(image), "--model", str(tiny_model_path), *flags]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"error: {flags[0]} must be from" in err and "Traceback" not in err
