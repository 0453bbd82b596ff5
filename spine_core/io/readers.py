"""``load_scan``: every scan a clinician brings loads correctly or fails with an actionable message."""
from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from spine_core.errors import (GridMismatch, InputNotFound, ModalityMismatch, NoScanFound,
                               UnreadableFile, UnsafeInput, UnsupportedImage)
from spine_core.io import dicom, metaio, nifti, validate
from spine_core.io.sitk_image import array_from_sitk, read_image
from spine_core.labels import label_names
from spine_core.progress import NullProgress, Progress
from spine_core.volume import LabelMap, ScanMetadata, Volume

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


# MetaImage's Modality values (ITK passes them on as they are) -> DICOM's
_METAIMAGE_MODALITY = {"MET_MOD_CT": "CT", "MET_MOD_MR": "MR", "MET_MOD_NM": "NM", "MET_MOD_US": "US",
                       "MET_MOD_OTHER": "", "MET_MOD_UNKNOWN": ""}


def image_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _read_image_file(path: Path) -> Volume:
    """NIfTI (read by nifti.py) or NRRD, MHA/MHD (header checked by metaio.py, read by ITK once its size and
    geometry passed); the values checked last (validate)."""
    meta = ScanMetadata(source=str(path), description=path.name)
    if image_suffix(path) in (".nii", ".nii.gz"):
        array, affine, warnings = nifti.read(path)
        return validate.checked_volume(array, affine, meta, warnings)
    warnings = metaio.inspect(path)
    image, affine = read_image(path)
    modality = image.GetMetaData("Modality") if image.HasMetaDataKey("Modality") else ""
    modality = _METAIMAGE_MODALITY.get(modality, modality)
    return validate.checked_volume(array_from_sitk(image), affine, replace(meta, modality=modality), warnings)


# A zip of a patient's DICOMs is extracted only within these limits (a zip bomb is refused).
ZIP_MAX_BYTES = 8 * 1024 ** 3
ZIP_MAX_MEMBERS = 100_000
ZIP_MAX_RATIO = 200.0
# What a damaged, encrypted or exotic archive raises in zipfile (RuntimeError: a password is needed).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError, zlib.error)


@contextmanager
def extracted_zip(path: Path):
    """The zip's members in a temporary folder that is removed on leaving, whatever happens."""
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise UnreadableFile(f"'{path.name}' is not a readable zip archive ({exc}). Copy it again.") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        packed = max(sum(m.compress_size for m in members), 1)
        if len(members) > ZIP_MAX_MEMBERS or total > ZIP_MAX_BYTES or total / packed > ZIP_MAX_RATIO:
            raise UnsupportedImage(f"'{path.name}' would unpack to {len(members)} files, {total / 1024 ** 3:.1f} GiB "
                                   f"(ratio {total / packed:.0f}:1), beyond what a scan holds; unzip it yourself "
                                   "and open the folder if it really is a scan.")
        target = Path(tempfile.mkdtemp(prefix="spineplan-zip-"))
        try:
            for member in members:
                # Never follow paths out of the extraction folder, and never leave a member out unsaid.
                dest = (target / member.filename).resolve()
                if not dest.is_relative_to(target.resolve()):
                    raise UnsafeInput(f"'{path.name}' holds '{member.filename}', a file that would unpack outside "
                                      "the archive's folder. SpinePlan does not open such archives; unzip the "
                                      "scan's files yourself and open their folder.")
                try:
                    archive.extract(member, target)
                except _ZIP_ERRORS as exc:
                    raise UnreadableFile(f"'{path.name}' is damaged ({member.filename}: {exc}). "
                                         "Copy it again.") from exc
            yield target
        finally:
            shutil.rmtree(target, ignore_errors=True)


def _image_files_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and image_suffix(p) in IMAGE_SUFFIXES]


def load_scan(path, series: str | None = None, progress: Progress | None = None,
              expect_modality: str | None = None) -> Volume:
    """Load a DICOM folder/file/zip, NIfTI, NRRD or MHA/MHD as a Volume in LPS.

    Several DICOM series: ``series`` chooses by UID; otherwise the largest CT axial series is
    taken with a warning, and equally good candidates raise MultipleSeries with the listing.
    ``expect_modality`` turns a modality mismatch into a warning on the volume.
    """
    progress = progress or NullProgress()
    path = Path(path).expanduser()
    if not path.exists():
        raise InputNotFound(f"'{path}' does not exist. Check the path, or that the drive is mounted.")
    if path.is_file() and image_suffix(path) == ".zip":
        with extracted_zip(path) as folder:       # the volume is in memory before the copy goes
            return load_scan(folder, series, progress, expect_modality)
    if path.is_file() and image_suffix(path) in IMAGE_SUFFIXES:
        volume = _read_image_file(path)
    else:
        if path.is_dir() and not any(path.iterdir()):
            raise NoScanFound(f"The folder '{path}' is empty. Choose the folder that holds the scan.")
        all_series = dicom.list_series(path, progress)
        if not all_series:
            images = _image_files_in(path) if path.is_dir() else []
            if len(images) == 1:
                return load_scan(images[0], series, progress, expect_modality)
            kind = "file" if path.is_file() else "folder"
            raise NoScanFound(f"No DICOM, NIfTI, NRRD or MHA image was found in the {kind} '{path}'. "
                              "Choose the scan's folder or file.")
        chosen = dicom.choose_series(all_series, series, path)
        volume = dicom.load_series(chosen, progress)
        if len(all_series) > 1 and not series:
            volume = _warn(volume, f"input holds {len(all_series)} series; loaded {chosen.summary()}")
    if expect_modality:
        volume = check_modality(volume, expect_modality, strict=False)
    return volume


def _warn(volume: Volume, message: str) -> Volume:
    log.warning(message)
    return replace(volume, metadata=replace(volume.metadata,
                                            warnings=volume.metadata.warnings + (message,)))


def check_modality(volume: Volume, expected: str, strict: bool = True) -> Volume:
    modality = volume.metadata.modality
    if not modality or modality == expected:
        return volume
    message = (f"this is a {modality} scan but {expected} is expected; results made for {expected} "
               "will not be reliable on it")
    if strict:
        raise ModalityMismatch(message[0].upper() + message[1:] + f". Choose a {expected} series.")
    return _warn(volume, message)


def load_labels(path, grid: Volume | None = None) -> LabelMap:
    """A label map file; with ``grid`` it must share that grid (shape and affine)."""
    volume = load_scan(path)
    array = volume.array
    if not np.issubdtype(array.dtype, np.integer):
        rounded = np.rint(array)
        if not np.allclose(rounded, array):
            raise UnsupportedImage(f"'{path}' holds non-integer values; it is an image, not a label map.")
        array = rounded
    array = array.astype(np.int16 if array.max() < 32768 else np.int32)
    labels = LabelMap(array, volume.affine, volume.metadata, names=label_names(np.unique(array)))
    if grid is not None and not labels.same_grid(grid, atol_mm=1e-2):
        raise GridMismatch(f"The label map '{path}' is not on the scan's grid (shape {labels.shape} vs "
                           f"{grid.shape}). Use labels made for this scan.")
    return labels


def scan_listing(path) -> list[dicom.SeriesInfo]:
    path = Path(path)
    if path.is_file() and image_suffix(path) == ".zip":
        with extracted_zip(path) as folder:
            return dicom.list_series(folder)
    return dicom.list_series(path) if path.exists() else []
