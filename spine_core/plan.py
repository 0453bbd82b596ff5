"""Surgical plan files, autosave and crash recovery (Qt-free).

A plan is the clinician's work on one scan: the (edited) label map and what was done to it.
On disk it is either

- a single ``NAME.spineplan`` file: a zip holding ``plan.json`` and ``labels.nii.gz``, or
- a folder holding the same two files (any other path: easy to inspect and to diff).

``plan.json`` records the scan's source path and series UID (the scan itself is not copied: it
stays in PACS or on the drive it came from), the app version, creation and modification times, the
edit history as descriptions, a per-vertebra summary and the planned screws (plain dicts, as
``spine_core.planning.Screw.to_dict`` writes them; a plan from before screws reads as none planned).
Every write goes through ``atomic_path``: a crash never leaves half a plan where a good one was.

Autosave writes ``autosave.spineplan`` into the per-user data folder; a clean close writes the
``clean_close`` marker. An autosave newer than that marker is the work of a session that did not
close cleanly: ``recovery_candidate`` returns it so the app can offer to restore it.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError, UnreadableFile
from spine_core.io.writers import save_labelmap
from spine_core.volume import LabelMap

PLAN_SUFFIX = ".spineplan"
PLAN_JSON, PLAN_LABELS = "plan.json", "labels.nii.gz"
FORMAT_VERSION = 1
AUTOSAVE_NAME, CLEAN_CLOSE_NAME = "autosave" + PLAN_SUFFIX, "clean_close"


class PlanError(SpineError):
    """A plan cannot be read or written; the message says why and what to do."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def app_version() -> str:
    try:
        from importlib.metadata import version

        return version("spineplan")
    except Exception:  # noqa: BLE001 - an uninstalled checkout has no metadata
        return "0+unknown"


@dataclass(frozen=True)
class PlanInfo:
    scan_source: str = ""                 # path the scan was opened from
    series_uid: str = ""
    app_version: str = field(default_factory=app_version)
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    edits: tuple[str, ...] = ()           # edit history, oldest first (descriptions)
    vertebrae: tuple[dict, ...] = ()      # {"id", "name", "voxels"} per label
    note: str = ""
    screws: tuple[dict, ...] = ()         # planned screws (spine_core.planning.Screw.to_dict), LPS mm
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["edits"], data["vertebrae"], data["screws"] = list(self.edits), list(self.vertebrae), list(self.screws)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "PlanInfo":
        data = json.loads(text)
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise PlanError("This plan was saved by a newer SpinePlan; update SpinePlan to open it.")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["edits"] = tuple(known.get("edits", ()))
        known["vertebrae"] = tuple(known.get("vertebrae", ()))
        known["screws"] = tuple(known.get("screws", ()))         # plans from before screws: none
        return cls(**known)


@dataclass(frozen=True)
class Plan:
    labels: LabelMap
    info: PlanInfo


def vertebra_summary(labels: LabelMap) -> tuple[dict, ...]:
    import numpy as np

    counts = np.bincount(labels.array.reshape(-1).clip(0).astype(np.int64))
    return tuple({"id": i, "name": str(labels.names.get(i, i)), "voxels": int(counts[i])} for i in labels.ids())


def is_plan_file(path) -> bool:
    path = Path(path)
    return path.suffix == PLAN_SUFFIX or (path.is_dir() and (path / PLAN_JSON).is_file())


def save_plan(path, labels: LabelMap, info: PlanInfo) -> Path:
    """Write a plan (``.spineplan`` zip, or a folder for any other name); returns its path."""
    path = Path(path)
    info = replace(info, modified=_now(), vertebrae=vertebra_summary(labels))
    try:
        with tempfile.TemporaryDirectory(prefix="spineplan-") as tmp:
            labels_file = save_labelmap(labels, Path(tmp) / PLAN_LABELS)
            if path.suffix == PLAN_SUFFIX:
                with atomic_path(path) as partial:
                    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
                        archive.writestr(PLAN_JSON, info.to_json())
                        archive.write(labels_file, PLAN_LABELS)   # already gzip-compressed
            else:
                path.mkdir(parents=True, exist_ok=True)
                with atomic_path(path / PLAN_LABELS) as partial:
                    os.replace(labels_file, partial)
                with atomic_path(path / PLAN_JSON) as partial:
                    partial.write_text(info.to_json(), encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"Could not write the plan '{path}' ({exc.strerror or exc}). "
                        "Choose a folder you can write to, with free space.") from exc
    return path


def load_plan(path) -> Plan:
    """Read a plan written by ``save_plan`` (zip or folder)."""
    from spine_core.io import load_labels

    path = Path(path)
    if not path.exists():
        raise PlanError(f"The plan '{path}' does not exist.")
    try:
        if path.is_dir():
            info = PlanInfo.from_json((path / PLAN_JSON).read_text(encoding="utf-8"))
            labels = load_labels(path / PLAN_LABELS)
        else:
            with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="spineplan-") as tmp:
                info = PlanInfo.from_json(archive.read(PLAN_JSON).decode("utf-8"))
                labels = load_labels(Path(archive.extract(PLAN_LABELS, tmp)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnreadableFile) as exc:
        raise PlanError(f"'{path.name}' is not a readable SpinePlan plan ({exc}). "
                        "Open another copy, or the autosave.") from exc
    return Plan(labels, info)


# --- autosave and recovery ----------------------------------------------------------------------
def data_dir() -> Path:
    """The per-user data folder (``SPINEPLAN_DATA_DIR`` overrides it)."""
    override = os.environ.get("SPINEPLAN_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("SpinePlan", appauthor=False))


def autosave_path(folder=None) -> Path:
    return Path(folder or data_dir()) / AUTOSAVE_NAME


def write_autosave(labels: LabelMap, info: PlanInfo, folder=None) -> Path:
    return save_plan(autosave_path(folder), labels, info)


def mark_clean_close(folder=None) -> None:
    """A clean close: the autosave (if any) holds nothing the user has not been asked about."""
    marker = Path(folder or data_dir()) / CLEAN_CLOSE_NAME
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(_now(), encoding="utf-8")
    now = time.time()
    os.utime(marker, (now, now))


def recovery_candidate(folder=None) -> Path | None:
    """The autosave of a session that did not close cleanly, or None."""
    autosave = autosave_path(folder)
    if not autosave.is_file():
        return None
    marker = Path(folder or data_dir()) / CLEAN_CLOSE_NAME
    if marker.is_file() and marker.stat().st_mtime >= autosave.stat().st_mtime:
        return None
    return autosave


def discard_autosave(folder=None) -> None:
    autosave_path(folder).unlink(missing_ok=True)
