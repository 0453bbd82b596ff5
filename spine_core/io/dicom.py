"""DICOM series discovery, validation and loading.

Headers are read with pydicom (no pixels; `dicom_slices` checks each file's attributes and the
length of its pixel data); pixels with SimpleITK/GDCM, which decodes the compressed transfer
syntaxes and applies RescaleSlope/Intercept. The geometry is computed here from
ImagePositionPatient/ImageOrientationPatient and checked (`dicom_stack`, `validate`), so mixed,
missing or damaged slices, uneven spacing and gantry tilt are detected instead of being silently
averaged away.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from spine_core.errors import (CorruptPixelData, ImplausibleGeometry, ImplausibleValues, MultipleSeries,
                               NoScanFound, SeriesNotFound, UnreadableFile, UnsupportedImage)
from spine_core.io import dicom_stack, validate
from spine_core.io.dicom_slices import _PIXEL_DATA, _Slice, looks_like_dicom, parse_slice, read_dataset, text
from spine_core.io.sitk_image import array_from_sitk, quiet_itk, read_image
from spine_core.progress import NullProgress, Progress
from spine_core.volume import ScanMetadata, Volume

log = logging.getLogger(__name__)

__all__ = ["SeriesInfo", "choose_series", "list_series", "load_series", "read_header", "series_in_files"]


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
    unplaced: int = 0               # images of the series without position or orientation, left out
    unreadable: list[Path] = field(default_factory=list, repr=False)   # DICOM-looking files beside it
    body_part: str = ""             # BodyPartExamined, e.g. "CSPINE"

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
                f"(UID {self.uid or 'none'})")


def _candidate_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_header(path: Path):
    """The DICOM header (no pixels) of a file with a SeriesInstanceUID, else None."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
        return ds if "SeriesInstanceUID" in ds else None
    except Exception:  # noqa: BLE001 - a damaged file fails in many ways; all mean "not a DICOM header"
        return None


def list_series(root: Path, progress: Progress | None = None) -> list[SeriesInfo]:
    """All image series under ``root`` (recursively), largest first."""
    return series_in_files(_candidate_files(Path(root)), progress)


def _new_series(ds, uid: str, first: _Slice) -> SeriesInfo:
    return SeriesInfo(uid=uid, modality=text(ds, "Modality"), description=text(ds, "SeriesDescription"),
                      study_uid=text(ds, "StudyInstanceUID"), rows=first.rows, columns=first.columns,
                      pixel_spacing=first.spacing, orientation=first.direction or (1, 0, 0, 0, 1, 0),
                      patient_id=text(ds, "PatientID"), body_part=text(ds, "BodyPartExamined"))


# Image kinds whose IOD requires ImagePositionPatient (Type 1).
_POSITIONED = {"CT Image Storage", "MR Image Storage", "Enhanced CT Image Storage", "Enhanced MR Image Storage"}
# Modalities whose objects are images (SR, KO, PR, SEG, RTSTRUCT... carry no pixels of their own).
_IMAGE_MODALITIES = {"CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "XA", "RF", "OT"}


def _is_image(ds) -> bool:
    return ("Rows" in ds or "Image Storage" in text(ds, "SOPClassUID.name")
            or text(ds, "Modality") in _IMAGE_MODALITIES)


def series_in_files(files: list[Path], progress: Progress | None = None) -> list[SeriesInfo]:
    """The image series these files hold, largest first; files that are not DICOM images are skipped,
    DICOM files that cannot be read and images without a position are counted (a warning on load)."""
    progress = progress or NullProgress()
    series: dict[str, SeriesInfo] = {}
    unplaced: dict[str, list[Path]] = {}         # series UID -> images without position
    placed_kind: set[Path] = set()               # ... of them, those whose kind always has a position
    unreadable: list[Path] = []
    for n, path in enumerate(files):
        if n % 50 == 0:
            progress.update(n / max(len(files), 1), f"Reading DICOM headers ({n}/{len(files)})")
        ds = read_dataset(path)
        if ds is None or "SeriesInstanceUID" not in ds:
            # Every DICOM object but a DICOMDIR has a series UID: without one, the file is damaged.
            if looks_like_dicom(path) and not (ds is not None and "DirectoryRecordSequence" in ds):
                unreadable.append(path)
            continue
        uid = text(ds, "SeriesInstanceUID")
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            if _PIXEL_DATA in ds:
                unplaced.setdefault(uid, []).append(path)
                if text(ds, "SOPClassUID.name") in _POSITIONED or text(ds, "FrameOfReferenceUID"):
                    placed_kind.add(path)
            elif _is_image(ds):
                unreadable.append(path)             # an image whose header breaks off (a damaged file)
            continue
        piece = parse_slice(ds, path)
        info = series.get(uid) or series.setdefault(uid, _new_series(ds, uid, piece))
        info.slices.append(piece)
    progress.update(1.0, "DICOM headers read")
    # An image without position under a UID of its own is no slice (a dose screen, a secondary capture),
    # unless it is of a kind that always has one (a CT or MR image, one in a frame of reference): damaged.
    unreadable += [p for uid, paths in unplaced.items() if uid not in series for p in paths if p in placed_kind]
    for uid, info in series.items():
        info.unplaced, info.unreadable = len(unplaced.get(uid, [])), unreadable
        _keep_main_plane(info)
    return sorted(series.values(), key=lambda s: s.n_slices, reverse=True)


def _keep_main_plane(info: SeriesInfo) -> None:
    """A reformatted series can carry a reference image in another plane under the same UID (a
    sagittal stack with one coronal image): the volume is the plane most of its images share. An
    image only slightly turned stays, and `dicom_stack.check_consistent` refuses the series."""
    planes: dict[tuple[float, ...], int] = {}
    for s in info.slices:
        if s.direction:
            planes[s.orientation] = planes.get(s.orientation, 0) + 1
    if not planes:
        return
    main = max(planes, key=planes.get)
    reference = next(s for s in info.slices if s.orientation == main)
    info.orientation, info.rows, info.columns = reference.direction, reference.rows, reference.columns
    info.pixel_spacing = reference.spacing
    if len(planes) < 2:
        return
    normal = np.cross(reference.direction[:3], reference.direction[3:])
    kept = [s for s in info.slices if not s.direction or dicom_stack.angle_degrees(
        np.cross(s.direction[:3], s.direction[3:]), normal) <= dicom_stack.OTHER_PLANE_DEGREES]
    info.other_orientation = len(info.slices) - len(kept)
    info.slices = kept


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


def _read_pixels(paths: list[Path], uid: str, as_float: bool) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    if as_float:                     # a fractional or per-slice rescale: GDCM would round it to integers
        reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        with quiet_itk():
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
    pydicom_log = logging.getLogger("pydicom")
    level, pydicom_log.level = pydicom_log.level, logging.CRITICAL   # no decoder tracebacks on the console
    try:
        for p in paths:
            try:
                pydicom.dcmread(p).pixel_array  # noqa: B018 - decoding is the check
            except Exception:  # noqa: BLE001 - any failure marks the culprit
                return p
    finally:
        pydicom_log.level = level
    return None


_PROBLEM_ERRORS = {"geometry": ImplausibleGeometry, "pixels": CorruptPixelData, "values": ImplausibleValues}


def _refuse_damaged(info: SeriesInfo) -> None:
    damaged = [s for s in info.slices if s.problem]
    if damaged:
        first = damaged[0]
        others = f" (and {len(damaged) - 1} more file(s))" if len(damaged) > 1 else ""
        error = _PROBLEM_ERRORS.get(first.problem_kind, UnreadableFile)
        raise error(f"In series {info.uid or '(no series UID)'}, '{first.path.name}' {first.problem}{others}. "
                    "The file is damaged or not a slice of a scan; re-export the series from the scanner or PACS.")


def _rescale_warnings(info: SeriesInfo, slices: list[_Slice], array: np.ndarray) -> list[str]:
    """A CT's stored values become HU only with RescaleIntercept (required on CT images)."""
    missing = [s for s in slices if s.rescale is None]
    if info.modality != "CT" or not missing:
        return []
    if len(missing) < len(slices):
        which = f"'{missing[0].path.name}'" + (f" and {len(missing) - 1} other slice(s)" if len(missing) > 1 else "")
        raise ImplausibleValues(f"In series {info.uid}, {which} {'have' if len(missing) > 1 else 'has'} no "
                                "RescaleIntercept while the others have one: their values would be off by the "
                                "intercept. Re-export the series from the scanner or PACS.")
    if array.size and float(array.min()) >= 0:
        raise ImplausibleValues(f"Series {info.uid} is a CT without RescaleIntercept, and its values "
                                f"({float(array.min()):.0f} to {float(array.max()):.0f}) are stored values, not "
                                "HU (air would read about -1000): every density would be off by about "
                                "1024 HU. Re-export the series with its rescale.")
    return ["the CT has no RescaleIntercept; its values already look like HU (air at "
            f"{float(array.min()):.0f}) and were taken as HU"]


def _series_warnings(info: SeriesInfo) -> list[str]:
    notes = []
    if info.other_orientation:
        notes.append(f"{info.other_orientation} image(s) of the series in another plane (a reference "
                        "image) were left out")
    if info.unplaced:
        notes.append(f"{info.unplaced} image(s) of the series have no position (ImagePositionPatient or "
                        "ImageOrientationPatient) and were left out: the scan may be shorter than acquired")
    if info.unreadable:
        names = ", ".join(p.name for p in info.unreadable[:3]) + (", ..." if len(info.unreadable) > 3 else "")
        notes.append(f"{len(info.unreadable)} DICOM file(s) beside the series could not be used (unreadable, "
                     f"or without a series UID or position) and were left out ({names}); if they belong to this "
                     "series, it is incomplete")
    if not info.uid:
        notes.append("the images have no SeriesInstanceUID; they were taken as one series")
    return notes


def _series_name(info: SeriesInfo) -> str:
    return f"Series {info.uid or '(no series UID)'}"


def _direction(info: SeriesInfo) -> tuple[np.ndarray, list[str]]:
    """The series' in-plane axes and normal, checked: rows and columns unit length and orthogonal."""
    row, col = np.array(info.orientation[:3]), np.array(info.orientation[3:])
    return validate.orthonormal(np.column_stack([row, col, np.cross(row, col)]), _series_name(info),
                                "ImageOrientationPatient")


def _stack_affine(info: SeriesInfo, slices: list[_Slice], direction: np.ndarray) -> np.ndarray:
    """Index -> LPS affine of the sorted stack, every part checked before a pixel is read."""
    name = _series_name(info)
    spacing = validate.check_spacing(info.pixel_spacing, name, "pixel spacing")
    step = (slices[-1].position - slices[0].position) / (len(slices) - 1)
    validate.check_tilt(direction[:, 0], direction[:, 1], step, name)
    validate.check_spacing([np.linalg.norm(step)], name, "slice spacing")
    shape = (info.columns, info.rows, len(slices))
    validate.check_extent([spacing[1], spacing[0], np.linalg.norm(step)], shape, name)
    validate.check_size(shape, max(slices[0].pixel_format[1] // 8, 2), name)
    affine = np.eye(4)
    affine[:3, 0] = direction[:, 0] * spacing[1]
    affine[:3, 1] = direction[:, 1] * spacing[0]
    # The stacking step comes from the positions, so a tilted gantry shows up as a shear.
    affine[:3, 2] = step
    affine[:3, 3] = validate.check_origin(slices[0].position, name)
    return affine


def load_series(info: SeriesInfo, progress: Progress | None = None) -> Volume:
    progress = progress or NullProgress()
    _refuse_damaged(info)
    if info.n_slices < 2:
        raise UnsupportedImage(f"Series {info.uid} is a single 2D image; SpinePlan needs a 3D scan "
                               "(a series of slices). Choose the CT/MR volume series instead.")
    meta = ScanMetadata(modality=info.modality, series_uid=info.uid, study_uid=info.study_uid,
                        description=info.description, source=str(info.slices[0].path.parent),
                        patient_id=info.patient_id, frame_of_reference_uid=info.slices[0].frame_uid,
                        body_part=info.body_part,
                        slice_thickness_mm=float(np.median([s.thickness for s in info.slices])))
    if len(info.slices) == 1:  # one multi-frame (enhanced) object: GDCM knows its geometry
        image, affine = read_image(info.slices[0].path)
        return validate.checked_volume(array_from_sitk(image), affine, replace(meta, source=str(info.slices[0].path)))
    dicom_stack.check_consistent(info.slices, info.uid)
    direction, notes = _direction(info)
    slices, distances = _sorted_slices(info)
    uneven = dicom_stack.check_steps(info.uid, distances)
    affine = _stack_affine(info, slices, direction)
    progress.update(0.1, f"Reading {len(slices)} slices")
    rescales = {s.rescale for s in slices}
    as_float = len(rescales) > 1 or any(r is not None and any(v != int(v) for v in r) for r in rescales)
    array = _read_pixels([s.path for s in slices], info.uid, as_float)
    notes += _rescale_warnings(info, slices, array)
    volume = Volume(array, affine, meta)
    if uneven:
        volume = dicom_stack.resample_uniform(volume, distances)
    volume, tilt = dicom_stack.deshear(volume)
    progress.update(1.0, "Series loaded")
    return validate.checked_volume(volume.array, volume.affine, meta,
                                   uneven + tilt + notes + _series_warnings(info))
