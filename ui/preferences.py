"""The workstation's preferences: one typed wrapper over QSettings, so each key, its type, its default
and its checks are written once (the window's parts read and write these properties, never raw keys).
Settings written by the first release (e.g. the analysis method "m3") still read back."""
from __future__ import annotations

import getpass
from pathlib import Path

from PySide6.QtCore import QSettings

from spine_core.pipeline import registry
from spine_core.pipeline.runtime import DEVICES

DEFAULT_AUTOSAVE_S = 60
MIN_AUTOSAVE_S = 5
DEFAULT_BRUSH_RADIUS_MM = 3.0
MAX_RECENT = 8


class Preferences:
    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def _get(self, key: str, default):
        return self.settings.value(key, default)

    def _set(self, key: str, value) -> None:
        self.settings.setValue(key, value)

    # --- analysis -------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        device = str(self._get("analysis/device", "auto"))
        return device if device in DEVICES else "auto"

    @device.setter
    def device(self, device: str) -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}")
        self._set("analysis/device", device)

    @property
    def method(self) -> str:
        """A pipeline Preferences offers (spine_core.pipeline.registry), old names resolved."""
        method = registry.normalise(str(self._get("analysis/method", registry.DEFAULT)))
        return method if method in registry.offered() else registry.DEFAULT

    @method.setter
    def method(self, method: str) -> None:
        method = registry.normalise(method)
        if method not in registry.offered():
            raise ValueError(f"method must be one of {tuple(registry.offered())}")
        self._set("analysis/method", method)

    @property
    def mr_method(self) -> str:
        """The MR method an MR scan runs (spine_core.pipeline.registry.MR_PIPELINES)."""
        method = str(self._get("analysis/mr_method", registry.MR_DEFAULT))
        return method if registry.is_mr(method) else registry.MR_DEFAULT

    @mr_method.setter
    def mr_method(self, method: str) -> None:
        if not registry.is_mr(method):
            raise ValueError(f"MR method must be one of {tuple(p.name for p in registry.MR_PIPELINES)}")
        self._set("analysis/mr_method", method)

    # --- plans and edits ------------------------------------------------------------------------
    @property
    def autosave_s(self) -> int:
        return max(MIN_AUTOSAVE_S, int(self._get("plan/autosave_s", DEFAULT_AUTOSAVE_S)))

    @autosave_s.setter
    def autosave_s(self, seconds: int) -> None:
        self._set("plan/autosave_s", max(MIN_AUTOSAVE_S, int(seconds)))

    @property
    def brush_radius_mm(self) -> float:
        return float(self._get("edit/brush_radius_mm", DEFAULT_BRUSH_RADIUS_MM))

    @brush_radius_mm.setter
    def brush_radius_mm(self, radius_mm: float) -> None:
        self._set("edit/brush_radius_mm", float(radius_mm))

    # --- files ----------------------------------------------------------------------------------
    @property
    def last_dir(self) -> str:
        return str(self._get("paths/last_dir", str(Path.home())))

    def remember_dir(self, path) -> None:
        path = Path(path)
        self._set("paths/last_dir", str(path if path.is_dir() else path.parent))

    @property
    def export_dir(self) -> str:
        return str(self._get("paths/export_dir", str(Path(self.last_dir) / "meshes")))

    @export_dir.setter
    def export_dir(self, folder) -> None:
        self._set("paths/export_dir", str(folder))

    @property
    def export_format(self) -> str:
        return str(self._get("export/format", "stl"))

    @export_format.setter
    def export_format(self, fmt: str) -> None:
        self._set("export/format", fmt)

    @property
    def plan_export_dir(self) -> str:
        return str(self._get("paths/plan_export_dir", str(Path(self.last_dir) / "plan-export")))

    @plan_export_dir.setter
    def plan_export_dir(self, folder) -> None:
        self._set("paths/plan_export_dir", str(folder))

    @property
    def plan_export_formats(self) -> list[str]:
        """The formats File > Export plan offered checked last time (first time: markups, STL, report)."""
        value = self._get("export/plan_formats", ["markups", "stl", "report"])
        return [value] if isinstance(value, str) else list(value or [])

    @plan_export_formats.setter
    def plan_export_formats(self, formats) -> None:
        self._set("export/plan_formats", list(formats))

    @property
    def recent_files(self) -> list[str]:
        value = self._get("recent/files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def add_recent(self, path) -> None:
        path = str(Path(path).expanduser().resolve())
        self._set("recent/files", ([path] + [p for p in self.recent_files if p != path])[:MAX_RECENT])

    # --- batch review ---------------------------------------------------------------------------
    @property
    def reviewer(self) -> str:
        """The name written with batch review decisions: the last one typed, else the OS user."""
        return str(self._get("review/reviewer", "") or "") or os_user()

    @reviewer.setter
    def reviewer(self, name: str) -> None:
        self._set("review/reviewer", name.strip())

    # --- view -----------------------------------------------------------------------------------
    @property
    def window_preset(self) -> str:
        return str(self._get("view/window_preset", "bone"))

    @window_preset.setter
    def window_preset(self, name: str) -> None:
        self._set("view/window_preset", name)

    @property
    def label_opacity(self) -> float:
        return float(self._get("view/label_opacity", 0.45))

    @label_opacity.setter
    def label_opacity(self, opacity: float) -> None:
        self._set("view/label_opacity", float(opacity))

    @property
    def mesh_opacity(self) -> float:
        return float(self._get("view/mesh_opacity", 1.0))

    @mesh_opacity.setter
    def mesh_opacity(self, opacity: float) -> None:
        self._set("view/mesh_opacity", float(opacity))

    def window_layout(self) -> tuple:
        """(geometry, state, views splitter state), each None where never saved."""
        return tuple(self._get(k, None) for k in ("window/geometry", "window/state", "window/views"))

    def save_window_layout(self, geometry, state, views) -> None:
        for key, value in zip(("window/geometry", "window/state", "window/views"), (geometry, state, views)):
            self._set(key, value)
        self.settings.sync()


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):          # no login name (e.g. a container's uid without a passwd entry)
        return ""
