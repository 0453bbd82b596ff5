"""NIfTI-1/-2 files read here, header and voxels, because ITK quietly mends what is wrong in them.

ITK turns a zero, NaN or infinite pixdim into 1 mm, flips an axis for a negative one, ignores the
sform's scaling, takes a broken quaternion as identity, reads a file with a bad magic as Analyze
(no orientation), zero-fills a truncated or corrupt .nii.gz and reads past a wrong vox_offset.
``read`` parses the header with struct, refuses all of these, reads the (decompressed) file once and
checks it holds exactly vox_offset + the voxels, and returns the voxels with the affine the NIfTI
standard defines (sform where its code is set, else the qform) in LPS millimetres, and warnings for
what is usable but worth knowing.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spine_core.errors import CorruptPixelData, ImplausibleGeometry, UnreadableFile, UnsupportedImage
from spine_core.io.sitk_image import check_dimensions
from spine_core.io.validate import check_extent, check_size, check_spacing

# datatype code -> bytes per voxel (NIfTI-1 table; 1 = DT_BINARY is not supported by ITK either)
DATATYPE_BYTES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8,
                  1280: 8, 1536: 16, 1792: 16, 2048: 32, 2304: 4}
# datatype code -> numpy type of the voxels SpinePlan reads (colour, complex and float128 are refused)
DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8", 1280: "u8"}
# xyzt_units & 7 -> millimetres per unit (0 = unknown, taken as mm as every reader does)
UNIT_MM = {0: 1.0, 1: 1000.0, 2: 1.0, 3: 0.001}
# (header size, fields: name -> (offset, struct format))
_LAYOUT = {
    348: {"dim": (40, "8h"), "datatype": (70, "h"), "pixdim": (76, "8f"), "vox_offset": (108, "f"),
          "scl": (112, "2f"), "units": (123, "B"), "codes": (252, "2h"), "quatern": (256, "6f"),
          "srow": (280, "12f"), "magic": (344, "4s")},
    540: {"magic": (4, "8s"), "datatype": (12, "h"), "dim": (16, "8q"), "pixdim": (104, "8d"),
          "vox_offset": (168, "q"), "scl": (176, "2d"), "codes": (344, "2i"), "quatern": (352, "6d"),
          "srow": (400, "12d"), "units": (500, "i")},
}
_MAGIC = {348: (b"n+1\0",), 540: (b"n+2\0\r\n\x1a\n",)}


@dataclass(frozen=True)
class NiftiHeader:
    size: int                   # 348 (NIfTI-1) or 540 (NIfTI-2)
    endian: str
    fields: dict

    def get(self, name):
        values = self.fields[name]
        return values[0] if len(values) == 1 else values

    @property
    def ndim(self) -> int:
        return int(self.get("dim")[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.get("dim")[1:self.ndim + 1])

    @property
    def data_bytes(self) -> int:
        n = DATATYPE_BYTES[int(self.get("datatype"))]
        for d in self.shape:
            n *= d
        return n


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def read_header(path: Path) -> NiftiHeader:
    try:
        with _open(path) as f:
            raw = f.read(544)
    except (OSError, EOFError, zlib.error) as exc:
        if path.name.lower().endswith(".gz") and not isinstance(exc, gzip.BadGzipFile):
            raise CorruptPixelData(f"'{path.name}' is damaged: its compressed data break at the start ({exc}). "
                                   "Copy it again from the source.") from exc
        raise UnreadableFile(f"'{path.name}' could not be read: it is damaged, truncated or not a NIfTI "
                             "image. Copy it again from the source.") from exc
    for size in (348, 540):
        for endian in "<>":
            if len(raw) >= size and struct.unpack_from(endian + "i", raw, 0)[0] == size:
                fields = {name: struct.unpack_from(endian + fmt, raw, off)
                          for name, (off, fmt) in _LAYOUT[size].items()}
                return NiftiHeader(size, endian, fields)
    raise UnreadableFile(f"'{path.name}' is not a NIfTI image (its first bytes are no NIfTI-1 or NIfTI-2 "
                         "header) or it is truncated. Copy it again from the source.")


def _check_fields(header: NiftiHeader, name: str) -> None:
    magic = header.get("magic")
    if magic not in _MAGIC[header.size]:
        raise UnreadableFile(f"'{name}' is not a valid single-file NIfTI image (its magic is {magic!r}); read as "
                             "Analyze 7.5 it would have no orientation, so left and right could be swapped. "
                             "Convert the original scan to NIfTI again.")
    dims = header.get("dim")
    if not 1 <= dims[0] <= 7 or any(d < 1 for d in dims[1:dims[0] + 1]):
        raise ImplausibleGeometry(f"'{name}' declares {dims[0]} dimensions of sizes {list(dims[1:])}; the header is "
                                  "damaged. Convert the original scan again.")
    if int(header.get("datatype")) not in DATATYPE_BYTES:
        raise UnreadableFile(f"'{name}' declares an unknown voxel type (datatype {header.get('datatype')}); the "
                             "header is damaged. Convert the original scan again.")
    slope, inter = header.get("scl")
    if not np.isfinite(slope) or (slope != 0 and not np.isfinite(inter)):
        raise CorruptPixelData(f"'{name}' has an intensity scaling that is not a number (scl_slope {slope}, "
                               f"scl_inter {inter}); its values cannot be known. Convert the original scan again.")
    minimum = header.size + 4
    vox_offset = header.get("vox_offset")
    if not np.isfinite(vox_offset) or vox_offset < minimum or vox_offset != int(vox_offset):
        raise CorruptPixelData(f"'{name}' says its voxels start at byte {vox_offset:g} (vox_offset); they start after "
                               f"the header, at a whole byte {minimum} or later, else the image is shifted. The "
                               "header is damaged. Convert the original scan again.")


def _gunzip(path: Path) -> bytes:
    """All gzip members of the file; zlib checks each member's CRC and length (gzip.open is slower)."""
    raw = path.read_bytes()
    parts, start = [], 0
    while True:
        inflater = zlib.decompressobj(wbits=31)
        parts.append(inflater.decompress(memoryview(raw)[start:]))
        if not inflater.eof:
            raise EOFError("the compressed stream ends early")
        rest = inflater.unused_data
        if not rest.strip(b"\0"):                  # trailing zeros pad some files
            return b"".join(parts)
        start = len(raw) - len(rest)


def _voxel_bytes(path: Path, header: NiftiHeader) -> bytes | np.ndarray:
    """The voxels' bytes, once the (decompressed) file was found to hold exactly vox_offset + the voxels:
    no truncation, no stray bytes (a wrong dimension or vox_offset would crop or shift the image)."""
    offset = int(header.get("vox_offset"))
    need = offset + header.data_bytes
    if path.name.lower().endswith(".gz"):
        try:
            data = _gunzip(path)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptPixelData(f"'{path.name}' is damaged: its compressed data stop or break before the "
                                   f"{need} bytes its header announces ({exc}). Copy it again from the "
                                   "source.") from exc
        total = len(data)
    else:
        total = path.stat().st_size
    if total < need:
        raise CorruptPixelData(f"'{path.name}' is truncated: it holds {total} bytes of the {need} its header "
                               "announces. Copy it again from the source.")
    if total > need:
        raise CorruptPixelData(f"'{path.name}' holds {total - need} bytes more than its header announces "
                               f"({need}): its dimensions or vox_offset are wrong, so the image would be "
                               "cropped or shifted. Convert the original scan again.")
    if path.name.lower().endswith(".gz"):
        return memoryview(data)[offset:]
    return np.fromfile(path, dtype=np.uint8, count=header.data_bytes, offset=offset)


def _voxels(path: Path, header: NiftiHeader) -> np.ndarray:
    """The voxel array, indexed (i, j, k) like the file, scaled by scl_slope / scl_inter as the standard says."""
    code = int(header.get("datatype"))
    if code not in DTYPES:
        kind = "colour (RGB)" if code in (128, 2304) else "complex or 128-bit"
        raise UnsupportedImage(f"'{path.name}' holds {kind} voxels (NIfTI datatype {code}), not a CT or MR "
                               "scan's intensities. Choose the original grayscale scan.")
    dtype = np.dtype(DTYPES[code]).newbyteorder(header.endian)
    shape = header.shape
    check_dimensions(len([d for d in shape[3:] if d > 1]) + 3 if header.ndim >= 3 else header.ndim,
                     (tuple(shape[:3]) + (1, 1, 1))[:3], 1)
    flat = np.frombuffer(_voxel_bytes(path, header), dtype=dtype, count=int(np.prod(shape)))
    array = flat.reshape((tuple(shape) + (1, 1))[:3], order="F")
    slope, inter = (float(v) for v in header.get("scl"))
    if slope != 0 and (slope != 1 or inter != 0):
        return (array.astype(np.float64) * slope + inter).astype(np.float32)
    native = array.dtype.newbyteorder("=")
    return np.ascontiguousarray(array, dtype=np.float32 if native == np.float64 else native)


def _quaternion_rotation(b: float, c: float, d: float, name: str) -> np.ndarray:
    squares = b * b + c * c + d * d
    if not np.isfinite(squares) or squares > 1 + 1e-4:
        raise ImplausibleGeometry(f"'{name}' has a qform quaternion ({b:.4g}, {c:.4g}, {d:.4g}) that is not a "
                                  "rotation; its orientation is unknown. Convert the original scan again.")
    a = float(np.sqrt(max(1.0 - squares, 0.0)))
    if squares > 1:
        b, c, d = (v / np.sqrt(squares) for v in (b, c, d))
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])


def _pixdim(header: NiftiHeader, name: str, mm: float) -> np.ndarray:
    pixdim = np.array(header.get("pixdim"), dtype=float)
    used = min(header.ndim, 3)
    spacing = np.ones(3)
    spacing[:used] = pixdim[1:used + 1]
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ImplausibleGeometry(f"'{name}' has a voxel size (pixdim) of {' x '.join(f'{v:.4g}' for v in spacing)}; "
                                  "it must be positive numbers (a negative one would mirror the image). The header "
                                  "is damaged. Convert the original scan again.")
    return spacing * mm


def _qform(header: NiftiHeader, spacing: np.ndarray, mm: float, name: str) -> np.ndarray:
    b, c, d, *offset = header.get("quatern")
    qfac = -1.0 if header.get("pixdim")[0] < 0 else 1.0
    affine = np.eye(4)
    affine[:3, :3] = _quaternion_rotation(b, c, d, name) * (spacing * [1, 1, qfac])
    affine[:3, 3] = np.array(offset, dtype=float) * mm
    return affine


def _sform(header: NiftiHeader, mm: float, name: str) -> np.ndarray:
    srow = np.array(header.get("srow"), dtype=float).reshape(3, 4)
    if not np.all(np.isfinite(srow)) or abs(np.linalg.det(srow[:, :3])) < 1e-12:
        what = "singular" if np.all(np.isfinite(srow)) else "not a number"
        raise ImplausibleGeometry(f"'{name}' has a sform (srow_x/y/z) that is {what}; its geometry is unknown. "
                                  "Convert the original scan again.")
    affine = np.eye(4)
    affine[:3] = srow * mm
    return affine


def _differ(a: np.ndarray, b: np.ndarray, spacing: np.ndarray) -> bool:
    """Beyond float32 rounding. A quaternion stores b, c, d only: near a half turn (a of ~0, as in
    a sagittal MR stored slice-first) a = sqrt(1 - b^2 - c^2 - d^2) holds only to ~sqrt(float32 eps),
    ~3e-4 (the writer's own VB2 MR labels read back 2.6e-4 apart); an offset holds to ~1e-4 mm."""
    return (not np.allclose(a[:3, :3], b[:3, :3], atol=1e-3 * float(spacing.max()))
            or not np.allclose(a[:3, 3], b[:3, 3], atol=1e-2))


def _affine(header: NiftiHeader, name: str) -> tuple[np.ndarray, list[str]]:
    """Index -> RAS affine as the standard defines it (sform first), with warnings."""
    mm = UNIT_MM.get(int(header.get("units")) & 7, 1.0)
    spacing = _pixdim(header, name, mm)
    qcode, scode = (int(v) for v in header.get("codes"))
    warnings: list[str] = []
    qform = None
    if qcode > 0:
        try:
            qform = _qform(header, spacing, mm, name)
        except ImplausibleGeometry:
            if scode <= 0:
                raise
            warnings.append("the qform (quaternion) in the header is damaged; the sform was used")
    if scode > 0:
        sform = _sform(header, mm, name)
        sform_spacing = np.linalg.norm(sform[:3, :3], axis=0)
        if not np.allclose(sform_spacing, spacing, rtol=1e-3):
            warnings.append(f"the header's sform gives a voxel size of {' x '.join(f'{v:.4g}' for v in sform_spacing)} "
                            f"mm but pixdim says {' x '.join(f'{v:.4g}' for v in spacing)} mm; the sform was used, as "
                            "the NIfTI standard says")
        if qform is not None and _differ(qform, sform, spacing):
            warnings.append("the header's sform and qform place the image differently; the sform was used, as "
                            "the NIfTI standard says")
        return sform, warnings
    if qform is not None:
        return qform, warnings
    raise ImplausibleGeometry(f"'{name}' has no orientation (both qform_code and sform_code are 0): left/right "
                              "and the position are unknown. Convert the original scan again with its "
                              "orientation (e.g. with dcm2niix from the DICOM series).")


def read(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A .nii / .nii.gz checked and read: (voxels, index -> LPS affine, warnings)."""
    header = read_header(path)
    _check_fields(header, path.name)
    name = f"'{path.name}'"
    check_size(header.shape, DATATYPE_BYTES[int(header.get("datatype"))], name)
    affine, warnings = _affine(header, path.name)
    spacing = check_spacing(np.linalg.norm(affine[:3, :3], axis=0), name)
    check_extent(spacing, (tuple(header.shape) + (1, 1))[:3], name)
    array = _voxels(path, header)
    to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    return array, to_lps @ affine, warnings
