"""A result folder's safety: what may be replaced, the marker that says SpinePlan wrote it, the staging
folder it is written in, and the staging folders a killed run left behind.

Every result folder holds ``.spineplan-result.json``: the SpinePlan version, when it was written and
the size and sha256 of every file SpinePlan wrote there. An existing folder is replaced only when it is
empty, or when it holds that marker, nothing else and no file changed since (a user's labels saved over
labels.nii.gz, a plan dropped into meshes/ are never deleted), and then only when asked to.
The staging folder ``.<name>.<pid>-<host>.<random>.partial`` sits beside the result; the next run on
the same machine removes those whose writing process is gone (kill -9, a power cut).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.models.card import sha256_of

MARKER = ".spineplan-result.json"
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
               errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}


class OutputRefused(SpineError):
    """The output folder holds something SpinePlan must not replace, or cannot be written."""


def _listing(folder: Path) -> dict[str, dict]:
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_of(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink() and p.name != MARKER}


def write_marker(folder: Path) -> None:
    """The marker of a finished result: written last, into the staging folder."""
    from spine_core.plan import app_version

    doc = {"written_by": "SpinePlan", "version": app_version(),
           "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": _listing(folder)}
    (folder / MARKER).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def record_in_marker(folder: Path, paths) -> None:
    """Files SpinePlan added to a finished result later (e.g. `spineplan measure`'s measurements), listed
    in its marker so that --overwrite may replace them; a folder without a marker is left as it is."""

    folder = Path(folder)
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = doc["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for path in map(Path, paths):
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    with atomic_path(folder / MARKER) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _names(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def foreign_files(out: Path) -> list[str]:
    """What in the result folder ``out`` SpinePlan did not write, or changed since: [] when it may be
    replaced. Raises OutputRefused when it holds no readable marker."""
    try:
        written = json.loads((out / MARKER).read_text(encoding="utf-8"))["files"]
        if not isinstance(written, dict) or not all(isinstance(e, dict) for e in written.values()):
            raise ValueError("no listing of files")
    except FileNotFoundError:
        raise OutputRefused(f"'{out}' exists and holds other files: it is not a SpinePlan result (no {MARKER}, "
                            "which results of older SpinePlan versions lack too). Choose a new or empty output "
                            "folder.") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputRefused(f"'{out}' holds a damaged SpinePlan marker ({MARKER}), so SpinePlan cannot tell its "
                            "files from yours; choose a new or empty output folder.") from None
    foreign = []
    listed_dirs = {parent.as_posix() for name in written for parent in Path(name).parents}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if name == MARKER or (path.is_dir() and not path.is_symlink() and name in listed_dirs):
            continue
        entry = written.get(name)
        if entry is None or path.is_symlink() or not path.is_file():
            foreign.append(name)
        elif path.stat().st_size != entry.get("size") or sha256_of(path) != entry.get("sha256"):
            foreign.append(f"{name} (changed since SpinePlan wrote it)")
    return foreign


def check_outdir(out: Path, overwrite: bool = False) -> None:
    """A new or empty folder is filled; an earlier SpinePlan result is replaced only with ``overwrite``
    and only when it holds nothing SpinePlan did not write; anything else is refused."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise OutputRefused(f"'{out}' is a file, not a folder; choose a new or empty output folder.")
    if not any(out.iterdir()):
        return
    foreign = foreign_files(out)
    if foreign:
        raise OutputRefused(f"'{out}' holds an earlier SpinePlan result with files SpinePlan did not write: "
                            f"{_names(foreign)}. Move them out of the folder, or choose a new output folder.")
    if not overwrite:
        raise OutputRefused(f"'{out}' holds an earlier SpinePlan result; pass --overwrite to replace it, or "
                            "choose a new output folder.")


@contextlib.contextmanager
def writing_to(out: Path):
    """An OSError that says ``out`` cannot be written there (no permission, read-only, full disk, a file
    where a folder should be) becomes an OutputRefused that says so; others pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        raise OutputRefused(f"Cannot write the result to '{out}' ({exc.strerror or exc}{where}); choose a "
                            "writable output folder.") from exc


def _writer() -> str:
    """This process as staging names carry it: pid and a short hash of the host name (a result folder on
    a share may be written from other machines, whose processes this one cannot see)."""
    import hashlib
    import socket

    return f"{os.getpid()}-{hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]}"


def _staging_pid(path: Path, out: Path) -> int | None:
    """The pid of the staging folder's writer when it ran on this machine, else None."""
    pid, _, host = path.name[len(out.name) + 2:-len(".partial")].split(".", 1)[0].partition("-")
    return int(pid) if pid.isdigit() and host == _writer().partition("-")[2] else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process
        return True
    return True


def clean_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders of ``out`` whose writing process (on this machine) is gone; returns
    them."""
    removed = []
    if not out.parent.is_dir():
        return removed
    for path in out.parent.iterdir():
        if not (path.name.startswith(f".{out.name}.") and path.name.endswith(".partial")):
            continue
        pid = _staging_pid(path, out)
        if pid is not None and path.is_dir() and not path.is_symlink() and not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def staging_folder(out: Path):
    """A new, empty staging folder beside ``out`` named after this process; removed on the way out
    (an exception, a cancel, SIGTERM turned into an exception), whatever happened."""
    clean_stale_staging(out)
    with writing_to(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_writer()}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def uninterrupted():
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done: an exception raised between moving the
    earlier result aside and renaming the new one into place would lose both."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
