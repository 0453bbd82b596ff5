"""NIfTI, MHA/MHD, NRRD and zip mutations for the input fuzzer (benchmarks/fuzz_cases.py). Header
offsets follow the NIfTI-1 standard (nifti1.h), written here independently of SpinePlan's reader."""
from __future__ import annotations

import gzip
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np

from benchmarks import fuzz_dicom

# nifti1.h: field -> (offset, struct format)
NIFTI1 = {"dim": (40, "8h"), "datatype": (70, "h"), "bitpix": (72, "h"), "pixdim": (76, "8f"),
          "vox_offset": (108, "f"), "scl_slope": (112, "f"), "scl_inter": (116, "f"), "xyzt_units": (123, "B"),
          "cal_max": (124, "f"), "cal_min": (128, "f"), "descrip": (148, "80s"), "aux_file": (228, "24s"),
          "codes": (252, "2h"), "quatern": (256, "3f"), "qoffset": (268, "3f"), "srow": (280, "12f"),
          "intent_name": (328, "16s"), "magic": (344, "4s")}
NAN, INF = float("nan"), float("inf")


def write_mhd(folder: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """A MetaImage header with its raw data in a separate file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = (affine[:3, :3] / spacing).T.ravel()         # MetaIO lists the axes' directions row by row
    (folder / "scan.raw").write_bytes(np.ascontiguousarray(array.transpose(2, 1, 0)).astype("<i2").tobytes())
    lines = ["ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             "CompressedData = False", f"TransformMatrix = {' '.join(f'{v:g}' for v in direction)}",
             f"Offset = {' '.join(f'{v:g}' for v in affine[:3, 3])}",
             "ElementSpacing = " + " ".join(f"{v:g}" for v in spacing),
             "DimSize = " + " ".join(map(str, array.shape)), "ElementType = MET_SHORT", "ElementDataFile = scan.raw"]
    (folder / "scan.mhd").write_text("\n".join(lines) + "\n")
    return folder / "scan.mhd"


def zip_folder(folder: Path, archive: Path, prefix: str) -> Path:
    """The folder's files under ``prefix/`` in a zip with fixed dates (the same bytes every run)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.writestr(zipfile.ZipInfo(f"{prefix}/{f.name}", date_time=(2026, 1, 1, 12, 0, 0)), f.read_bytes(),
                        zipfile.ZIP_DEFLATED)
    return archive


# ---- NIfTI -----------------------------------------------------------------------------------------

def _nifti_edit(path: Path, change) -> None:
    packed = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if packed else path.read_bytes())
    fields = {name: list(struct.unpack_from("<" + fmt, data, off)) for name, (off, fmt) in NIFTI1.items()}
    change(fields)
    for name, (off, fmt) in NIFTI1.items():
        struct.pack_into("<" + fmt, data, off, *fields[name])
    path.write_bytes(gzip.compress(bytes(data)) if packed else bytes(data))


def _field(name: str, index: int | None, value, expect: str = "bad"):
    def mutate(path, rng, ref):
        def change(fields):
            i = int(rng.integers(1, 4)) if index == -1 else index
            if i is None:
                fields[name] = [value]
            else:
                fields[name][i] = value(fields[name][i]) if callable(value) else value
        _nifti_edit(path, change)
        return expect, None
    return mutate


def _nifti_text(name: str):
    return _field(name, None, b"fuzz text that changes nothing", "same")


def _srow(change):
    def mutate(path, rng, ref):
        _nifti_edit(path, lambda f: f.__setitem__("srow", change(list(f["srow"]))))
        return "bad", None
    return mutate


def _bad_quaternion(path, rng, ref):
    def change(fields):
        fields["quatern"] = [0.9, 0.9, 0.9]
        fields["codes"] = [1, 0]
    _nifti_edit(path, change)
    return "bad", None


def _nifti_random_field(path, rng, ref):
    """A geometry, size or scaling field set to a value no scan has."""
    name = ["dim", "pixdim", "vox_offset", "scl_slope", "scl_inter", "quatern", "qoffset", "srow", "codes",
            "datatype"][int(rng.integers(10))]
    garbage = [NAN, INF, -INF, 0, -1, 1e10, -1e10, 32767, -32768]
    if name in ("scl_slope", "scl_inter", "qoffset"):     # a plausible scaling or offset is a valid header
        garbage = [NAN, INF, -INF, 1e10, -1e10]
    integer = name in ("dim", "codes", "datatype")

    def change(fields):
        i = int(rng.integers(len(fields[name])))
        value = garbage[int(rng.integers(len(garbage)))]
        fields[name][i] = (int(value) if abs(value) < 1e5 else 32767) if integer and np.isfinite(value) else (
            0 if integer else value)
    _nifti_edit(path, change)
    return "bad", None


def _no_codes(path, rng, ref):
    _nifti_edit(path, lambda f: f.update(codes=[0, 0]))
    return "bad", None


def _nifti_moved(path, rng, ref):
    def change(fields):
        fields["qoffset"][2] += 10.0
        fields["srow"][11] += 10.0
    _nifti_edit(path, change)
    affine, array = ref
    moved = affine.copy()
    moved[2, 3] += 10.0
    return "implied", (moved, array)


def _nifti_scaled(path, rng, ref):
    _nifti_edit(path, lambda f: f.update(scl_slope=[2.0], scl_inter=[0.0]))
    affine, array = ref
    return "implied", (affine, array.astype(np.float32) * 2)


def _cut(path, rng, ref):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - int(rng.integers(1, max(len(data) // 3, 2)))])
    return "bad", None


def _append(path, rng, ref):
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\0" * int(rng.integers(1, 64))))
    else:
        path.write_bytes(path.read_bytes() + b"\0" * int(rng.integers(1, 64)))
    return "bad", None


def _corrupt_stream(skip: int):
    """Flip bytes inside the compressed data (after the first ``skip`` bytes of the file)."""
    def mutate(path, rng, ref):
        from benchmarks.fuzz_cases import flip_bytes

        start = skip if skip >= 0 else _data_offset(path)
        flip_bytes(path, rng, int(rng.integers(1, 8)), start + 20, None)
        return "bad", None
    return mutate


NIFTI = {
    "descrip": _nifti_text("descrip"), "aux_file": _nifti_text("aux_file"),
    "intent_name": _nifti_text("intent_name"), "cal_max": _field("cal_max", None, 3000.0, "same"),
    "pixdim zero": _field("pixdim", -1, 0.0), "pixdim NaN": _field("pixdim", -1, NAN),
    "pixdim inf": _field("pixdim", -1, INF), "pixdim negative": _field("pixdim", -1, lambda v: -v),
    "pixdim 1e10": _field("pixdim", -1, 1e10), "sform NaN": _srow(lambda s: [NAN] + s[1:]),
    "sform scaled": _srow(lambda s: [2 * v if i % 4 != 3 else v for i, v in enumerate(s)]),
    "sform singular": _srow(lambda s: [0.0] * 12), "sform sheared": _srow(lambda s: s[:1] + [0.5] + s[2:]),
    "quaternion not a rotation": _bad_quaternion, "magic": _field("magic", None, b"ni9\0"),
    "vox_offset +16": _field("vox_offset", 0, lambda v: v + 16),
    "vox_offset -4": _field("vox_offset", 0, lambda v: v - 4),
    "vox_offset NaN": _field("vox_offset", 0, NAN), "dim +1": _field("dim", -1, lambda v: v + 1),
    "dim -1": _field("dim", -1, lambda v: v - 1), "dim 32767": _field("dim", -1, 32767),
    "dim[0] 0": _field("dim", 0, 0), "dim[0] 8": _field("dim", 0, 8), "datatype float": _field("datatype", 0, 16),
    "scl_slope NaN": _field("scl_slope", 0, NAN), "scl_slope inf": _field("scl_slope", 0, INF),
    "scl_slope 1e30": _field("scl_slope", 0, 1e30), "units micron": _field("xyzt_units", 0, 3),
    "units metre": _field("xyzt_units", 0, 1), "no orientation codes": _no_codes,
    "truncated": _cut, "trailing bytes": _append, "moved 10 mm": _nifti_moved, "scl_slope 2": _nifti_scaled,
    "random field": _nifti_random_field,
}


# ---- MetaImage and NRRD (text headers) --------------------------------------------------------------

def _data_offset(path: Path) -> int:
    data = path.read_bytes()
    marker = re.search(rb"ElementDataFile = [^\n]*\n|\n\n", data)
    return marker.end() if marker else 0


def _header_edit(path: Path, change) -> None:
    data = path.read_bytes()
    end = _data_offset(path) if path.suffix != ".mhd" else len(data)
    header = data[:end].decode("latin-1")
    path.write_bytes(change(header).encode("latin-1") + data[end:])


def _line(key: str, value: str, expect: str = "bad", sep: str = " = "):
    """Replace the value of ``key`` (a random axis where value has {v} for the old one)."""
    def mutate(path, rng, ref):
        pattern = re.compile(rf"^{re.escape(key)}{re.escape(sep.rstrip())}[^\n]*$", re.M)
        _header_edit(path, lambda h: pattern.sub(lambda m: f"{key}{sep}{value}", h, count=1))
        return expect, None
    return mutate


def _insert(text: str, expect: str = "same"):
    def mutate(path, rng, ref):
        _header_edit(path, lambda h: h.replace("\n", "\n" + text + "\n", 1))
        return expect, None
    return mutate


def _outside(path, rng, ref):
    """The header names a copy of its own data outside its folder: ITK would read it."""
    outside = path.parent.parent / "outside.raw"
    data_file = path.with_suffix(".raw")
    shutil.copy(data_file if data_file.exists() else path, outside)
    return _line("ElementDataFile", "../outside.raw")(path, rng, ref)


def _ascii_elsewhere(path, rng, ref):
    """Text voxels from a file outside the folder: ITK would parse /etc/passwd for numbers."""
    _line("BinaryData", "False")(path, rng, ref)
    return _line("ElementDataFile", "/etc/passwd")(path, rng, ref)


def _symlink_out(path, rng, ref):
    raw = path.with_suffix(".raw")
    raw.unlink()
    raw.symlink_to("/etc/passwd")
    return "bad", None


def _in_subfolder(path, rng, ref):
    (path.parent / "data").mkdir()
    path.with_suffix(".raw").rename(path.parent / "data" / "scan.raw")
    return _line("ElementDataFile", "data/scan.raw", "same")(path, rng, ref)


def _moved(key: str, template: str, sep: str):
    def mutate(path, rng, ref):
        _line(key, template, "implied", sep)(path, rng, ref)
        affine, array = ref
        moved = affine.copy()
        moved[:3, 3] += [5.0, 0.0, 0.0]
        return "implied", (moved, array)
    return mutate


META = {
    "comment": _insert("Comment = fuzzed"),
    "unknown key": _insert("AcquisitionDate = 20200101"),
    "spacing negative": _line("ElementSpacing", "-0.8 0.7 2.5"),
    "spacing zero": _line("ElementSpacing", "0.8 0 2.5"),
    "spacing NaN": _line("ElementSpacing", "0.8 nan 2.5"),
    "spacing 1e10": _line("ElementSpacing", "1e10 0.7 2.5"),
    "matrix non-orthogonal": _line("TransformMatrix", "1 0.3 0 0 1 0 0 0 1"),
    "matrix singular": _line("TransformMatrix", "1 0 0 1 0 0 0 0 1"),
    "matrix NaN": _line("TransformMatrix", "nan 0 0 0 1 0 0 0 1"),
    "offset NaN": _line("Offset", "nan 20 -300"),
    "offset 1e9": _line("Offset", "1e9 20 -300"),
    "dims +1": _line("DimSize", "13 10 6"),
    "dims -1": _line("DimSize", "12 10 5"),
    "dims huge": _line("DimSize", "32767 32767 32767"),
    "element type float": _line("ElementType", "MET_FLOAT"),
    "data file /etc/passwd": _line("ElementDataFile", "/etc/passwd"),
    "data file /dev/zero": _line("ElementDataFile", "/dev/zero"),
    "data file outside": _outside,
    "text data from /etc/passwd": _ascii_elsewhere,
    "moved 5 mm": _moved("Offset", "-5 20 -300", " = "),
}
MHA = {**META, "stream corrupt": _corrupt_stream(-1), "truncated": _cut,
       "compression off": _line("CompressedData", "False")}
MHD = {**META, "data file a link out": _symlink_out, "data file in a subfolder": _in_subfolder,
       "raw truncated": lambda p, rng, ref: _cut(p.with_suffix(".raw"), rng, ref),
       "raw trailing bytes": lambda p, rng, ref: _append(p.with_suffix(".raw"), rng, ref)}
NRRD = {
    "comment": _insert("# fuzzed comment"),
    "key value": _insert("fuzz:=value"),
    "directions zero": _line("space directions", "(0.8,0,0) (0,0,0) (0,0,2.5)", sep=": "),
    "directions NaN": _line("space directions", "(nan,0,0) (0,0.7,0) (0,0,2.5)", sep=": "),
    "directions sheared": _line("space directions", "(0.8,0,0) (0.4,0.7,0) (0,0,2.5)", sep=": "),
    "directions 1e10": _line("space directions", "(1e10,0,0) (0,0.7,0) (0,0,2.5)", sep=": "),
    "sizes +1": _line("sizes", "12 11 6", sep=": "),
    "sizes huge": _line("sizes", "32767 32767 32767", sep=": "),
    "origin NaN": _line("space origin", "(nan,20,-300)", sep=": "),
    "type float": _line("type", "float", sep=": "),
    "data file /etc/passwd": _insert("data file: /etc/passwd", "bad"),
    "data file /dev/zero": _insert("data file: /dev/zero", "bad"),
    "stream corrupt": _corrupt_stream(-1),
    "truncated": _cut,
    "moved 5 mm": _moved("space origin", "(-5,20,-300)", ": "),
}


def mutations(fmt: str) -> dict:
    return {"nii": NIFTI, "nii.gz": {**NIFTI, "stream corrupt": _corrupt_stream(10)}, "mha": MHA, "mhd": MHD,
            "nrrd": NRRD}[fmt]


# ---- zip ----------------------------------------------------------------------------------------------

def mutate_zip(index: int, path: Path, dicom_base: Path, rng, case):
    """A zip of the series: damaged as an archive, or holding a mutated series."""
    from benchmarks.fuzz_cases import flip_bytes, reference

    kind = ["truncated", "bytes flipped", "member outside", "bomb", "nested", "mutated series"][int(rng.integers(6))]
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: int(rng.integers(10, path.stat().st_size - 1))])
    elif kind == "bytes flipped":
        flip_bytes(path, rng, int(rng.integers(1, 10)))
        return case(index, "zip", kind, "random", path)
    elif kind in ("member outside", "bomb"):
        with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
            if kind == "bomb":
                zf.writestr("study/zeros.dcm", b"\0" * (20 << 20))
            else:
                zf.write(sorted(dicom_base.iterdir())[-1], "../../evil.dcm")
    else:
        series = path.parent / "series"
        shutil.copytree(dicom_base, series)
        expect, expected, name = "same", None, kind
        if kind == "mutated series":
            name = sorted(fuzz_dicom.MUTATIONS)[int(rng.integers(len(fuzz_dicom.MUTATIONS)))]
            expect, expected = fuzz_dicom.MUTATIONS[name](series, rng, reference())
        path.unlink()
        zip_folder(series, path, "a/b/c")
        shutil.rmtree(series)
        return case(index, "zip", f"zip: {name}", expect, path, expected)
    return case(index, "zip", kind, "bad", path)
