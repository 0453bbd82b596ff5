"""DICOM mutations for the input fuzzer (benchmarks/fuzz_cases.py): each takes the copied series
folder, a numpy Generator and the reference (affine, HU array), edits the files and returns
(expect, expected) as fuzz_cases describes. Values are written as raw bytes, so pydicom's own
validation never stops a damaged value from reaching the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

GARBAGE = [b"0", b"-1", b"1e10", b"nan", b"inf", b"abc", b"", b"1\\2\\3\\4\\5\\6\\7", b"0.5\\-0.5"]
FIELDS = ["PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "Rows", "Columns", "BitsAllocated",
          "SamplesPerPixel", "PixelRepresentation", "RescaleSlope", "RescaleIntercept", "NumberOfFrames",
          "HighBit", "BitsStored", "PhotometricInterpretation"]
_US = {"Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PixelRepresentation", "HighBit", "BitsStored"}


def make_reproducible(folder: Path) -> None:
    """Fixed UIDs, dates and times, so that case N of a seed flips the same bytes in every run."""
    root = "1.2.826.0.1.3680043.8.498.7."
    for k, path in enumerate(files(folder)):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = root + "1", root + "2", root + "3"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}4.{k + 1}"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.save_as(path)


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def raw(ds, keyword: str, value: bytes) -> None:
    """Set ``keyword`` to these exact bytes (even-padded), or to a 2-byte binary value for US."""
    tag = tag_for_keyword(keyword)
    vr = pydicom.datadict.dictionary_VR(tag)
    if keyword in _US and value.lstrip(b"-").isdigit():
        value = int(value).to_bytes(2, "little", signed=int(value) < 0) if abs(int(value)) < 65536 else b"\xff\xff"
    value = value + (b" " if len(value) % 2 else b"")
    ds[tag] = RawDataElement(pydicom.tag.Tag(tag), vr, len(value), value, 0, False, True)


def edit(folder: Path, change, which: str = "all", rng=None) -> int:
    """Apply ``change(ds, k)`` to all slices, one (random, not an end), the first or the last."""
    paths = files(folder)
    picks = {"all": range(len(paths)), "first": [0], "last": [len(paths) - 1],
             "one": [int(rng.integers(1, len(paths) - 1))] if rng is not None else [1]}[which]
    for k in picks:
        ds = pydicom.dcmread(paths[k])
        change(ds, k)
        ds.save_as(paths[k])
    return picks[0]


def _set(keyword: str, value: bytes, which: str = "all"):
    def mutate(folder, rng, ref):
        edit(folder, lambda ds, k: raw(ds, keyword, value), which, rng)
        return "bad", None
    return mutate


def _delete(keyword: str, which: str = "all", expect: str = "bad"):
    def mutate(folder, rng, ref):
        edit(folder, lambda ds, k: delattr(ds, keyword) if keyword in ds else None, which, rng)
        return expect, None
    return mutate


def _same(change):
    def mutate(folder, rng, ref):
        edit(folder, lambda ds, k: change(ds, rng), "all", rng)
        return "same", None
    return mutate


def _private(ds, rng):
    ds.private_block(0x0009, "FUZZ", create=True).add_new(0x01, "LO", f"note {int(rng.integers(1000))}")


def _shuffle_names(folder, rng, ref):
    paths = files(folder)
    for n in rng.permutation(len(paths)):
        paths[n].rename(folder / f"x{int(rng.integers(1e9))}_{n}.dcm")
    return "same", None


def _transfer(syntax):
    def mutate(folder, rng, ref):
        def change(ds, k):
            if syntax == pydicom.uid.RLELossless:
                ds.compress(syntax)
            else:
                ds.file_meta.TransferSyntaxUID = syntax
        edit(folder, change)
        return "same", None
    return mutate


def _orientation(row, col, which="all"):
    text = "\\".join(f"{v:.6g}" for v in (*row, *col)).encode()
    return _set("ImageOrientationPatient", text, which)


def _turn_one(folder, rng, ref):
    angle = np.radians(float(rng.uniform(2, 30)))
    row, col = (np.cos(angle), np.sin(angle), 0.0), (-np.sin(angle), np.cos(angle), 0.0)
    return _orientation(row, col, "one")(folder, rng, ref)


def _spacing_one(folder, rng, ref):
    edit(folder, lambda ds, k: raw(ds, "PixelSpacing", f"{0.7 * 1.5:.4g}\\{0.8 * 1.5:.4g}".encode()), "one", rng)
    return "bad", None


def _position(change, which="one"):
    def mutate(folder, rng, ref):
        def apply(ds, k):
            position = [float(v) for v in ds.ImagePositionPatient]
            raw(ds, "ImagePositionPatient", "\\".join(f"{v:.6g}" for v in change(position, rng)).encode())
        edit(folder, apply, which, rng)
        return "bad", None
    return mutate


def _truncate(folder, rng, ref):
    path = files(folder)[int(rng.integers(len(files(folder))))]
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - int(rng.integers(1, 200))])
    return "bad", None


def _second_series(uid: str | None, spacing_factor: float):
    """A second acquisition under the same (or an empty) SeriesInstanceUID, interleaved."""
    def mutate(folder, rng, ref):
        frame = generate_uid(entropy_srcs=[str(rng.integers(1 << 30))])
        for path in files(folder):
            ds = pydicom.dcmread(path)
            if uid is not None:
                ds.SeriesInstanceUID = uid
                ds.save_as(path)
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SOPInstanceUID, frame])
            ds.FrameOfReferenceUID = frame
            ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.25
            ds.PixelSpacing = [float(v) * spacing_factor for v in ds.PixelSpacing]
            ds.save_as(folder / f"second_{path.name}")
        return "bad", None
    return mutate


def _uid_on_one(keyword: str):
    def mutate(folder, rng, ref):
        uid = generate_uid(entropy_srcs=[keyword, str(rng.integers(1 << 30))])
        edit(folder, lambda ds, k: setattr(ds, keyword, uid), "one", rng)
        return "bad", None
    return mutate


def _drop(which: str):
    def mutate(folder, rng, ref):
        paths = files(folder)
        k = {"first": 0, "last": len(paths) - 1, "middle": len(paths) // 2}[which]
        paths[k].unlink()
        if which == "middle":
            return "bad", None
        affine, array = ref
        kept = np.delete(array, k, axis=2)
        shifted = affine.copy()
        if k == 0:
            shifted[:3, 3] += affine[:3, 2]
        return "implied", (shifted, kept)
    return mutate


def _rescale_one(folder, rng, ref):
    k = edit(folder, lambda ds, k: raw(ds, "RescaleSlope", b"2"), "one", rng)
    affine, array = ref
    expected = array.astype(np.float32).copy()
    expected[:, :, k] = (array[:, :, k].astype(np.float32) + 1024) * 2 - 1024
    return "implied", (affine, expected)


def _intercept_all(folder, rng, ref):
    edit(folder, lambda ds, k: raw(ds, "RescaleIntercept", b"-1000"))
    affine, array = ref
    return "implied", (affine, array.astype(np.float32) + 24)


def _spacing_scaled(folder, rng, ref):
    edit(folder, lambda ds, k: raw(ds, "PixelSpacing", b"0.875\\1"))
    affine, array = ref
    scaled = affine.copy()
    scaled[:3, 0] *= 1.25
    scaled[:3, 1] *= 1.25
    return "implied", (scaled, array)


def _random_field(folder, rng, ref):
    keyword = FIELDS[int(rng.integers(len(FIELDS)))]
    value = GARBAGE[int(rng.integers(len(GARBAGE)))]
    which = ["all", "one", "first", "last"][int(rng.integers(4))]
    edit(folder, lambda ds, k: raw(ds, keyword, value), which, rng)
    return "bad", None


MUTATIONS = {
    "series description": _same(lambda ds, rng: setattr(ds, "SeriesDescription", f"fuzz {int(rng.integers(99))}")),
    "image comments": _same(lambda ds, rng: setattr(ds, "ImageComments", "a comment " * int(rng.integers(1, 30)))),
    "private tag": _same(_private),
    "instance numbers": _same(lambda ds, rng: setattr(ds, "InstanceNumber", int(rng.integers(1, 999)))),
    "slice location": _same(lambda ds, rng: setattr(ds, "SliceLocation", float(rng.uniform(-1e3, 1e3)))),
    "file names shuffled": _shuffle_names,
    "deflate transfer syntax": _transfer(pydicom.uid.DeflatedExplicitVRLittleEndian),
    "implicit VR transfer syntax": _transfer(pydicom.uid.ImplicitVRLittleEndian),
    "RLE compressed": _transfer(pydicom.uid.RLELossless),
    "pixel spacing negative": _set("PixelSpacing", b"-0.7\\-0.8"),
    "pixel spacing zero": _set("PixelSpacing", b"0\\0"),
    "pixel spacing NaN": _set("PixelSpacing", b"nan\\0.8"),
    "pixel spacing missing": _delete("PixelSpacing"),
    "pixel spacing 1e10": _set("PixelSpacing", b"1e10\\1e10"),
    "pixel spacing text": _set("PixelSpacing", b"abc\\def"),
    "pixel spacing 3 values": _set("PixelSpacing", b"0.7\\0.8\\1"),
    "pixel spacing one slice": _spacing_one,
    "orientation non-unit": _orientation((1.2, 0, 0), (0, 1, 0)),
    "orientation non-orthogonal": _orientation((0.96, 0.28, 0), (0, 1, 0)),
    "orientation singular": _orientation((1, 0, 0), (1, 0, 0)),
    "orientation text": _set("ImageOrientationPatient", b"a\\b\\c\\d\\e\\f"),
    "orientation 5 values": _set("ImageOrientationPatient", b"1\\0\\0\\0\\1"),
    "orientation one slice turned": _turn_one,
    "position NaN": _position(lambda p, rng: [p[0], float("nan"), p[2]]),
    "position 2 values": _set("ImagePositionPatient", b"1\\2", "one"),
    "position text": _set("ImagePositionPatient", b"x\\y\\z", "one"),
    "position missing at an end": _delete("ImagePositionPatient", "last"),
    "position shifted": _position(lambda p, rng: [p[0], p[1], p[2] + float(rng.uniform(0.5, 1.0))]),
    "position duplicated": _position(lambda p, rng: [p[0], p[1], p[2] - 2.5]),
    "position 1e9": _position(lambda p, rng: [1e9, p[1], p[2]], "all"),
    "pixel data truncated": _truncate,
    "rows off by one": _set("Rows", b"11"),
    "columns off by one": _set("Columns", b"11", "one"),
    "rows missing": _delete("Rows", "one"),
    "huge rows": _set("Rows", b"65535"),
    "RGB on one sample": _set("SamplesPerPixel", b"3"),
    "bits allocated 8": _set("BitsAllocated", b"8"),
    "bits allocated 12": _set("BitsAllocated", b"12"),
    "rescale slope 1e30": _set("RescaleSlope", b"1e30"),
    "rescale slope zero": _set("RescaleSlope", b"0", "one"),
    "rescale intercept missing": _delete("RescaleIntercept"),
    "rescale intercept missing on one": _delete("RescaleIntercept", "one"),
    "two series one UID": _second_series(None, 1.0),
    "two series one UID, other spacing": _second_series(None, 1.3),
    "two series empty UID": _second_series("", 1.0),
    "frame of reference on one": _uid_on_one("FrameOfReferenceUID"),
    "study UID on one": _uid_on_one("StudyInstanceUID"),
    "slice missing in the middle": _drop("middle"),
    "first slice removed": _drop("first"),
    "last slice removed": _drop("last"),
    "rescale slope 2 on one slice": _rescale_one,
    "rescale intercept -1000": _intercept_all,
    "pixel spacing scaled": _spacing_scaled,
    "random field": _random_field,
}
