"""Model files: one ``.safetensors`` each, never unpickled.

A model file's metadata holds the format version, the full ``ModelConfig``, what it was
trained on, its validation metrics, its creation time and its parent (for fine-tuned models).
The user's registry of model files is ``ncl_core/models/registry.py``; its ``ModelRegistry`` and
``resolve_model`` can still be imported from here.

Reading a file's metadata (``read_model_info``) loads no torch: the header is parsed here, so
that listing models or checking a ``--model`` answers at once. Torch is imported by what builds
or writes a network (``load_model``, ``save_model``, ``export_model``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from ncl_core import __version__
from ncl_core.errors import ModelFileError
from ncl_core.evidence.hashing import sha256_file
from ncl_core.fsutil import atomic_path
from ncl_core.network.net_config import ModelConfig
from ncl_core.settings import INPUT_SIZE_RANGE, MAX_MARGIN, MODES, TILE_RANGE

if TYPE_CHECKING:
    import torch

    # Re-exported for type checkers; at run time __getattr__ below supplies them.
    from ncl_core.models.registry import ModelRegistry as ModelRegistry
    from ncl_core.models.registry import resolve_model as resolve_model
    from ncl_core.network.model import NCLNet

FORMAT_NAME = "ncl-forensics-model"
# The self-supervised stage's output (ncl_core/training/pretrain.py): an encoder, not a model.
ENCODER_FORMAT = "ncl-forensics-encoder"
FORMAT_VERSION = 1
_JSON_KEYS = ("trained_on", "metrics", "train_config", "inference")

# Bounds on what a model file's metadata may say, checked before anything is built from it:
# a shared file is untrusted, and a network 3 000 000 channels wide, an input side of 40 000 px
# or a 1 px tile would exhaust memory or time before any other check ran.
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 1_000  # created, parent, app_version
MAX_JSON_CHARS = 1_000_000  # each JSON field
MAX_JSON_DEPTH = 32
CHANNEL_FIELDS = (
    "aspp_channels",
    "low_level_channels",
    "decoder_channels",
    "stage3_channels",
    "stage4_channels",
)
MAX_CHANNELS = 2048
MAX_PATCH_CELLS = 64
LOGIT_SHIFT_MAX = 10.0  # a calibrated pixel threshold between 0.00005 and 0.99995
# The input size and tile bounds, INPUT_SIZE_RANGE and TILE_RANGE, are ncl_core.settings'.
MAX_FUSE_SIZES = 4  # resize mode: sides fused with the input size (each one more analysis)


@dataclass
class ModelInfo:
    """What a model file says about itself, plus where it is."""

    id: str
    name: str
    path: Path
    sha256: str
    config: ModelConfig
    created: str = ""
    trained_on: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    app_version: str = ""
    bundled: bool = False
    train_config: dict[str, Any] = field(default_factory=dict)
    # The model's own inference defaults, measured on real forgeries: {"mode": "resize" |
    # "tiled", "input_size": px, "tile": px}. Files without them use resize at the training size.
    inference: dict[str, Any] = field(default_factory=dict)

    @property
    def backbone(self) -> str:
        return self.config.backbone

    def validation_summary(self) -> str:
        """One line on what the model's calibration measured on labeled data, or that it has
        none (for the Models view and report headers)."""
        cal = self.inference.get("calibration") or {}
        at = cal.get("at_0.5") or {}
        if not at:
            return "not calibrated on labeled data"

        def fmt(key: str) -> str:
            value = at.get(key)
            return "n/a" if value is None else f"{value:.3f}"

        text = (
            f"calibrated on {cal.get('n_tampered', '?')} manipulated and "
            f"{cal.get('n_authentic', '?')} authentic images ({cal.get('mode', '?')} mode): "
            f"F1 {fmt('f1')} at 0.5 (floor {fmt('floor_f1')}), pixel AUC {fmt('auc')}"
        )
        if "score_threshold" in cal:
            text += (
                f"; image score threshold {cal['score_threshold']:.3f}, image AUC "
                f"{cal.get('image_auc', float('nan')):.3f}"
            )
        return text

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "backbone": self.backbone,
            "output_stride": self.config.output_stride,
            "created": self.created,
            "trained_on": self.trained_on,
            "metrics": self.metrics,
            "validation": self.validation_summary(),
            "parent": self.parent,
            "bundled": self.bundled,
        }


def measured_figures(info: ModelInfo) -> dict[str, Any]:
    """The figures a model was measured by: its validation metrics, or, for a model that has
    none (an average of models), those of its calibration at 0.5, with ``n_images`` the
    manipulated images it was calibrated on."""
    if info.metrics:
        return info.metrics
    calibration = (getattr(info, "inference", None) or {}).get("calibration") or {}
    at = calibration.get("at_0.5")
    if not isinstance(at, dict):
        return {}
    return {**at, "n_images": calibration.get("n_tampered")}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_model(
    path: str | Path,
    model: NCLNet,
    *,
    name: str | None = None,
    trained_on: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    parent: str | None = None,
    train_config: dict[str, Any] | None = None,
    half: bool = False,
    inference: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a model file (atomically). ``half`` stores float weights as fp16;
    ``inference`` holds the model's default inference settings (mode, input size, tile)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value.contiguous()
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_config": model.config.to_json(),
        "name": name or path.stem,
        "created": utc_now(),
        "app_version": __version__,
        "parent": parent or "",
        "trained_on": json.dumps(trained_on or {}),
        "metrics": json.dumps(_null_unmeasured(metrics or {})),
        "train_config": json.dumps(train_config or {}),
        "inference": json.dumps(inference or {}),
    }
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:  # e.g. a full disk; atomic_path keeps the old file
            raise OSError(f"cannot write the model file {path} ({exc})") from exc
    return path


def _read_header(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        metadata = safetensors_metadata(path)
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: not a readable .safetensors model file ({exc}); "
            "models must be NCL Forensics .safetensors files (pickled .pt/.pth files are refused)"
        ) from exc
    if metadata.get("format") == ENCODER_FORMAT:
        raise ModelFileError(
            f"{path}: an encoder from `ncl-forensics pretrain`, not a model (its decoder was "
            "never trained); train a model from it with `ncl-forensics train --init-encoder`"
        )
    if metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path}: a .safetensors file, but not an NCL Forensics model (no '{FORMAT_NAME}' "
            "metadata); train or fine-tune one with `ncl-forensics train`"
        )
    try:
        version = int(metadata.get("format_version", "0"))
    except ValueError:
        version = -1
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {metadata.get('format_version')!r} is not supported "
            f"by this version of NCL Forensics (expects {FORMAT_VERSION})"
        )
    return metadata


# What safetensors itself accepts as a header, checked the same way without loading torch.
_MAX_HEADER_BYTES = 100_000_000
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a ``.safetensors`` file, read without torch or numpy.

    The header is checked as safetensors checks it when it opens a file (its size, its JSON,
    each tensor's dtype, shape and byte range, the ranges filling the data exactly), so a
    truncated or foreign file is refused here, not only when its weights are loaded. Raises
    ``ValueError`` (or ``OSError``) naming what is wrong.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise ValueError("the file is too short for a header")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_HEADER_BYTES or 8 + length > size:
            raise ValueError(f"a header of {length} bytes cannot be right in a file of {size}")
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValueError("the header's __metadata__ must map text to text")
    ranges = []
    for name, entry in header.items():
        try:
            width = _DTYPE_BYTES[entry["dtype"]]
            shape, (begin, end) = entry["shape"], entry["data_offsets"]
            if not all(type(n) is int and n >= 0 for n in (*shape, begin, end)):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"tensor {name!r}: not a valid tensor entry") from None
        if end - begin != width * math.prod(shape):
            raise ValueError(f"tensor {name!r}: its byte range does not match its shape")
        ranges.append((begin, end))
    ranges.sort()
    position = 0
    for begin, end in ranges:
        if begin != position:
            raise ValueError("the tensors' byte ranges overlap or leave gaps")
        position = end
    if position != size - 8 - length:
        raise ValueError(
            f"the tensors need {position} bytes of data, the file holds {size - 8 - length}"
        )
    return metadata


def export_half(
    source: str | Path, dest: str | Path, inference: dict[str, Any] | None = None
) -> Path:
    """An fp16 copy of a model file with the same metadata (for shipping: half the size);
    ``inference`` replaces its default inference settings when given."""
    return export_model(source, dest, half=True, inference=inference)


def export_model(
    source: str | Path,
    dest: str | Path,
    *,
    half: bool = False,
    inference: dict[str, Any] | None = None,
) -> Path:
    """A copy of a model file with the same metadata, fp16 weights if ``half``, and
    ``inference`` as its default inference settings and calibration when given."""
    model, info = load_model(source)
    return save_model(
        dest,
        model,
        name=info.name,
        trained_on=info.trained_on,
        metrics=info.metrics,
        parent=info.parent,
        train_config=info.train_config,
        half=half or _file_is_half(source),
        inference=inference if inference is not None else info.inference,
    )


def _file_is_half(path: str | Path) -> bool:
    """Whether a model file stores fp16 weights (a copy keeps the file's precision)."""
    with safe_open(str(path), framework="pt") as fh:
        return any(fh.get_slice(key).get_dtype() == "F16" for key in fh.keys())  # noqa: SIM118


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    """A model file's SHA-256, re-read only when its size or modification time changes
    (listing the registry would otherwise hash every model file each time)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def read_model_info(path: str | Path, *, bundled: bool = False) -> ModelInfo:
    """Read and validate a model file's metadata (no weights are loaded).

    Every field is checked against the bounds above before anything is built from it; a file
    outside them is refused with ``ModelFileError`` naming the field.
    """
    path = Path(path)
    meta = _read_header(path)
    try:
        for key, value in meta.items():
            limit = MAX_JSON_CHARS if key in (*_JSON_KEYS, "model_config") else MAX_TEXT_CHARS
            if key == "name":
                limit = MAX_NAME_CHARS
            if len(value) > limit:
                raise ValueError(f"{key} is {len(value)} characters long (at most {limit})")
        config_dict = _parse_json(meta["model_config"], "model_config")
        check_config_dict(config_dict)
        config = ModelConfig.from_dict(config_dict)
        parsed = {key: _parse_json(meta.get(key) or "{}", key) for key in _JSON_KEYS}
        for key, value in parsed.items():
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be a JSON object, not {type(value).__name__}")
        check_inference(parsed["inference"], parsed["train_config"])
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ModelFileError(
            f"{path}: the model's configuration is invalid ({reason}); the file is damaged "
            "or was not written by NCL Forensics"
        ) from None
    sha = _cached_sha256(path)
    return ModelInfo(
        id=sha[:12],
        name=meta.get("name") or path.stem,
        path=path,
        sha256=sha,
        config=config,
        created=meta.get("created", ""),
        trained_on=parsed["trained_on"],
        metrics=parsed["metrics"],
        parent=meta.get("parent") or None,
        app_version=meta.get("app_version", ""),
        bundled=bundled,
        train_config=parsed["train_config"],
        inference=parsed["inference"],
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a model file may hold")


def _null_unmeasured(value: Any) -> Any:
    """``value`` with every NaN (a figure that could not be measured) as None: JSON's null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _null_unmeasured(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_null_unmeasured(v) for v in value]
    return value


def _unmeasured(name: str) -> None:
    """NaN in recorded metrics means "not measured" (an image AUC without authentic images);
    files written before NaN was stored as null hold it, the bundled model's among them."""
    if name != "NaN":
        _refuse_constant(name)


def _parse_json(text: str, key: str) -> Any:
    """JSON of one metadata field: no NaN or Infinity, nested at most ``MAX_JSON_DEPTH`` deep
    (the depth is checked on the text, before the parser could recurse)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ValueError(f"{key} is nested {deepest} levels deep (at most {MAX_JSON_DEPTH})")
    constant = _unmeasured if key == "metrics" else _refuse_constant
    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_int(value: Any, what: str, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {value!r}")


def check_config_dict(config: Any) -> None:
    """The types and bounds of a ``ModelConfig`` as a model file stores it (before building)."""
    if not isinstance(config, dict):
        raise ValueError("model_config must be a JSON object")
    for key in CHANNEL_FIELDS:
        if key in config:
            _check_int(config[key], key, 1, MAX_CHANNELS)
    if "patch_cells" in config:
        _check_int(config["patch_cells"], "patch_cells", 1, MAX_PATCH_CELLS)
    if "output_stride" in config:
        _check_int(config["output_stride"], "output_stride", 8, 16)
    for key in ("pivot", "noise_stem"):
        if key in config and not isinstance(config[key], bool):
            raise ValueError(f"{key} must be true or false, got {config[key]!r}")
    if "backbone" in config and not isinstance(config["backbone"], str):
        raise ValueError(f"backbone must be a name, got {config['backbone']!r}")
    if "patch_eps" in config and not _is_number(config["patch_eps"]):
        raise ValueError(f"patch_eps must be a number, got {config['patch_eps']!r}")


def check_inference(inference: dict[str, Any], train_config: dict[str, Any]) -> None:
    """The inference defaults a model file names (and the training size they fall back to)."""
    mode = inference.get("mode")
    if mode is not None and mode not in MODES[1:]:  # a file names a mode, never "auto"
        raise ValueError(f"inference mode must be resize or tiled, got {mode!r}")
    for key, (low, high) in (("input_size", INPUT_SIZE_RANGE), ("tile", TILE_RANGE)):
        if inference.get(key) is not None:
            _check_int(inference[key], f"inference {key}", low, high)
    fused = inference.get("fuse_sizes")
    if fused is not None:
        if not isinstance(fused, list) or len(fused) > MAX_FUSE_SIZES:
            raise ValueError(
                f"inference fuse_sizes must be a list of at most {MAX_FUSE_SIZES} sides, "
                f"got {fused!r}"[:200]
            )
        for side in fused:
            _check_int(side, "inference fuse size", *INPUT_SIZE_RANGE)
    margin = inference.get("margin")
    if margin is not None and not (_is_number(margin) and 0.0 <= margin <= MAX_MARGIN):
        raise ValueError(
            f"inference margin must be a number from 0 to {MAX_MARGIN:g}, got {margin!r}"
        )
    if train_config.get("size") is not None:
        _check_int(train_config["size"], "training size", *INPUT_SIZE_RANGE)
    for key in ("threshold", "score_threshold"):
        value = inference.get(key)
        if value is not None and not (_is_number(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"inference {key} must be a number from 0 to 1, got {value!r}")
    shift = inference.get("logit_shift")
    if shift is not None and not (
        _is_number(shift) and -LOGIT_SHIFT_MAX <= shift <= LOGIT_SHIFT_MAX
    ):
        raise ValueError(
            f"inference logit_shift must be a number from {-LOGIT_SHIFT_MAX:g} to "
            f"{LOGIT_SHIFT_MAX:g}, got {shift!r}"
        )
    calibration = inference.get("calibration")
    if calibration is None:
        return
    if not isinstance(calibration, dict):
        raise ValueError("inference calibration must be a JSON object")
    at = calibration.get("at_0.5")
    if at is not None and not isinstance(at, dict):
        raise ValueError("inference calibration at_0.5 must be a JSON object")
    shown = [(calibration, "score_threshold"), (calibration, "image_auc")]
    shown += [(at or {}, key) for key in ("f1", "floor_f1", "auc")]
    for record, key in shown:
        value = record.get(key)
        if value is not None and not _is_number(value):
            raise ValueError(f"inference calibration {key} must be a number, got {value!r}")


def load_model(
    path: str | Path, device: torch.device | str = "cpu", *, bundled: bool = False
) -> tuple[NCLNet, ModelInfo]:
    """Rebuild the network from a model file and load its weights (float32, eval mode)."""
    from ncl_core.network.model import NCLNet

    info = read_model_info(path, bundled=bundled)
    model = NCLNet(info.config)
    expected = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(info.path), framework="pt") as fh:
            keys = set(fh.keys())
            missing = sorted(set(expected) - keys)
            unexpected = sorted(keys - set(expected))
            if missing or unexpected:
                raise ModelFileError(
                    f"{info.path}: weights do not match its configuration "
                    f"({len(missing)} missing, e.g. {missing[:2]}; {len(unexpected)} unexpected, "
                    f"e.g. {unexpected[:2]}); the file is damaged or from another program"
                )
            for key in keys:
                tensor = fh.get_tensor(key)
                if tensor.shape != expected[key].shape:
                    raise ModelFileError(
                        f"{info.path}: tensor {key} has shape {tuple(tensor.shape)}, "
                        f"expected {tuple(expected[key].shape)}; the file is damaged"
                    )
                tensors[key] = _checked(info.path, key, tensor, expected[key].dtype)
    except SafetensorError as exc:
        raise ModelFileError(f"{info.path}: the weights cannot be read ({exc})") from exc
    model.load_state_dict(tensors)
    return model.to(device).eval(), info


def _checked(path: Path, key: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A stored tensor in the network's dtype, refused when it would give silent nonsense: a
    float weight stored as integers, or NaN or infinite values (every score NaN, 0 or 1)."""
    import torch

    if dtype.is_floating_point:
        if not tensor.dtype.is_floating_point:
            raise ModelFileError(
                f"{path}: tensor {key} is stored as {str(tensor.dtype).removeprefix('torch.')}, "
                "not as floating-point weights; the file is damaged or crafted"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(
                f"{path}: tensor {key} holds NaN or infinite values; the model would give "
                "meaningless scores (the file is damaged, or its training diverged)"
            )
    elif tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise ModelFileError(
            f"{path}: tensor {key} is stored as {str(tensor.dtype).removeprefix('torch.')}, "
            f"expected {str(dtype).removeprefix('torch.')}; the file is damaged or crafted"
        )
    return tensor.to(dtype)


def __getattr__(name: str) -> Any:
    """``ModelRegistry`` and ``resolve_model``, from ``ncl_core.models.registry`` (which imports this
    module, so they are looked up when first asked for)."""
    if name in ("ModelRegistry", "resolve_model"):
        from ncl_core.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
