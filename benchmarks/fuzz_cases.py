"""Seeded inputs for benchmarks/fuzz_inputs.py: one small CT written as a DICOM series, .nii, .nii.gz,
.mha (zlib), .mhd + raw, .nrrd (gzip) and a zip of the series, each mutated one way whose
consequence is known:

- ``same``: nothing that matters changed (a comment, a description, file names, the transfer
  syntax); the scan must load with identical geometry and voxels.
- ``bad``: geometry, pixels, series or values made wrong; the scan must be refused (exit 2), or
  load with a warning, or load unchanged (the field is not used).
- ``implied``: a valid change whose result is known (an end slice removed, a scaling); it must
  load as that result, or be refused or warned.
- ``random``: bytes flipped anywhere; only crashes, hangs, exit 3 and tracebacks count.

The expectations come from the DICOM and NIfTI standards, never from SpinePlan's reader.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import fuzz_dicom, fuzz_files

SHAPE, SPACING, ORIGIN = (12, 10, 6), (0.8, 0.7, 2.5), (-10.0, 20.0, -300.0)
FORMATS = {"dicom": 0.35, "nii": 0.13, "nii.gz": 0.13, "mha": 0.1, "mhd": 0.07, "nrrd": 0.12, "zip": 0.1}


@dataclass(frozen=True)
class Case:
    index: int
    fmt: str
    mutation: str
    expect: str                     # same, bad, implied, random
    path: Path
    expected: tuple | None = None   # (affine, array) for ``implied``


def reference():
    """The base scan: (affine LPS, int16 HU array)."""
    from spine_core.volume import affine_from_geometry

    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 2000, SHAPE).astype(np.int16)
    return affine_from_geometry(SPACING, None, ORIGIN), array


def write_bases(folder: Path) -> dict[str, Path]:
    """Every format of the base scan in ``folder``; returns format -> path."""
    from spine_core.io import save_volume
    from spine_core.io.dicom_writer import write_dicom_series
    from spine_core.volume import ScanMetadata, Volume

    affine, array = reference()
    volume = Volume(array, affine, ScanMetadata(modality="CT"))
    paths = {"dicom": folder / "dicom"}
    write_dicom_series(volume, paths["dicom"])
    fuzz_dicom.make_reproducible(paths["dicom"])
    for fmt in ("nii", "nii.gz", "mha", "nrrd"):
        paths[fmt] = save_volume(volume, folder / f"scan.{fmt}")
    paths["mhd"] = fuzz_files.write_mhd(folder / "split", array, affine)
    paths["zip"] = fuzz_files.zip_folder(paths["dicom"], folder / "series.zip", "study")
    return paths


def _copy(src: Path, dst_folder: Path) -> Path:
    dst_folder.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        target = dst_folder / src.name
        shutil.copytree(src, target)
        return target
    if src.suffix == ".mhd":                       # a header with its data file beside it
        for f in src.parent.iterdir():
            shutil.copy(f, dst_folder / f.name)
        return dst_folder / src.name
    return Path(shutil.copy(src, dst_folder / src.name))


def flip_bytes(path: Path, rng, n: int, lo: int = 0, hi: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    hi = len(data) if hi is None else min(hi, len(data))
    for _ in range(n):
        if hi > lo:
            data[int(rng.integers(lo, hi))] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))


def _pick(rng, mapping: dict):
    names = sorted(mapping)
    return names[int(rng.integers(len(names)))]


def make_case(index: int, seed: int, bases: dict[str, Path], work: Path) -> Case:
    """Case ``index`` of run ``seed``: a copy of one base input in ``work``, mutated."""
    rng = np.random.default_rng([seed, index])
    formats = sorted(FORMATS)
    fmt = formats[int(rng.choice(len(formats), p=[FORMATS[f] for f in formats]))]
    path = _copy(bases[fmt], work)
    if fmt == "zip":
        return fuzz_files.mutate_zip(index, path, bases["dicom"], rng, Case)
    if rng.random() < 0.15:
        target = sorted(path.iterdir())[int(rng.integers(len(list(path.iterdir()))))] if path.is_dir() else path
        flip_bytes(target, rng, int(rng.integers(1, 20)))
        return Case(index, fmt, "random bytes", "random", path)
    table = fuzz_dicom.MUTATIONS if fmt == "dicom" else fuzz_files.mutations(fmt)
    name = _pick(rng, table)
    expect, expected = table[name](path, rng, reference())
    return Case(index, fmt, name, expect, path, expected)
