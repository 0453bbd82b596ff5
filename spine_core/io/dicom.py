"""DICOM series discovery, validation and loading.

Headers are read with pydicom (fast, no pixels); pixels with SimpleITK/GDCM, which decodes the
compressed transfer syntaxes and applies RescaleSlope/Intercept. The geometry is computed here
from ImagePositionPatient/ImageOrientationPatient, so missing slices, uneven spacing and gantry
tilt are detected instead of being silently averaged away.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from spine_core.errors import (IncompleteSeries, MultipleSeries, NoScanFound, SeriesNotFound,
                               UnreadableFile, UnsupportedImage)
from spine_core.io.sitk_image import volume_from_sitk
from spine_core.progress import NullProgress, Progress
from spine_core.volume import ScanMetadata, Volume

log = logging.getLogger(__name__)

# Relative tolerance on slice steps before a series counts as unevenly spaced.
_STEP_TOLERANCE = 0.05
# A step this many times the typical one means slices are missing.
_GAP_FACTOR = 1.5
# Gantry tilt below this angle (degrees) is numerical noise, not tilt.
_TILT_DEGREES = 0.5


@dataclass
class _Slice:
    path: Path
    position: np.ndarray
    frames: int = 1
    orientation: tuple[float, ...] = ()


@dataclass
class SeriesInfo:
    uid: str
    modality: str
    description: str
    study_uid: str
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    orientation: tuple[float, ...]
    slices: list[_Slice] = field(default_factory=list, repr=False)
    patient_id: str = field(default="", repr=False)
    other_orientation: int = 0      # images of the series in another plane (reference images), left out

    @property
    def n_slices(self) -> int:
        return sum(s.frames for s in self.slices)

    @property
    def normal(self) -> np.ndarray:
        row, col = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        return np.cross(row, col)

    @property
    def is_axial(self) -> bool:
        return abs(self.normal[2]) > 0.8

    @property
    def slice_spacing(self) -> float:
        positions = sorted(float(s.position @ self.normal) for s in self.slices)
        return float(np.median(np.diff(positions))) if len(positions) > 1 else 0.0

    def summary(self) -> str:
        plane = "axial" if self.is_axial else "non-axial"
        return (f"{self.modality or '?'} {plane} '{self.description or 'no description'}': "
                f"{self.columns} x {self.rows} x {self.n_slices}, "
                f"{self.pixel_spacing[1]:.3g} x {self.pixel_spacing[0]:.3g} x {self.slice_spacing:.3g} mm "
                f"(UID {self.uid})")


def _candidate_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_header(path: Path):
    """The DICOM header (no pixels) of a file with a SeriesInstanceUID, else None."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, KeyError):
        return None
    if "SeriesInstanceUID" not in ds:
        return None
    return ds


def list_series(root: Path, progress: Progress | None = None) -> list[SeriesInfo]:
    """All image series under ``root`` (recursively), largest first."""
    return series_in_files(_candidate_files(Path(root)), progress)


def series_in_files(files: list[Path], progress: Progress | None = None) -> list[SeriesInfo]:
    """The image series these files hold, largest first; files that are not DICOM images are skipped."""
    progress = progress or NullProgress()
    series: dict[str, SeriesInfo] = {}
    for n, path in enumerate(files):
        if n % 50 == 0:
            progress.update(n / max(len(files), 1), f"Reading DICOM headers ({n}/{len(files)})")
        ds = read_header(path)
        if ds is None or "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            continue
        uid = str(ds.SeriesInstanceUID)
        info = series.get(uid)
        if info is None:
            info = series[uid] = SeriesInfo(
                uid=uid, modality=str(ds.get("Modality", "")),
                description=str(ds.get("SeriesDescription", "")),
                study_uid=str(ds.get("StudyInstanceUID", "")),
                rows=int(ds.Rows), columns=int(ds.Columns),
                pixel_spacing=tuple(float(v) for v in ds.get("PixelSpacing", [1.0, 1.0])),
                orientation=tuple(float(v) for v in ds.ImageOrientationPatient),
                patient_id=str(ds.get("PatientID", "")))
        info.slices.append(_Slice(path, np.array([float(v) for v in ds.ImagePositionPatient]),
                                  int(ds.get("NumberOfFrames", 1) or 1),
                                  tuple(round(float(v), 3) for v in ds.ImageOrientationPatient)))
    progress.update(1.0, "DICOM headers read")
    for info in series.values():
        _keep_main_plane(info)
    return sorted(series.values(), key=lambda s: s.n_slices, reverse=True)


def _keep_main_plane(info: SeriesInfo) -> None:
    """A reformatted series can carry a reference image in another plane under the same UID (a
    sagittal stack with one coronal image): the volume is the plane most of its images share."""
    planes: dict[tuple[float, ...], int] = {}
    for s in info.slices:
        planes[s.orientation] = planes.get(s.orientation, 0) + 1
    if len(planes) < 2:
        return
    main = max(planes, key=planes.get)
    info.other_orientation = len(info.slices) - planes[main]
    info.slices = [s for s in info.slices if s.orientation == main]
    info.orientation = main


def choose_series(series: list[SeriesInfo], uid: str | None, root: Path) -> SeriesInfo:
    if not series:
        raise NoScanFound(f"No DICOM images were found in '{root}'. Choose the folder that holds the "
                          "scan's .dcm files (or a NIfTI/NRRD/MHA file).")
    if uid:
        for s in series:
            if s.uid == uid:
                return s
        listing = "\n".join("  " + s.summary() for s in series)
        raise SeriesNotFound(f"Series {uid} is not in '{root}'. It holds:\n{listing}")
    if len(series) == 1:
        return series[0]
    ct_axial = [s for s in series if s.modality == "CT" and s.is_axial and s.n_slices > 1]
    pool = ct_axial or [s for s in series if s.n_slices > 1] or series
    best = max(pool, key=lambda s: s.n_slices)
    ties = [s for s in pool if s.n_slices == best.n_slices]
    listing = "\n".join("  " + s.summary() for s in series)
    if len(ties) > 1:
        raise MultipleSeries(f"'{root}' holds {len(series)} series and two or more are equally good "
                             f"candidates; choose one by its UID:\n{listing}", series)
    log.warning("'%s' holds %d series; using the largest %s series %s", root, len(series),
                "CT axial" if ct_axial else "", best.uid)
    return best


def _sorted_slices(info: SeriesInfo) -> tuple[list[_Slice], np.ndarray]:
    normal = info.normal
    slices = sorted(info.slices, key=lambda s: float(s.position @ normal))
    distances = np.array([float(s.position @ normal) for s in slices])
    return slices, distances


def _check_steps(info: SeriesInfo, distances: np.ndarray) -> list[str]:
    """Raise on missing or duplicate slices; return warnings for uneven spacing."""
    steps = np.diff(distances)
    if np.any(steps < 1e-3):
        dup = int(np.argmax(steps < 1e-3)) + 1
        raise IncompleteSeries(f"Series {info.uid} has two slices at the same position (slice {dup}); "
                               "it may mix two acquisitions. Choose another series or re-export it.")
    typical = float(np.median(steps))
    gaps = np.nonzero(steps > _GAP_FACTOR * typical)[0]
    if len(gaps):
        where = ", ".join(f"after slice {g + 1}" for g in gaps[:5])
        missing = int(round(float(np.sum(steps[gaps] / typical - 1))))
        raise IncompleteSeries(f"Series {info.uid} is missing about {missing} slice(s) ({where}; slices "
                               f"are {typical:.3g} mm apart elsewhere). Re-export the complete series "
                               "from PACS before planning on it.")
    if np.max(np.abs(steps - typical)) > _STEP_TOLERANCE * typical:
        return [f"slice spacing varies from {steps.min():.3g} to {steps.max():.3g} mm; "
                f"resampled to a uniform {typical:.3g} mm"]
    return []


def _read_pixels(paths: list[Path], uid: str) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        bad = _first_unreadable(paths)
        where = f" '{bad}'" if bad else ""
        raise UnreadableFile(f"The pixel data of series {uid} could not be decoded (file{where}); the "
                             "file may be truncated or use an unsupported compression. Re-export the "
                             f"series uncompressed. ({str(exc).strip().splitlines()[-1][:200]})") from exc
    array = sitk.GetArrayFromImage(image)  # (k, j, i)
    return np.ascontiguousarray(compact_dtype(array).transpose(2, 1, 0))


def compact_dtype(array: np.ndarray) -> np.ndarray:
    """int16 where the values fit (GDCM widens rescaled CT to int32), float32 for floats."""
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize > 2 and array.size:
        if array.min() >= -32768 and array.max() <= 32767:
            return array.astype(np.int16)
    return array


def _first_unreadable(paths: list[Path]) -> Path | None:
    for p in paths:
        try:
            ds = pydicom.dcmread(p)
            ds.pixel_array  # noqa: B018 - decoding is the check
        except Exception:  # noqa: BLE001 - any failure marks the culprit
            return p
    return None


def load_series(info: SeriesInfo, progress: Progress | None = None) -> Volume:
    progress = progress or NullProgress()
    if info.n_slices < 2:
        raise UnsupportedImage(f"Series {info.uid} is a single 2D image; SpinePlan needs a 3D scan "
                               "(a series of slices). Choose the CT/MR volume series instead.")
    if len(info.slices) == 1:  # one multi-frame (enhanced) object: GDCM knows its geometry
        return _load_multiframe(info)
    slices, distances = _sorted_slices(info)
    warnings = _check_steps(info, distances)
    progress.update(0.1, f"Reading {len(slices)} slices")
    array = _read_pixels([s.path for s in slices], info.uid)
    row, col = np.array(info.orientation[:3]), np.array(info.orientation[3:])
    affine = np.eye(4)
    affine[:3, 0] = row * info.pixel_spacing[1]
    affine[:3, 1] = col * info.pixel_spacing[0]
    # The stacking step comes from the positions, so a tilted gantry shows up as a shear.
    affine[:3, 2] = (slices[-1].position - slices[0].position) / (len(slices) - 1)
    affine[:3, 3] = slices[0].position
    meta = ScanMetadata(modality=info.modality, series_uid=info.uid, study_uid=info.study_uid,
                        description=info.description, source=str(slices[0].path.parent),
                        patient_id=info.patient_id)
    volume = Volume(array, affine, meta)
    if warnings:
        volume = _resample_uniform(volume, distances)
    volume = _deshear(volume)
    progress.update(1.0, "Series loaded")
    if info.other_orientation:
        warnings = warnings + [f"{info.other_orientation} image(s) of the series in another plane (a reference "
                               "image) were left out"]
    return _with_warnings(volume, warnings)


def _with_warnings(volume: Volume, warnings: list[str]) -> Volume:
    from dataclasses import replace

    for w in warnings:
        log.warning("%s: %s", volume.metadata.series_uid, w)
    meta = replace(volume.metadata, warnings=volume.metadata.warnings + tuple(warnings))
    return replace(volume, metadata=meta)


def _resample_uniform(volume: Volume, distances: np.ndarray) -> Volume:
    """Linear interpolation along the stack onto evenly spaced slices."""
    from dataclasses import replace

    rel = distances - distances[0]
    step = float(np.median(np.diff(rel)))
    n = int(np.floor(rel[-1] / step + 1e-6)) + 1
    targets = np.arange(n) * step
    idx = np.clip(np.searchsorted(rel, targets, side="right") - 1, 0, len(rel) - 2)
    w = ((targets - rel[idx]) / (rel[idx + 1] - rel[idx])).astype(np.float32)
    src = volume.array.astype(np.float32)
    out = src[:, :, idx] * (1 - w) + src[:, :, idx + 1] * w
    affine = volume.affine.copy()
    affine[:3, 2] = affine[:3, 2] / np.linalg.norm(affine[:3, 2]) * step
    return replace(volume, array=out.astype(volume.array.dtype), affine=affine)


def _deshear(volume: Volume) -> Volume:
    """Resample a gantry-tilted (sheared) grid onto an orthogonal one, with a warning."""
    from scipy import ndimage

    a = volume.affine[:3, :3]
    normal = np.cross(a[:, 0], a[:, 1])
    normal /= np.linalg.norm(normal)
    stack = a[:, 2] / np.linalg.norm(a[:, 2])
    tilt = float(np.degrees(np.arccos(np.clip(abs(stack @ normal), -1, 1))))
    if tilt < _TILT_DEGREES:
        return volume
    # Orthogonal grid covering the sheared one: same in-plane axes, slices along the normal.
    step = float(np.linalg.norm(a[:, 2]) * abs(stack @ normal))
    corners = np.array([[i, j, k] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                        for k in (0, volume.shape[2] - 1)], dtype=float)
    lps = volume.index_to_lps(corners)
    new = np.eye(4)
    new[:3, :3] = np.column_stack([a[:, 0], a[:, 1], normal * step])
    new[:3, 3] = volume.affine[:3, 3]
    inv = np.linalg.inv(new)
    idx = lps @ inv[:3, :3].T + inv[:3, 3]
    lo, hi = np.floor(idx.min(axis=0)), np.ceil(idx.max(axis=0))
    new[:3, 3] = new[:3, :3] @ lo + new[:3, 3]
    shape = tuple(int(v) for v in (hi - lo + 1))
    to_old = np.linalg.inv(volume.affine) @ new
    fill = float(volume.array.min())
    out = ndimage.affine_transform(volume.array.astype(np.float32), to_old[:3, :3], to_old[:3, 3],
                                   output_shape=shape, order=1, cval=fill)
    from dataclasses import replace

    resampled = replace(volume, array=out.astype(volume.array.dtype), affine=new)
    return _with_warnings(resampled, [f"gantry tilt of {tilt:.1f} degrees; resampled onto an axial grid"])


def _load_multiframe(info: SeriesInfo) -> Volume:
    try:
        image = sitk.ReadImage(str(info.slices[0].path))
    except RuntimeError as exc:
        raise UnreadableFile(f"'{info.slices[0].path}' could not be decoded: the file may be "
                             "truncated or use an unsupported compression.") from exc
    meta = ScanMetadata(modality=info.modality, series_uid=info.uid, study_uid=info.study_uid,
                        description=info.description, source=str(info.slices[0].path),
                        patient_id=info.patient_id)
    return volume_from_sitk(image, meta)
