import json
import math
import pickle
import struct

import pytest
import torch

from ncl_core.models.modelfile import (
    ModelFileError,
    ModelRegistry,
    load_model,
    read_model_info,
    save_model,
)
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig

from tiny import TINY_CONFIG


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    torch.manual_seed(1)
    model = NCLNet(ModelConfig(**TINY_CONFIG)).eval()
    path = save_model(
        tmp_path / "m.safetensors",
        model,
        name="demo",
        metrics={"f1": 0.7},
        trained_on={"n": 3},
        parent="abc",
    )
    loaded, info = load_model(path)
    assert info.name == "demo" and info.metrics == {"f1": 0.7} and info.parent == "abc"
    assert info.config == model.config and info.created
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_an_unmeasured_metric_is_stored_as_null_and_an_old_nan_still_loads(tmp_path):
    """A figure that could not be measured (an image AUC without authentic images) is NaN in
    memory: it is written as null, and files that hold NaN there (the bundled model's of
    2026-11-30 among them) still load; NaN anywhere else stays refused."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model = NCLNet(ModelConfig(**TINY_CONFIG)).eval()
    path = save_model(tmp_path / "m.safetensors", model, metrics={"f1": 0.1, "image_auc": math.nan})
    assert load_model(path)[1].metrics == {"f1": 0.1, "image_auc": None}
    with safe_open(str(path), "np") as fh:
        meta = fh.metadata()
    tensors = load_file(str(path))
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={**meta, "metrics": '{"image_auc": NaN}'})
    assert load_model(old)[1].metrics == {"image_auc": None}
    bad = tmp_path / "bad.safetensors"
    inference = json.dumps({"calibration": {"score_threshold": "x"}}).replace('"x"', "NaN")
    save_file(tensors, str(bad), metadata={**meta, "inference": inference})
    with pytest.raises(ModelFileError):
        load_model(bad)


def test_half_weights_are_smaller_and_close(tmp_path):
    model = NCLNet(ModelConfig(**TINY_CONFIG)).eval()
    full = save_model(tmp_path / "f.safetensors", model)
    half = save_model(tmp_path / "h.safetensors", model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32


def _header(path, meta, tensors):
    """A hand-made safetensors file: valid header, chosen metadata and tensors."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_pickle_payloads_are_refused_and_never_run(tmp_path, suffix):
    marker = tmp_path / "PWNED"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    with pytest.raises(ModelFileError, match="not a readable .safetensors"):
        load_model(path)
    with pytest.raises(ModelFileError):
        ModelRegistry(tmp_path / "reg").import_model(path)
    assert not marker.exists()


def test_truncated_foreign_and_mismatched_files(tmp_path, tiny_model_path):
    data = tiny_model_path.read_bytes()
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model(truncated)

    foreign = _header(tmp_path / "foreign.safetensors", {"x": "y"}, {"w": torch.zeros(2)})
    with pytest.raises(ModelFileError, match="not an NCL Forensics model"):
        load_model(foreign)

    meta = {"format": "ncl-forensics-model", "format_version": "1"}
    other_arch = dict(meta, model_config=json.dumps({"backbone": "vit_b16"}))
    with pytest.raises(ModelFileError, match="configuration is invalid"):
        load_model(_header(tmp_path / "arch.safetensors", other_arch, {"w": torch.zeros(2)}))

    tiny = dict(meta, model_config=ModelConfig(**TINY_CONFIG).to_json())
    with pytest.raises(ModelFileError, match="missing"):
        load_model(_header(tmp_path / "missing.safetensors", tiny, {"w": torch.zeros(2)}))

    newer = dict(meta, format_version="99", model_config=tiny["model_config"])
    with pytest.raises(ModelFileError, match="version"):
        load_model(_header(tmp_path / "newer.safetensors", newer, {"w": torch.zeros(2)}))

    huge_header = tmp_path / "huge.safetensors"
    huge_header.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(ModelFileError):
        load_model(huge_header)


def test_registry_import_default_export_remove(tmp_path, tiny_model_path):
    bundled = save_model(
        tmp_path / "bundled.safetensors", NCLNet(ModelConfig(**TINY_CONFIG)), name="starter"
    )
    registry = ModelRegistry(tmp_path / "reg", bundled=bundled)
    assert [m.name for m in registry.list()] == ["starter"]
    assert registry.default().bundled

    info = registry.import_model(tiny_model_path, name="mine")
    assert info.path.parent == tmp_path / "reg"
    assert registry.import_model(tiny_model_path).sha256 == info.sha256  # no duplicate
    assert len(registry.list()) == 2

    registry.set_default(info.id)
    assert ModelRegistry(tmp_path / "reg", bundled=bundled).default().sha256 == info.sha256

    exported = registry.export_model(info.id, tmp_path / "out.safetensors")
    assert read_model_info(exported).sha256 == info.sha256

    with pytest.raises(ModelFileError, match="bundled"):
        registry.remove("starter")
    registry.remove(info.id)
    assert registry.default().bundled
    with pytest.raises(ModelFileError, match="no model"):
        registry.get("nothing-like-this")


def test_no_model_at_all_is_a_clear_error(tmp_path):
    registry = ModelRegistry(tmp_path / "reg", bundled=tmp_path / "absent.safetensors")
    with pytest.raises(ModelFileError, match="no model available"):
        registry.default()


def test_half_export_keeps_metadata(tmp_path, tiny_model_path):
    from ncl_core.models.modelfile import export_half

    half = export_half(tiny_model_path, tmp_path / "half.safetensors")
    original, copy = read_model_info(tiny_model_path), read_model_info(half)
    assert (copy.name, copy.metrics, copy.config) == (
        original.name,
        original.metrics,
        original.config,
    )
    assert half.stat().st_size < 0.6 * tiny_model_path.stat().st_size
