"""The one gate every reader passes before a scan becomes a Volume: size, geometry and values.

`dicom.py` (DICOM series) and `readers.py` (NIfTI, NRRD, MHA/MHD) call these checks; the format
modules (`nifti.py`, `metaio.py`, `dicom_slices.py`) check what only their headers show. Nothing here
reads a file. A failure raises a SpineError subclass whose message says what is wrong and what to
do (the CLI exits 2); what is usable but worth knowing comes back as warnings for the Volume's
metadata. Nothing is repaired silently: the only change made here is making direction cosines
exactly orthonormal when they are off by less than TOLERANCE (header decimals), and beyond ROUNDING
that is a warning.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from spine_core.errors import ImplausibleGeometry, ImplausibleValues, ScanTooLarge
from spine_core.volume import ScanMetadata, Volume

log = logging.getLogger(__name__)

# Refused before anything is allocated: no scan of a patient is this large.
MAX_VOXELS = 2_000_000_000
MAX_BYTES = 8 * 1024 ** 3
# A voxel edge outside this range is a units or header error, not a scanner setting.
SPACING_MM = (0.01, 100.0)
# No axis of a patient scan is longer than this, and no origin this far from the scanner.
MAX_EXTENT_MM = 5000.0
MAX_ORIGIN_MM = 1e5
# Direction cosines off a rotation by up to ROUNDING are the decimals of the header (corrected
# quietly); up to TOLERANCE corrected with a warning; beyond, refused.
ROUNDING, TOLERANCE = 1e-3, 1e-2
# Gantries tilt up to about 30 degrees; a stack sheared further is damaged positions.
MAX_TILT_DEGREES = 45.0
# HU a CT can hold: padding down to -32768 plus the intercept, metal on the extended scale.
CT_HU = (-34_000.0, 70_000.0)
# Any other modality (MR, or unknown): beyond this the scaling in the header is wrong.
MAX_ABS_VALUE = 1e7

_REEXPORT = "Export the scan again from the scanner or PACS"


def _mm(values) -> str:
    return " x ".join(f"{v:.4g}" for v in np.asarray(values, dtype=float).ravel())


def check_size(shape, bytes_per_voxel: int, name: str) -> None:
    """Refuse a declared size before a single voxel is allocated."""
    dims = [int(s) for s in shape]
    if not dims or any(s < 1 for s in dims):
        raise ImplausibleGeometry(f"{name} declares a size of {' x '.join(map(str, dims))} voxels; every axis "
                                  f"needs at least one voxel. The header is damaged. {_REEXPORT}.")
    voxels = 1
    for s in dims:
        voxels *= s
    nbytes = voxels * max(int(bytes_per_voxel), 1)
    if voxels > MAX_VOXELS or nbytes > MAX_BYTES:
        raise ScanTooLarge(f"{name} declares {' x '.join(map(str, dims))} voxels ({voxels:,} voxels, "
                           f"{nbytes / 1024 ** 3:,.1f} GiB); SpinePlan loads at most {MAX_VOXELS / 1e9:.0f} billion "
                           f"voxels and {MAX_BYTES // 1024 ** 3} GiB. If the scan really is that large, crop or "
                           "downsample it first; otherwise its header is damaged.")


def check_spacing(spacing, name: str, what: str = "voxel size") -> np.ndarray:
    spacing = np.asarray(spacing, dtype=float)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ImplausibleGeometry(f"{name} has a {what} of {_mm(spacing)} mm; it must be positive numbers. "
                                  f"The header is damaged and measurements would be wrong. {_REEXPORT}.")
    lo, hi = SPACING_MM
    if np.any(spacing < lo) or np.any(spacing > hi):
        raise ImplausibleGeometry(f"{name} has a {what} of {_mm(spacing)} mm, outside what a patient scan "
                                  f"has ({lo:g} to {hi:g} mm): the header's spacing or units are wrong. "
                                  f"{_REEXPORT}.")
    return spacing


def check_extent(spacing, shape, name: str) -> None:
    extent = np.asarray(spacing, dtype=float) * np.asarray(shape, dtype=float)
    if np.any(extent > MAX_EXTENT_MM):
        raise ImplausibleGeometry(f"{name} would be {_mm(extent)} mm long ({' x '.join(map(str, shape))} "
                                  f"voxels of {_mm(spacing)} mm); no patient scan exceeds {MAX_EXTENT_MM / 1000:g} m. "
                                  f"Its size or spacing in the header is wrong. {_REEXPORT}.")


def check_origin(origin, name: str) -> np.ndarray:
    origin = np.asarray(origin, dtype=float)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)) or np.any(np.abs(origin) > MAX_ORIGIN_MM):
        raise ImplausibleGeometry(f"{name} has its first voxel at {_mm(origin)} mm, which is not a position "
                                  f"in a scanner. The header's position is damaged. {_REEXPORT}.")
    return origin


def orthonormal(direction, name: str, what: str = "orientation") -> tuple[np.ndarray, list[str]]:
    """The nearest rotation (or mirrored rotation) to ``direction``, whose columns are axis directions."""
    d = np.asarray(direction, dtype=float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise ImplausibleGeometry(f"{name} has no valid {what} (direction cosines {_mm(d)}). "
                                  f"The header is damaged. {_REEXPORT}.")
    lengths = np.linalg.norm(d, axis=0)
    gram = (d / np.where(lengths > 0, lengths, 1)).T @ (d / np.where(lengths > 0, lengths, 1))
    error = float(max(np.max(np.abs(lengths - 1)), np.max(np.abs(gram - np.eye(3)))))
    if error > TOLERANCE:
        raise ImplausibleGeometry(f"{name} has an {what} that is not a rotation: its axes have lengths "
                                  f"{_mm(lengths)} and cosines {gram[0, 1]:.3g}, {gram[0, 2]:.3g}, {gram[1, 2]:.3g} "
                                  "between them (1 and 0 expected). The header is damaged or sheared; "
                                  f"SpinePlan will not guess the geometry. {_REEXPORT}.")
    if error <= 1e-9:
        return d, []
    u, _, vt = np.linalg.svd(d)
    warnings = [] if error <= ROUNDING else [
        f"the {what} in the header is off a rotation by {error:.2g} (axes not quite orthogonal or of unit "
        "length); it was made orthonormal, which moves a voxel 10 cm from the origin by up to "
        f"{100 * error:.2g} mm"]
    return u @ vt, warnings


def check_affine(affine, shape, name: str) -> tuple[np.ndarray, list[str]]:
    """Spacing, orientation, origin and extent of an index-to-LPS affine; returns it orthonormalised."""
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ImplausibleGeometry(f"{name} has a geometry with missing or non-numeric values (NaN or "
                                  f"infinity). The header is damaged. {_REEXPORT}.")
    columns = affine[:3, :3]
    spacing = check_spacing(np.linalg.norm(columns, axis=0), name)
    check_extent(spacing, shape, name)
    direction, warnings = orthonormal(columns / spacing, name)
    out = np.eye(4)
    out[:3, :3] = direction * spacing
    out[:3, 3] = check_origin(affine[:3, 3], name)
    return out, warnings


def check_tilt(row, col, step, name: str) -> float:
    """Angle (degrees) between a slice stack's step and the slices' normal; refuses a stack in the plane."""
    step = np.asarray(step, dtype=float)
    length = float(np.linalg.norm(step))
    if not np.isfinite(length) or length <= 0:
        raise ImplausibleGeometry(f"{name}: the slices have no distinct positions. {_REEXPORT}.")
    normal = np.cross(row, col)
    tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / length, 0, 1))))
    if tilt > MAX_TILT_DEGREES:
        raise ImplausibleGeometry(f"{name}: the slices are stacked {tilt:.0f} degrees away from their normal "
                                  "(a gantry tilts 30 degrees at most); the slice positions or orientation "
                                  f"are damaged. {_REEXPORT}.")
    return tilt


def check_values(array: np.ndarray, modality: str, name: str) -> list[str]:
    """Values a scan of ``modality`` can hold; warnings for values that are possible but suspicious."""
    if array.size == 0:
        return []
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImplausibleValues(f"{name} holds {array.dtype} voxels (e.g. complex numbers), not the intensities "
                                "of a CT or MR scan. Choose the magnitude image or the original series.")
    if np.issubdtype(array.dtype, np.floating):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ImplausibleValues(f"{name} holds {bad} voxel(s) that are not numbers (NaN or infinity); "
                                    "SpinePlan cannot measure on them. Export the scan again, or replace those "
                                    "voxels in the software that made it.")
    lo, hi = float(array.min()), float(array.max())
    if modality == "CT":
        if lo < CT_HU[0] or hi > CT_HU[1]:
            raise ImplausibleValues(f"{name} is a CT with values from {lo:.4g} to {hi:.4g} HU; a CT holds about "
                                    "-1024 to +3071 HU (up to about +30,000 with metal). The rescale (slope and "
                                    f"intercept) in the header is wrong. {_REEXPORT}.")
        if lo >= 0:
            return ["no voxel of this CT is below 0 HU, yet air reads about -1000 HU: the values may lack their "
                    "rescale (RescaleIntercept) and be off by about 1024 HU; check them before trusting densities"]
        return []
    if max(abs(lo), abs(hi)) > MAX_ABS_VALUE:
        raise ImplausibleValues(f"{name} holds values from {lo:.4g} to {hi:.4g}, beyond any scanner's range: the "
                                f"scaling (slope and intercept) in the header is wrong. {_REEXPORT}.")
    return []


def scan_name(metadata: ScanMetadata) -> str:
    """How messages name a scan: 'Series <uid>' for DICOM, the quoted file name otherwise."""
    if metadata.series_uid:
        return f"Series {metadata.series_uid}"
    return f"'{Path(metadata.source).name}'" if metadata.source else "The scan"


def checked_volume(array: np.ndarray, affine, metadata: ScanMetadata, warnings=()) -> Volume:
    """The Volume a reader returns: geometry and values checked, every warning on its metadata."""
    name = scan_name(metadata)
    affine, geometry_warnings = check_affine(affine, array.shape, name)
    new = []
    for warning in [*warnings, *geometry_warnings, *check_values(array, metadata.modality, name)]:
        if warning not in metadata.warnings and warning not in new:
            log.warning("%s: %s", name, warning)
            new.append(warning)
    metadata = replace(metadata, warnings=metadata.warnings + tuple(new))
    return Volume(array, affine, metadata)
