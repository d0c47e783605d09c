"""The user's model registry (the models folder plus the bundled starter model) and
``resolve_model``, the one lookup behind every ``--model``. The file format itself is in
``ncl_core/modelfile.py``."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from ncl_core.errors import ModelFileError
from ncl_core.fsutil import atomic_path, atomic_write_text, shorten_name
from ncl_core.modelfile import ModelInfo, export_half, load_model, read_model_info
from ncl_core.paths import bundled_model_path, models_dir


def _file_stem(name: str) -> str:
    """A model's name made safe to name its file: the name comes from a shared file's metadata,
    so it must not lead out of the registry folder, hide the file, or be too long."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"
    return shorten_name(safe, 120)


class ModelRegistry:
    """The user's models: files in the user data dir, plus the bundled starter model.

    ``registry.json`` holds the chosen default; the files themselves are the truth, so a
    model copied into the folder by hand shows up too.
    """

    def __init__(self, root: Path | None = None, bundled: Path | None = None) -> None:
        self.root = Path(root) if root else models_dir()
        self.bundled_path = Path(bundled) if bundled else bundled_model_path()
        self._state_file = self.root / "registry.json"

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write_text(self._state_file, json.dumps(state, indent=2))

    def list(self) -> list[ModelInfo]:
        """Every usable model, bundled first; unreadable files in the folder are skipped."""
        models: list[ModelInfo] = []
        if self.bundled_path.is_file():
            with contextlib.suppress(ModelFileError):
                models.append(read_model_info(self.bundled_path, bundled=True))
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.safetensors")):
                try:
                    models.append(read_model_info(path))
                except ModelFileError:
                    continue
        return models

    def get(self, model_id: str) -> ModelInfo:
        """A model by id (a prefix of its SHA-256) or by name."""
        for info in self.list():
            if info.sha256.startswith(model_id) or info.name == model_id:
                return info
        raise ModelFileError(
            f"no model {model_id!r} in the registry; `ncl-forensics models list` shows them"
        )

    def import_model(self, path: str | Path, name: str | None = None) -> ModelInfo:
        """Validate a model file (metadata and every weight) and copy it into the registry."""
        path = Path(path)
        load_model(path)  # full validation: config builds and every tensor fits
        info = read_model_info(path)
        for existing in self.list():
            if existing.sha256 == info.sha256:
                return existing
        dest = self.root / f"{_file_stem(name or info.name)}-{info.id}.safetensors"
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
        return read_model_info(dest)

    def register_trained(self, path: str | Path) -> ModelInfo:
        """Add a model this machine trained (same validation as an import)."""
        return self.import_model(path)

    def export_model(self, model_id: str, dest: str | Path, half: bool = False) -> Path:
        """Copy a model out of the registry; ``half`` writes an fp16 copy (half the size)."""
        info = self.get(model_id)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / info.path.name
        if half:
            return export_half(info.path, dest)
        with atomic_path(dest) as tmp:
            shutil.copyfile(info.path, tmp)
        return dest

    def remove(self, model_id: str) -> None:
        info = self.get(model_id)
        if info.bundled:
            raise ModelFileError("the bundled starter model cannot be removed")
        info.path.unlink()
        state = self._state()
        if state.get("default") == info.sha256:
            state.pop("default")
            self._save_state(state)

    def set_default(self, model_id: str) -> ModelInfo:
        info = self.get(model_id)
        state = self._state()
        state["default"] = info.sha256
        self._save_state(state)
        return info

    def default(self) -> ModelInfo:
        """The chosen default model, else the bundled one."""
        chosen = self._state().get("default")
        models = self.list()
        for info in models:
            if chosen and info.sha256 == chosen:
                return info
        for info in models:
            if info.bundled:
                return info
        if models:
            return models[0]
        raise ModelFileError(
            f"no model available: the bundled model {self.bundled_path} is missing and none "
            "is registered; import one with `ncl-forensics models import FILE` or train one"
        )


def resolve_model(spec: str | Path | None, registry: ModelRegistry | None = None) -> ModelInfo:
    """The model ``spec`` names: a model file's path, or the name or id of a registered model.

    None (or "") is the registry's default model. An existing file wins over a registry entry
    of the same name. This is the one lookup behind every ``--model`` and the app's choosers.
    """
    registry = registry or ModelRegistry()
    if spec is None or str(spec).strip() == "":
        return registry.default()
    path = Path(spec)
    if path.is_file():
        return read_model_info(path, bundled=path.resolve() == registry.bundled_path.resolve())
    text = str(spec).strip()
    for info in registry.list():
        if info.name == text or info.id == text:
            return info
    if len(text) >= 6 and all(c in "0123456789abcdef" for c in text.lower()):
        for info in registry.list():
            if info.sha256.startswith(text.lower()):
                return info
    raise ModelFileError(
        f"{spec}: no such model file, and no registered model has this name or id; "
        "`ncl-forensics models list` shows the registered models"
    )
