"""Writing a phantom as a study folder: DICOM series, labels NIfTI, centroids JSON.

The whole folder is written under a temporary name beside the target and renamed at the end, so
a folder with that name is always complete (the demo relies on this to reuse a study).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from spine_core.errors import SpineError
from spine_core.io.dicom_writer import DicomOptions, write_dicom_series
from spine_core.io.writers import save_volume
from spine_core.progress import NullProgress, Progress, SubProgress
from spine_core.volume import LabelMap

FORMAT_VERSION = 1
STAMP = "phantom.json"


def dicom_ready(phantom):
    """Image and labels with the slice axis along the DICOM normal (row x column direction).

    Readers sort slices along that normal; a left-handed grid would come back flipped, so it is
    flipped here, for both, before anything is written.
    """
    image, labels = phantom.image, phantom.labels
    if np.linalg.det(image.direction) > 0:
        return image, labels
    n = image.shape[2]
    affine = image.affine.copy()
    affine[:3, 3] = image.index_to_lps([0, 0, n - 1])
    affine[:3, 2] = -affine[:3, 2]
    image = replace(image, array=np.ascontiguousarray(image.array[:, :, ::-1]), affine=affine)
    labels = LabelMap(np.ascontiguousarray(labels.array[:, :, ::-1]), affine, labels.metadata,
                      names=dict(labels.names))
    return image, labels


def write_phantom(phantom, folder, *, dicom: bool = True, nifti_image: bool = False,
                  progress: Progress | None = None) -> dict[str, Path]:
    """Writes ``folder``/dicom/, labels.nii.gz, centroids.json (and image.nii.gz if asked)."""
    progress = progress or NullProgress()
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise SpineError(f"'{folder}' already holds files; choose a new or empty folder for the phantom.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        image, labels = dicom_ready(phantom) if dicom else (phantom.image, phantom.labels)
        if dicom:
            opts = DicomOptions(patient_name="PHANTOM", patient_id="PHANTOM",
                                series_description=f"SpinePlan phantom seed {phantom.options.seed}")
            write_dicom_series(image, tmp / "dicom", opts, SubProgress(progress, 0.0, 0.7))
        if nifti_image:
            save_volume(image, tmp / "image.nii.gz")
        progress.update(0.75, "Writing labels")
        _save_labels_fast(labels, tmp / "labels.nii.gz")
        _write_json(tmp / "centroids.json", centroids_document(phantom))
        _write_json(tmp / STAMP, {"format": FORMAT_VERSION, "levels": phantom.levels,
                                  "options": _jsonable(asdict(phantom.options))})
        if folder.exists():
            folder.rmdir()          # empty (checked above); rename needs the name free
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress.update(1.0, "Phantom written")
    names = {"labels": "labels.nii.gz", "centroids": "centroids.json", "stamp": STAMP}
    if dicom:
        names["dicom"] = "dicom"
    if nifti_image:
        names["image"] = "image.nii.gz"
    return {k: folder / v for k, v in names.items()}


def _save_labels_fast(labels: LabelMap, path: Path) -> None:
    """Like save_labelmap, with light gzip: label maps are mostly zeros and level 1 is 3x faster."""
    import SimpleITK as sitk

    from spine_core.io.sitk_image import volume_to_sitk

    sitk.WriteImage(volume_to_sitk(labels), str(path), useCompression=True, compressionLevel=1)


def centroids_document(phantom) -> dict:
    doc = {"coordinate_system": "LPS", "units": "mm", "vertebrae": phantom.centroid_records()}
    discs = [r for r in phantom.centroid_records(discs=True) if r["id"] > 100]
    if discs:
        doc["discs"] = discs
    return doc


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
