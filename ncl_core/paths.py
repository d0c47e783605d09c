"""Where things live: bundled resources and the user's folders (platformdirs).

Nothing is ever written next to the code, into the install, or into a folder of evidence.
"""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

APP_NAME = "ncl-forensics"
BUNDLED_MODEL_NAME = "ncl-starter.safetensors"


def resource_path(*parts: str) -> Path:
    """A file under ``resources/``, from a source checkout or a frozen (PyInstaller) bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    root = Path(frozen_root) if frozen_root else Path(__file__).resolve().parents[1]
    return root.joinpath("resources", *parts)


def bundled_model_path() -> Path:
    return resource_path("models", BUNDLED_MODEL_NAME)


def user_data_dir() -> Path:
    """Models and training runs."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    return user_data_dir() / "models"


def runs_dir() -> Path:
    return user_data_dir() / "runs"
