"""How results are analyzed and drawn: the display settings every view reads (no Qt here).

``OverlaySettings`` holds the analysis mode and threshold and the overlay's look. The Analysis
view changes them; the Batch view and its report analyze with the same mode and threshold. The
stored fields live under ``SETTING_KEYS`` in the GUI settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from ncl_core.inference.render import COLORMAPS
from ncl_core.settings import DEFAULT_MODE, DEFAULT_THRESHOLD, MODES

OVERLAY_STYLES = ("heatmap", "mask", "outline", "off")
PATCH_SOURCES = ("prediction", "ground_truth")


@dataclass(frozen=True)
class OverlaySettings:
    """How a result is analyzed and drawn over the image."""

    mode: str = DEFAULT_MODE  # analysis mode (``ncl_core.settings.MODES``); a change analyzes again
    threshold: float = DEFAULT_THRESHOLD  # in steps of 0.01, as the threshold control shows it
    opacity: float = 0.5  # of the heatmap or mask, in steps of 0.01
    colormap: str = "inferno"
    overlay: str = "heatmap"  # one of OVERLAY_STYLES
    side_by_side: bool = False  # the heatmap (or a second map) in a pane of its own
    show_patches: bool = False  # the contour-patch grid
    patch_source: str = "prediction"  # which mask the patches come from (not stored)


FIELDS = frozenset(f.name for f in fields(OverlaySettings))

# The stored fields and their keys in the GUI settings.
SETTING_KEYS = {
    "mode": "analysis/mode",
    "threshold": "analysis/threshold",
    "opacity": "analysis/opacity",
    "colormap": "analysis/colormap",
    "overlay": "analysis/overlay",
    "side_by_side": "analysis/side_by_side",
    "show_patches": "analysis/show_patches",
}
CHOICES = {
    "mode": MODES,
    "overlay": OVERLAY_STYLES,
    "colormap": COLORMAPS,
    "patch_source": PATCH_SOURCES,
}


class SettingsReader(Protocol):
    def get(self, key: str) -> Any: ...


def clean(name: str, value: Any) -> Any:
    """``value`` as field ``name`` holds it; None when it is not a valid value."""
    if name in CHOICES:
        return value if value in CHOICES[name] else None
    if name in ("threshold", "opacity"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return round(min(1.0, max(0.0, number)), 2)
    return bool(value)


def load_overlay_settings(settings: SettingsReader) -> OverlaySettings:
    """The stored settings; a stored choice that is no longer offered gives the first one."""
    values: dict[str, Any] = {}
    for name, key in SETTING_KEYS.items():
        value = clean(name, settings.get(key))
        values[name] = value if value is not None else CHOICES[name][0]
    return OverlaySettings(**values)


def updated(current: OverlaySettings, /, **changes: Any) -> tuple[OverlaySettings, frozenset[str]]:
    """``current`` with some fields changed (invalid values are ignored), and the fields
    whose value changed; ``TypeError`` for a name that is not a field."""
    values = {}
    for name, value in changes.items():
        if name not in FIELDS:
            raise TypeError(f"OverlaySettings has no field {name!r}")
        value = clean(name, value)
        if value is not None and value != getattr(current, name):
            values[name] = value
    if not values:
        return current, frozenset()
    return replace(current, **values), frozenset(values)
