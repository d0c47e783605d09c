"""The user's model registry (the models folder plus the bundled starter model) and
``resolve_model``, the one lookup behind every ``--model``. The file format itself is in
``ncl_core/models/modelfile.py``.

Listing the models and resolving a name or id read only the files' headers and the small
``registry.json`` (the chosen default): no torch, so ``models list`` and a mistyped ``--model``
answer at once. Only importing a model loads its weights (to validate them)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ncl_core.errors import ModelFileError
from ncl_core.fsutil import atomic_path, atomic_write_text, remove_stale_temp_files, shorten_name
from ncl_core.models.modelfile import ModelInfo, export_half, load_model, read_model_info
from ncl_core.paths import bundled_model_path, models_dir

# What an id looks like: a prefix of a SHA-256 in hex (ids are its first 12 digits, and any
# prefix of six or more digits resolves). A model may not be named like one.
_ID_LIKE = re.compile(r"[0-9a-fA-F]{6,64}")


def check_model_name(name: str) -> None:
    """Refuse a name that could shadow another model's id (``models info ID`` must find the
    model with that id, never a model named so)."""
    if _ID_LIKE.fullmatch(name.strip()):
        raise ModelFileError(
            f"the model name {name!r} looks like a model id (hexadecimal digits), so it could "
            "stand for another model; import it under another name with --name"
        )


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
        """Every usable model, bundled first; unreadable files in the folder are skipped, and
        a second file with the same contents (the same id) is listed once."""
        models: list[ModelInfo] = []
        if self.bundled_path.is_file():
            with contextlib.suppress(ModelFileError):
                models.append(read_model_info(self.bundled_path, bundled=True))
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.safetensors")):
                try:
                    models.append(read_model_info(path))
                except (ModelFileError, OSError):
                    continue
        seen: set[str] = set()
        unique = []
        for info in models:
            if info.sha256 not in seen:
                seen.add(info.sha256)
                unique.append(info)
        return unique

    def get(self, model_id: str) -> ModelInfo:
        """A model by id (a prefix of its SHA-256) or by name; an id always wins over a name."""
        return _lookup(self.list(), model_id) or _not_found(model_id)

    def import_model(self, path: str | Path, name: str | None = None) -> ModelInfo:
        """Validate a model file (metadata and every weight) and copy it into the registry.

        Imports of the same file at the same time (two windows, two commands) leave one entry:
        the check for an existing copy and the copy itself hold the registry's lock.
        """
        path = Path(path)
        load_model(path)  # full validation: config builds and every tensor fits
        info = read_model_info(path)
        check_model_name(info.name)
        if name is not None:
            check_model_name(name)
        with self._lock():
            remove_stale_temp_files(self.root)  # copies cut short by a killed import
            for existing in self.list():
                if existing.sha256 == info.sha256:
                    return existing
            dest = self.root / f"{_file_stem(name or info.name)}-{info.id}.safetensors"
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
        return read_model_info(dest)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """An exclusive lock on the registry folder (a no-op where the system has no flock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: imports there are not serialised
            yield
            return
        with open(self.root / ".registry.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

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
    return _lookup(registry.list(), text) or _not_found(spec, file_too=True)


def _lookup(models: list[ModelInfo], text: str) -> ModelInfo | None:
    """The model ``text`` names: its id first, then a prefix of its SHA-256 (six or more hex
    digits), only then its name, so a model named like another's id never stands for it."""
    for info in models:
        if info.id == text or info.sha256 == text.lower():
            return info
    if len(text) >= 6 and all(c in "0123456789abcdef" for c in text.lower()):
        matches = [info for info in models if info.sha256.startswith(text.lower())]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ModelFileError(
                f"{text!r} is the start of {len(matches)} models' ids; give more of the id"
            )
    for info in models:
        if info.name == text:
            return info
    return None


def _not_found(spec: str | Path, file_too: bool = False) -> ModelInfo:
    if file_too:
        raise ModelFileError(
            f"{spec}: no such model file, and no registered model has this name or id; "
            "`ncl-forensics models list` shows the registered models"
        )
    raise ModelFileError(
        f"no model {str(spec)!r} in the registry; `ncl-forensics models list` shows them"
    )
