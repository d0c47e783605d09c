"""Persistent GUI settings: one ini file in the user config dir (platformdirs), via QSettings.

An explicit ini path (not QSettings' native store) keeps every setting in the user config
folder the README names, and lets tests redirect it with ``XDG_CONFIG_HOME``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from app.display import SETTING_KEYS, OverlaySettings
from ncl_core.paths import APP_NAME, user_config_dir
from ncl_core.settings import DEVICES

MAX_RECENT = 10

# Default values, by key; the type of the default is the type read back. The analysis ones are
# OverlaySettings' own.
_OVERLAY = OverlaySettings()
DEFAULTS: dict[str, Any] = {
    "device": DEVICES[0],
    **{key: getattr(_OVERLAY, name) for name, key in SETTING_KEYS.items()},
    "dirs/open": "",
    "dirs/save": "",
    "dirs/report": "",
    "dirs/dataset": "",
    "report/analyst": "",
    "report/case_id": "",
    "batch/combined": True,  # the combined evidence's finding in each row of the Batch view
    "report/combined": True,  # the combined evidence (finding and map) on each image's page
}


def settings_path() -> Path:
    return user_config_dir() / "gui.ini"


class Settings:
    """Typed access to the GUI's QSettings with the defaults above."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings_path()
        self.first_run = not self.path.exists()  # read before anything is stored
        self.qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def get(self, key: str) -> Any:
        default = DEFAULTS[key]
        value = self.qsettings.value(key, default)
        if isinstance(default, bool):
            # Ini files give strings back: "true" / "false".
            return value if isinstance(value, bool) else str(value).lower() == "true"
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, value)

    def raw(self, key: str) -> Any:
        """A value without a default (window geometry and state)."""
        return self.qsettings.value(key)

    def set_raw(self, key: str, value: Any) -> None:
        self.qsettings.setValue(key, value)

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns a lone item as a string
            value = [value]
        return [str(v) for v in value or []]

    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(path)
        recent = [path] + [p for p in self.recent_files() if p != path]
        recent = recent[:MAX_RECENT]
        self.qsettings.setValue("recent_files", recent)
        return recent

    def sync(self) -> None:
        self.qsettings.sync()


__all__ = ["APP_NAME", "DEFAULTS", "MAX_RECENT", "Settings", "settings_path"]
