"""Writers. Every file is written to a temporary name in the target folder, then renamed, so a
crash or full disk never leaves a half-written file where a good one was."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import SimpleITK as sitk

from spine_core.atomic import atomic_path
from spine_core.volume import LabelMap, Volume


def replace_folder(staging, folder) -> None:
    """Rename a fully written ``staging`` folder to ``folder``; an existing one is moved aside
    first and removed after, and put back if the rename fails: never half a result."""
    import shutil

    staging, folder = Path(staging), Path(folder)
    backup = None
    if folder.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, backup / folder.name)
    try:
        os.replace(staging, folder)
    except OSError:
        if backup is not None:
            os.replace(backup / folder.name, folder)
        raise
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def staged_folder(folder):
    """A hidden sibling of ``folder`` to write its files into, renamed into place (``replace_folder``) when
    the block ends without an error and removed in any case: a reader sees the old folder or the new one."""
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        yield staging
        replace_folder(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def save_volume(volume: Volume, path) -> Path:
    from spine_core.io.sitk_image import volume_to_sitk

    path = Path(path)
    image = volume_to_sitk(volume)
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return path


def save_labelmap(labels: LabelMap, path) -> Path:
    """Label maps keep the grid of the scan they were made on (same shape and affine)."""
    return save_volume(labels, path)
