"""MHA/MHD (MetaImage) and NRRD/NHDR headers read here before ITK sees them.

Two things ITK does not guard: a header may name any file as its data (``ElementDataFile =
/etc/passwd``, ``data file: /dev/zero``), and a truncated or corrupt zlib/gzip stream is zero-filled.
``inspect`` allows data files only beside the header (same folder or below, after following links)
and only regular files, and checks that the data hold exactly the bytes the header announces.
"""
from __future__ import annotations

import bz2
import gzip
import math
import os
import re
import stat
import zlib
from pathlib import Path

from spine_core.errors import CorruptPixelData, ImplausibleGeometry, UnreadableFile, UnsafeInput
from spine_core.io.validate import check_size

_HEADER_LIMIT = 1 << 20          # a text header longer than 1 MiB is not a header
_MAX_FILES = 100_000
_CHUNK = 1 << 20
# MetaImage ElementType -> bytes on disk
_MET_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}
_NRRD_BYTES = [(1, r"(u?char|(un)?signed char|u?int8(_t)?|uchar)"),
               (2, r"((unsigned |signed )?short( int)?|ushort|u?int16(_t)?)"),
               (4, r"((unsigned |signed )?int|uint|u?int32(_t)?|float)"),
               (8, r"((unsigned |signed )?long long( int)?|u?longlong|u?int64(_t)?|double)")]


def _read_text_header(path: Path, is_end) -> tuple[list[str], int]:
    """Header lines up to and including the line ``is_end`` accepts, and the byte offset after it."""
    lines, offset = [], 0
    with open(path, "rb") as f:
        while offset < _HEADER_LIMIT:
            raw = f.readline(_HEADER_LIMIT)
            if not raw:
                break
            offset += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            lines.append(line)
            if is_end(line):
                return lines, offset
    return lines, -1


def _safe_file(header: Path, name: str) -> Path:
    folder = header.parent.resolve()
    target = (header.parent / name.strip()).resolve()
    if not target.is_relative_to(folder):
        raise UnsafeInput(f"'{header.name}' names '{name.strip()}' as its pixel data, outside the header's folder. "
                          "SpinePlan reads data files only beside the header (same folder or below); move the "
                          "data file there and name it relative to the header.")
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        raise UnreadableFile(f"'{header.name}' names '{name.strip()}' as its pixel data, which does not exist. "
                             "Copy the data file beside the header.") from exc
    if not stat.S_ISREG(mode):
        raise UnsafeInput(f"'{header.name}' names '{name.strip()}' as its pixel data, which is not a regular file "
                          "(a device, pipe or folder). Point it at the image's data file.")
    return target


def _expand(header: Path, spec: str, extra: list[str]) -> list[Path]:
    """Data file names: one name, LIST (names on the following lines) or a printf pattern with a range."""
    parts = spec.split()
    if parts and parts[0] == "LIST":
        names = [line for line in extra if line.strip()]
    elif len(parts) >= 4 and "%" in parts[0] and all(re.fullmatch(r"-?\d+", p) for p in parts[1:4]):
        first, last, step = (int(p) for p in parts[1:4])
        if step == 0 or (last - first) // step + 1 > _MAX_FILES or (last - first) * step < 0:
            raise UnreadableFile(f"'{header.name}' names an impossible range of data files ({spec}).")
        try:
            names = [parts[0] % n for n in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError) as exc:
            raise UnreadableFile(f"'{header.name}' names its data files with a bad pattern ({spec}).") from exc
    else:
        names = [spec]
    if not names or len(names) > _MAX_FILES:
        raise UnreadableFile(f"'{header.name}' names no usable data file ({spec!r}).")
    return [_safe_file(header, n) for n in names]


def _stream_size(path: Path, offset: int, codec: str, name: str) -> int:
    """Bytes the data hold from ``offset`` on, after decompression; a broken stream is refused."""
    if codec == "raw":
        return max(path.stat().st_size - offset, 0)
    total = 0
    try:
        with open(path, "rb") as raw:
            raw.seek(offset)
            if codec == "zlib":
                inflater = zlib.decompressobj()
                while chunk := raw.read(_CHUNK):
                    total += len(inflater.decompress(chunk))
                    if inflater.eof:
                        break
                total += len(inflater.flush())
                if not inflater.eof:
                    raise EOFError("the compressed stream ends early")
            else:
                opener = gzip.GzipFile if codec == "gzip" else bz2.BZ2File
                with opener(fileobj=raw) as f:
                    while chunk := f.read(_CHUNK):
                        total += len(chunk)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise CorruptPixelData(f"'{name}' is damaged: its compressed pixel data break after {total} bytes ({exc}). "
                               "Copy it again from the source.") from exc
    return total


def _check_total(name: str, have: int, need: int | None, exact: bool) -> None:
    if need is None:
        return
    if have < need:
        raise CorruptPixelData(f"'{name}' is truncated: its pixel data hold {have} bytes of the {need} its header "
                               "announces. Copy it again from the source.")
    if exact and have > need:
        raise CorruptPixelData(f"'{name}' holds {have - need} bytes of pixel data more than its header announces "
                               f"({need}): its size or type fields are wrong, so the image would be cropped. "
                               "Write it again from the source.")


def _fields(lines: list[str], sep: str) -> dict[str, str]:
    out = {}
    for line in lines:
        if sep in line and not line.startswith("#"):
            key, _, value = line.partition(sep)
            out[key.strip().lower()] = value.strip()
    return out


def _product(text: str) -> int:
    n = 1
    for v in text.split():
        n *= int(v)
    return n


# MetaImage geometry keys (and their synonyms) -> whether the values must be positive
_META_GEOMETRY = {"ElementSpacing": True, "ElementSize": True, "Offset": False, "Origin": False, "Position": False,
                  "TransformMatrix": False, "Rotation": False, "Orientation": False}


def _geometry_numbers(name: str, key: str, text: str, positive: bool) -> None:
    """ITK reads 'nan' or '-0.8' in a geometry field as it likes (0, or the absolute value): refuse them."""
    try:
        values = [float(v) for v in text.replace("(", " ").replace(")", " ").replace(",", " ").split()
                  if v.lower() != "none"]
    except ValueError:
        values = [float("nan")]
    if not values or not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        raise ImplausibleGeometry(f"'{name}' has {key} = {text.strip()[:80]}: "
                                  f"{'positive ' if positive else ''}numbers belong there. The header is damaged "
                                  "and the geometry would be wrong. Write it again from the source.")


def _inspect_meta(path: Path) -> list[str]:
    lines, offset = _read_text_header(path, lambda l: l.strip().lower().startswith("elementdatafile"))
    if offset < 0:
        raise UnreadableFile(f"'{path.name}' is not a MetaImage header (no ElementDataFile line). Write it again.")
    fields = _fields(lines, "=")
    for key, positive in _META_GEOMETRY.items():
        if key.lower() in fields:
            _geometry_numbers(path.name, key, fields[key.lower()], positive)
    notes = _defaults_taken(fields, {"voxel size (ElementSpacing)": ("elementspacing", "elementsize"),
                                     "position (Offset)": ("offset", "origin", "position"),
                                     "orientation (TransformMatrix)": ("transformmatrix", "rotation", "orientation")},
                            "MetaImage")
    spec = fields["elementdatafile"]
    header_size = fields.get("headersize", "0")
    skip = int(header_size) if re.fullmatch(r"-?\d+", header_size) else 0
    if spec.upper() == "LOCAL":
        files, starts = [path], [offset]
    else:
        with open(path, "rb") as f:
            f.seek(offset)
            extra = f.read(_HEADER_LIMIT).decode("latin-1").splitlines()
        files = _expand(path, spec, extra)
        starts = [max(skip, 0)] * len(files)
    if fields.get("binarydata", "true").lower() == "false":
        return notes                            # ASCII voxels: ITK parses them, nothing to measure here
    try:
        per_voxel = _MET_BYTES[fields["elementtype"].upper()] * int(fields.get("elementnumberofchannels", "1"))
        check_size(fields["dimsize"].split(), per_voxel, f"'{path.name}'")
        need = _product(fields["dimsize"]) * per_voxel
    except (KeyError, ValueError):
        need = None                             # a type ITK knows and this table does not
    codec = "zlib" if fields.get("compresseddata", "false").lower() == "true" else "raw"
    have = sum(_stream_size(f, s, codec, path.name) for f, s in zip(files, starts))
    _check_total(path.name, have, need, exact=skip >= 0)
    return notes


def _nrrd_bytes(type_name: str) -> int | None:
    for size, pattern in _NRRD_BYTES:
        if re.fullmatch(pattern, type_name.strip().lower()):
            return size
    return None


def _inspect_nrrd(path: Path) -> list[str]:
    lines, offset = _read_text_header(path, lambda l: l.strip() == "")
    if not lines or not lines[0].startswith("NRRD"):
        raise UnreadableFile(f"'{path.name}' is not a NRRD file (it does not start with NRRD). Write it again.")
    fields = {k.replace(" ", ""): v for k, v in _fields(lines[1:], ":").items()}
    for key, label in (("spaceorigin", "space origin"), ("spacedirections", "space directions")):
        if key in fields:
            _geometry_numbers(path.name, label, fields[key], False)
    if "spacings" in fields:
        _geometry_numbers(path.name, "spacings", fields["spacings"].lower().replace("nan", ""), True)
    notes = _defaults_taken(fields, {"voxel size (space directions)": ("spacedirections", "spacings"),
                                     "position (space origin)": ("spaceorigin",),
                                     "orientation (space)": ("space", "spacedimension")}, "NRRD")
    encoding = fields.get("encoding", "raw").lower()
    codec = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bz2", "bz2": "bz2"}.get(encoding)
    spec = fields.get("datafile")
    if spec is None and offset < 0 and path.suffix.lower() == ".nrrd":
        raise UnreadableFile(f"'{path.name}' has no end to its header and no data. Write it again.")
    if spec is not None:
        extra = []
        if spec.split()[:1] == ["LIST"] and offset >= 0:
            with open(path, "rb") as f:
                f.seek(offset)
                extra = f.read(_HEADER_LIMIT).decode("latin-1").splitlines()
        files, starts = _expand(path, spec, extra), None
    else:
        files, starts = [path], [offset]
    if codec is None or int(fields.get("lineskip", "0") or 0) != 0:
        return notes                            # text encodings: ITK parses them
    size = _nrrd_bytes(fields.get("type", ""))
    if "sizes" in fields:
        check_size(fields["sizes"].split(), size or 1, f"'{path.name}'")
    need = _product(fields["sizes"]) * size if size and "sizes" in fields else None
    skip = int(fields.get("byteskip", "0") or 0) if spec is not None else 0
    if starts is None:
        starts = [max(skip, 0)] * len(files)
    have = sum(_stream_size(f, s, codec, path.name) for f, s in zip(files, starts))
    _check_total(path.name, have, need, exact=skip >= 0)
    return notes


def _defaults_taken(fields: dict, wanted: dict, fmt: str) -> list[str]:
    """What ITK fills in silently (1 mm voxels, origin 0, identity axes) where the header says nothing."""
    missing = [what for what, keys in wanted.items() if not any(k in fields for k in keys)]
    if not missing:
        return []
    return [f"the header gives no {', no '.join(missing)}; the {fmt} defaults (1 mm voxels, origin 0, axes "
            "along L, P, S) were taken: check the geometry before measuring or planning"]


def inspect(path: Path) -> list[str]:
    """Refuse a MetaImage/NRRD whose data lie outside its folder or do not match its header; returns
    warnings for geometry the header leaves to the format's defaults."""
    try:
        if path.suffix.lower() in (".mha", ".mhd"):
            return _inspect_meta(path)
        return _inspect_nrrd(path)
    except (KeyError, ValueError) as exc:
        raise UnreadableFile(f"'{path.name}' has a damaged header ({exc}). Write it again from the source.") from exc
