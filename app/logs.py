"""Logging setup and the place where logs live. Installed by entry points, never at import."""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path


def log_dir() -> Path:
    base = os.environ.get("SPINEPLAN_LOG_DIR")
    if base:
        path = Path(base)
    else:
        import platformdirs

        path = Path(platformdirs.user_log_dir("spineplan", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure(verbose: bool = False) -> Path:
    """Console shows warnings (info with -v); the session log file gets everything."""
    path = log_dir() / "spineplan.log"
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    try:
        file_handler = logging.FileHandler(path, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
    except OSError:
        pass
    return path


def write_crash_report(exc: BaseException) -> Path:
    """The traceback goes to a file the user can send us; the console gets one line."""
    path = log_dir() / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                    encoding="utf-8")
    return path
