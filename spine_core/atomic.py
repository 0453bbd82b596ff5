"""Atomic file writes: a temporary name beside the target, renamed over it on success. Apart from the
writers (spine_core.io) so that model cards can be saved where the imaging stack is absent (training
on a GPU host)."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target, suffix: str = ""):
    """Yields a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or "".join(target.suffixes),
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes owner-only files; results must be readable as any other file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
