"""One DICOM file's header as a slice of a series, every attribute the volume depends on checked.

GDCM mends what is wrong: it zero-fills a short PixelData, crops or pads pixels to Rows x Columns,
takes a missing PixelSpacing as 1 mm. Here each file's Rows, Columns, PixelSpacing, position,
orientation, pixel format, rescale and the length of its PixelData are read with pydicom (no pixels
decoded) and what is wrong is kept as the slice's ``problem``, so listing a folder never fails on one
bad file and loading its series says which file and why.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian)

_NATIVE = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010


class _Problem(Exception):
    """What is wrong with one file; ``kind`` names the SpineError it becomes (see dicom._refuse_damaged)."""

    def __init__(self, message: str, kind: str = "header"):
        super().__init__(message)
        self.kind = kind


@dataclass
class _Slice:
    path: Path
    position: np.ndarray
    frames: int = 1
    orientation: tuple[float, ...] = ()      # rounded to 3 decimals: the plane, for grouping
    direction: tuple[float, ...] = ()        # ImageOrientationPatient as written
    rows: int = 0
    columns: int = 0
    spacing: tuple[float, float] = (0.0, 0.0)   # PixelSpacing: between rows, between columns
    thickness: float = 0.0                   # SliceThickness (mm), 0 where absent or unreadable
    frame_uid: str = ""
    study_uid: str = ""
    pixel_format: tuple = ()                 # samples, bits allocated, pixel representation
    rescale: tuple[float, float] | None = None   # slope, intercept; None where the file has none
    problem: str = field(default="", repr=False)
    problem_kind: str = field(default="", repr=False)   # header, geometry, pixels or values


def looks_like_dicom(path: Path) -> bool:
    """A DICOM file by its name or its magic: if it cannot be read, the user should hear of it."""
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_dataset(path: Path):
    """Header and the PixelData element's length and place (its value not read), or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, defer_size=1024, force=False)
        except Exception:  # noqa: BLE001 - a damaged file fails in many ways; all mean "not readable"
            return None


def _numbers(ds, keyword: str, count: int) -> tuple[float, ...]:
    if keyword not in ds:
        raise _Problem(f"has no {keyword}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = ds[keyword].value
            values = [value] if isinstance(value, (str, bytes, float, int)) else list(value)
            numbers = tuple(float(v) for v in values)
        except Exception:  # noqa: BLE001 - pydicom's conversion of a damaged value
            raise _Problem(f"has an unreadable or non-numeric {keyword}") from None
    if len(numbers) != count:
        raise _Problem(f"has {len(numbers)} value(s) in {keyword} where {count} belong")
    if not all(np.isfinite(numbers)):
        raise _Problem(f"has {keyword} {', '.join(map(str, numbers))}, which is not all numbers", "geometry")
    return numbers


def _optional_number(ds, keyword: str) -> float:
    """A positive single number, 0 where absent or damaged (for attributes nothing depends on for geometry)."""
    try:
        value = _numbers(ds, keyword, 1)[0]
    except _Problem:
        return 0.0
    return value if value > 0 else 0.0


def _integer(ds, keyword: str, default: int | None = None, low: int = 1) -> int:
    try:
        value = ds[keyword].value if keyword in ds else None
        value = None if value is None or value == "" else int(value)
    except Exception:  # noqa: BLE001 - pydicom's conversion of a damaged value
        raise _Problem(f"has an unreadable or fractional {keyword}") from None
    if value is None:
        if default is None:
            raise _Problem(f"has no {keyword}")
        return default
    if value < low:
        raise _Problem(f"has {keyword} {value}")
    return value


def text(ds, keyword: str) -> str:
    """A text attribute ('SOPClassUID.name' for the UID's name), '' where absent or damaged."""
    keyword, _, attribute = keyword.partition(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                # pydicom's notes on invalid values
        try:
            value = ds.get(keyword, "") or ""
            return str(getattr(value, attribute, "") if attribute else value)
        except Exception:  # noqa: BLE001 - a damaged text value reads as none
            return ""


def _pixel_bytes(ds, path: Path, rows: int, columns: int, frames: int, pixel_format: tuple) -> None:
    """A native (uncompressed) PixelData must hold exactly Rows x Columns x samples x frames."""
    element = ds.get_item(_PIXEL_DATA, keep_deferred=True) if _PIXEL_DATA in ds else None
    if element is None:
        raise _Problem("has no pixel data", "pixels")
    try:
        syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ImplicitVRLittleEndian))
    except Exception:  # noqa: BLE001 - a damaged UID: GDCM's decoder will say what it makes of it
        return
    length = getattr(element, "length", None)
    if length is None:
        value = element.value
        length = _UNDEFINED if isinstance(value, (list, tuple)) or value is None else len(value)
    if syntax not in _NATIVE or length == _UNDEFINED:
        return                                           # encapsulated: GDCM's decoder checks it
    samples, bits, _ = pixel_format
    expected = (rows * columns * samples * frames * bits + 7) // 8
    if length not in (expected, expected + 1):
        raise _Problem(f"holds {length} bytes of pixel data where {rows} rows x {columns} columns x {samples} "
                       f"sample(s) x {frames} frame(s) of {bits} bits need {expected}", "pixels")
    start = getattr(element, "value_tell", None)
    if syntax != DeflatedExplicitVRLittleEndian and start is not None and start + length > os.path.getsize(path):
        raise _Problem(f"is truncated: its pixel data stop {start + length - os.path.getsize(path)} bytes short",
                       "pixels")


def _rescale(ds) -> tuple[float, float] | None:
    if "RescaleIntercept" not in ds and "RescaleSlope" not in ds:
        return None
    slope = _numbers(ds, "RescaleSlope", 1)[0] if "RescaleSlope" in ds else 1.0
    intercept = _numbers(ds, "RescaleIntercept", 1)[0] if "RescaleIntercept" in ds else 0.0
    if slope == 0:
        raise _Problem("has a RescaleSlope of 0", "values")
    if "RescaleIntercept" not in ds:
        return None
    return slope, intercept


def parse_slice(ds, path: Path) -> _Slice:
    """The slice a file with ImagePositionPatient and ImageOrientationPatient contributes."""
    try:
        position = np.array(_numbers(ds, "ImagePositionPatient", 3))
    except _Problem as exc:
        return _Slice(path, np.zeros(3), problem=str(exc), problem_kind=exc.kind)
    out = _Slice(path, position)
    try:
        out.direction = _numbers(ds, "ImageOrientationPatient", 6)
        out.orientation = tuple(round(v, 3) for v in out.direction)
        out.rows, out.columns = _integer(ds, "Rows"), _integer(ds, "Columns")
        out.frames = _integer(ds, "NumberOfFrames", 1)
        out.spacing = _numbers(ds, "PixelSpacing", 2)
        if min(out.spacing) <= 0:
            raise _Problem(f"has a PixelSpacing of {out.spacing[0]:g} x {out.spacing[1]:g} mm; it must be positive",
                           "geometry")
        bits = _integer(ds, "BitsAllocated")
        if bits not in (8, 16, 32, 64):
            raise _Problem(f"has BitsAllocated {bits}, which no CT or MR image uses")
        out.pixel_format = (_integer(ds, "SamplesPerPixel", 1), bits, _integer(ds, "PixelRepresentation", 0, low=0))
        out.rescale = _rescale(ds)
        out.frame_uid, out.study_uid = text(ds, "FrameOfReferenceUID"), text(ds, "StudyInstanceUID")
        out.thickness = _optional_number(ds, "SliceThickness")
        _pixel_bytes(ds, path, out.rows, out.columns, out.frames, out.pixel_format)
    except _Problem as exc:
        out.problem, out.problem_kind = str(exc), exc.kind
    return out
