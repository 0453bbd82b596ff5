"""Logging setup, installed by entry points, never at import. Where logs and crash reports live:
spine_core.workflows.crash (re-exported here for the entry points)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from spine_core.workflows.crash import log_dir, write_crash_report

__all__ = ["configure", "log_dir", "write_crash_report"]


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
