"""Where logs and crash reports live, and the crash report itself: the traceback goes to a file the
user can send us; the console (CLI) or a dialog (GUI) gets one line. Shared by the CLI, the
workstation (passed in by the app) and batch runs (one report per failed case)."""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path


def log_dir() -> Path:
    """``SPINEPLAN_LOG_DIR``, else the platform's log folder (~/.local/state/spineplan/log on Linux)."""
    base = os.environ.get("SPINEPLAN_LOG_DIR")
    if base:
        path = Path(base)
    else:
        import platformdirs

        path = Path(platformdirs.user_log_dir("spineplan", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_crash_report(exc: BaseException, folder: Path | None = None, name: str | None = None) -> Path:
    """The traceback of ``exc`` in ``folder/name`` (default: a timestamped file in the log folder)."""
    folder = Path(folder) if folder is not None else log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), encoding="utf-8")
    return path
