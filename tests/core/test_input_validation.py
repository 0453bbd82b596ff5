"""Trustworthy inputs: every finding of the input review as a regression test.

Each input is the small CT of benchmarks/fuzz_cases.py (12 x 10 x 6 voxels of 0.8 x 0.7 x 2.5 mm) as a
DICOM series, NIfTI, MHA/MHD or NRRD, changed by one named mutation of the fuzzer. A wrong input is
refused with a SpineError subclass (exit 2) whose message names the problem; a usable one that the
user should know about loads with a warning; nothing is mended silently.
"""
import io
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from benchmarks import fuzz_dicom, fuzz_files
from benchmarks.fuzz_cases import reference, write_bases
from spine_core.errors import (CorruptPixelData, ImplausibleGeometry, ImplausibleValues, MixedSeries, ScanTooLarge,
                               SpineError, UnreadableFile, UnsafeInput)
from spine_core.io import load_scan
from spine_core.io import validate


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return write_bases(tmp_path_factory.mktemp("bases"))


def mutated(bases, tmp_path: Path, fmt: str, name: str) -> Path:
    """A copy of the base input of ``fmt`` with the fuzzer's mutation ``name`` applied."""
    src = bases[fmt]
    if src.is_dir():
        path = Path(shutil.copytree(src, tmp_path / src.name))
    else:
        for f in src.parent.iterdir():
            if f.is_file() and (f.suffix in (".mhd", ".raw") if src.suffix == ".mhd" else f == src):
                shutil.copy(f, tmp_path / f.name)
        path = tmp_path / src.name
    table = fuzz_dicom.MUTATIONS if fmt == "dicom" else fuzz_files.mutations(fmt)
    table[name](path, np.random.default_rng(0), reference())
    return path


def refused(path, error, fragment):
    with pytest.raises(error) as info:
        load_scan(path)
    assert fragment in str(info.value), str(info.value)
    return str(info.value)


def cli(*argv) -> tuple[int, str, str]:
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# 1. Wrong geometry ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, error, fragment", [
    ("pixel spacing negative", ImplausibleGeometry, "PixelSpacing of -0.7 x -0.8 mm"),
    ("pixel spacing zero", ImplausibleGeometry, "must be positive"),
    ("pixel spacing missing", UnreadableFile, "has no PixelSpacing"),
    ("orientation non-unit", ImplausibleGeometry, "not a rotation"),
    ("orientation non-orthogonal", ImplausibleGeometry, "not a rotation"),
])
def test_wrong_dicom_geometry_is_refused(bases, tmp_path, name, error, fragment):
    refused(mutated(bases, tmp_path, "dicom", name), error, fragment)


def test_orientation_off_by_rounding_is_made_orthonormal_with_a_warning(bases, tmp_path):
    path = mutated(bases, tmp_path, "dicom", "series description")
    fuzz_dicom.edit(path, lambda ds, k: fuzz_dicom.raw(ds, "ImageOrientationPatient", b"1.004\\0\\0\\0\\1\\0"))
    volume = load_scan(path)
    assert np.allclose(volume.direction, np.eye(3)) and np.allclose(volume.spacing, [0.8, 0.7, 2.5])
    assert any("made orthonormal" in w for w in volume.metadata.warnings)


@pytest.mark.parametrize("fmt", ["nii", "nii.gz"])
@pytest.mark.parametrize("name, error, fragment", [
    ("pixdim zero", ImplausibleGeometry, "pixdim"), ("pixdim NaN", ImplausibleGeometry, "pixdim"),
    ("pixdim inf", ImplausibleGeometry, "pixdim"), ("pixdim negative", ImplausibleGeometry, "mirror"),
    ("sform NaN", ImplausibleGeometry, "sform"), ("sform singular", ImplausibleGeometry, "singular"),
    ("quaternion not a rotation", ImplausibleGeometry, "quaternion"), ("magic", UnreadableFile, "magic"),
    ("no orientation codes", ImplausibleGeometry, "no orientation"), ("units micron", ImplausibleGeometry, "units"),
])
def test_wrong_nifti_geometry_is_refused(bases, tmp_path, fmt, name, error, fragment):
    refused(mutated(bases, tmp_path, fmt, name), error, fragment)


def test_nifti_sform_scaling_is_used_and_said(bases, tmp_path):
    """ITK took the voxel size from pixdim and ignored the sform's scaling; the standard says sform."""
    volume = load_scan(mutated(bases, tmp_path, "nii", "sform scaled"))
    assert np.allclose(volume.spacing, [1.6, 1.4, 5.0], atol=1e-4)
    assert any("the sform was used" in w for w in volume.metadata.warnings)


@pytest.mark.parametrize("fmt", ["mha", "mhd", "nrrd"])
def test_wrong_metaimage_and_nrrd_geometry_is_refused(bases, tmp_path, fmt):
    names = ["directions NaN", "directions sheared", "origin NaN"] if fmt == "nrrd" else [
        "spacing negative", "spacing zero", "matrix non-orthogonal", "offset NaN"]
    for n, name in enumerate(names):
        (tmp_path / str(n)).mkdir()
        refused(mutated(bases, tmp_path / str(n), fmt, name), ImplausibleGeometry, "")


@pytest.mark.parametrize("fmt, key", [("mha", "ElementSpacing = "), ("mhd", "Offset = "),
                                      ("nrrd", "space directions: ")])
def test_geometry_left_to_the_formats_defaults_is_said(bases, tmp_path, fmt, key):
    """ITK takes 1 mm voxels and origin 0 where a MetaImage/NRRD header says nothing (or a damaged key)."""
    import re

    path = mutated(bases, tmp_path, fmt, "comment")
    fuzz_files._header_edit(path, lambda h: re.sub(rf"^{re.escape(key)}[^\n]*\n", "", h, flags=re.M))
    volume = load_scan(path)
    assert any("the header gives no" in w for w in volume.metadata.warnings)


# 2. Damaged pixels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name, fragment", [
    ("dicom", "pixel data truncated", "truncated"), ("dicom", "rows off by one", "bytes of pixel data"),
    ("dicom", "columns off by one", "bytes of pixel data"), ("nii", "truncated", "truncated"),
    ("nii.gz", "truncated", "damaged"), ("nii.gz", "stream corrupt", "damaged"),
    ("nii", "vox_offset -4", "vox_offset"), ("nii", "vox_offset +16", "truncated"),
    ("nii", "trailing bytes", "more than its header"), ("mha", "stream corrupt", "damaged"),
    ("mha", "truncated", ""), ("mhd", "raw truncated", "truncated"), ("nrrd", "stream corrupt", "damaged"),
])
def test_damaged_pixel_data_is_refused(bases, tmp_path, fmt, name, fragment):
    refused(mutated(bases, tmp_path, fmt, name), CorruptPixelData, fragment)


# 3. Mixed series -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [
    ("two series one UID", "another frame of reference"),
    ("two series one UID, other spacing", "pixel spacing"),
    ("two series empty UID", "(no series UID)"),
    ("pixel spacing one slice", "pixel spacing of 1.2 x 1.05 mm"),
    ("orientation one slice turned", "turned"),
    ("frame of reference on one", "frame of reference"),
])
def test_mixed_series_are_refused(bases, tmp_path, name, fragment):
    message = refused(mutated(bases, tmp_path, "dicom", name), MixedSeries, fragment)
    assert "own folder" in message


def test_an_end_slice_without_position_is_left_out_with_a_warning(bases, tmp_path):
    volume = load_scan(mutated(bases, tmp_path, "dicom", "position missing at an end"))
    assert volume.shape == (12, 10, 5)
    assert any("no position" in w for w in volume.metadata.warnings)


def test_a_damaged_slice_file_is_not_dropped_silently(bases, tmp_path):
    path = mutated(bases, tmp_path, "dicom", "series description")
    last = sorted(path.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:200])                 # the header breaks off
    volume = load_scan(path)
    assert volume.shape == (12, 10, 5) and any("could not be used" in w for w in volume.metadata.warnings)


def test_an_image_whose_header_breaks_off_is_reported(bases, tmp_path):
    """A slice whose header ends after its UIDs (no position, no pixels) is a damaged file, not a non-image."""
    path = mutated(bases, tmp_path, "dicom", "series description")
    last = fuzz_dicom.files(path)[-1]
    data = last.read_bytes()
    last.write_bytes(data[:data.find(b"\x20\x00\x10\x00")])       # up to StudyID (0020,0010)
    volume = load_scan(path)
    assert volume.shape[2] == 5 and any("could not be used" in w for w in volume.metadata.warnings)


# 4. Implausible values -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name, error, fragment", [
    ("dicom", "pixel spacing 1e10", ImplausibleGeometry, "outside what a patient scan has"),
    ("dicom", "rescale slope 1e30", ImplausibleValues, "HU"),
    ("dicom", "rescale intercept missing", ImplausibleValues, "without RescaleIntercept"),
    ("dicom", "rescale intercept missing on one", ImplausibleValues, "RescaleIntercept"),
    ("nii", "scl_slope 1e30", ImplausibleValues, "scaling"),
    ("nii", "scl_slope NaN", CorruptPixelData, "scl_slope"),
    ("mha", "spacing 1e10", ImplausibleGeometry, ""),
])
def test_implausible_values_are_refused(bases, tmp_path, fmt, name, error, fragment):
    refused(mutated(bases, tmp_path, fmt, name), error, fragment)


# 5. The input's fault is exit 2, never 3 -------------------------------------------------------------

@pytest.mark.parametrize("fmt, name", [
    ("nii", "sform singular"), ("dicom", "orientation singular"), ("dicom", "position NaN"),
    ("dicom", "pixel spacing text"), ("dicom", "pixel spacing 3 values"), ("dicom", "position 2 values"),
    ("dicom", "orientation 5 values"), ("dicom", "orientation text"), ("dicom", "RGB on one sample"),
    ("dicom", "rows missing"), ("dicom", "huge rows"), ("dicom", "bits allocated 12"),
])
def test_bad_input_exits_2_without_a_traceback(bases, tmp_path, fmt, name):
    path = mutated(bases, tmp_path, fmt, name)
    for argv in (["info", path], ["convert", path, tmp_path / "out.nii.gz"]):
        code, _, err = cli(*argv)
        assert code == 2, (argv[0], err)
        assert "Traceback" not in err and "internal error" not in err


def test_a_damaged_transfer_syntax_or_zip_is_no_internal_error(bases, tmp_path):
    path = mutated(bases, tmp_path, "dicom", "series description")
    victim = fuzz_dicom.files(path)[2]                          # a transfer syntax with two values
    victim.write_bytes(victim.read_bytes().replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1\\2.1\0", 1))
    archive = tmp_path / "series.zip"
    data = bytearray(bases["zip"].read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central + 6] = 176                                     # "made for zip version 17.6"
    archive.write_bytes(bytes(data))
    for target in (path, archive):
        code, _, err = cli("info", target)
        assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, err


@pytest.mark.parametrize("name", ["deflate transfer syntax", "implicit VR transfer syntax", "RLE compressed"])
def test_other_transfer_syntaxes_load_the_same_voxels(bases, tmp_path, name):
    affine, array = reference()
    volume = load_scan(mutated(bases, tmp_path, "dicom", name))
    assert np.array_equal(volume.array, array) and np.allclose(volume.affine, affine, atol=1e-4)


# 6. A header's data file stays beside it -----------------------------------------------------------

@pytest.mark.parametrize("fmt, name", [
    ("mha", "data file /etc/passwd"), ("mha", "data file /dev/zero"), ("mha", "data file outside"),
    ("mha", "text data from /etc/passwd"),
    ("mhd", "data file /etc/passwd"), ("mhd", "data file a link out"), ("mhd", "data file outside"),
    ("nrrd", "data file /etc/passwd"), ("nrrd", "data file /dev/zero"),
])
def test_data_files_outside_the_headers_folder_are_refused(bases, tmp_path, fmt, name):
    refused(mutated(bases, tmp_path, fmt, name), UnsafeInput, "")


def test_a_data_file_in_a_subfolder_is_read(bases, tmp_path):
    affine, array = reference()
    volume = load_scan(mutated(bases, tmp_path, "mhd", "data file in a subfolder"))
    assert np.array_equal(volume.array, array)


def test_a_zip_member_pointing_outside_is_refused(bases, tmp_path):
    import zipfile

    archive = tmp_path / "series.zip"
    shutil.copy(bases["zip"], archive)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../../evil.dcm", b"x")
    refused(archive, UnsafeInput, "outside")


# 7. Size bounds before allocation ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name", [("nii.gz", "dim 32767"), ("mha", "dims huge"), ("nrrd", "sizes huge")])
def test_huge_declared_sizes_are_refused_before_allocating(bases, tmp_path, fmt, name):
    path = mutated(bases, tmp_path, fmt, name)
    if fmt == "nii.gz":
        fuzz_files._nifti_edit(path, lambda f: f.update(dim=[3, 32767, 32767, 32767, 1, 1, 1, 1]))
    refused(path, ScanTooLarge, "billion")


def test_size_limits():
    validate.check_size((2048, 2048, 400), 2, "ok")
    with pytest.raises(ScanTooLarge, match="8 GiB"):
        validate.check_size((2048, 2048, 600), 4, "big")                     # 10 GB of float32
    with pytest.raises(ScanTooLarge, match="2 billion"):
        validate.check_size((32767, 32767, 3), 1, "many")


# The validation layer itself ------------------------------------------------------------------------

def test_orthonormal_tolerances():
    exact, warnings = validate.orthonormal(np.eye(3) + 1e-4, "x")
    assert np.allclose(exact.T @ exact, np.eye(3)) and warnings == []
    _, warnings = validate.orthonormal(np.diag([1.005, 1, 1]), "x")
    assert warnings and "orthonormal" in warnings[0]
    with pytest.raises(ImplausibleGeometry, match="not a rotation"):
        validate.orthonormal(np.diag([1.05, 1, 1]), "x")


def test_value_checks():
    assert validate.check_values(np.array([-1024, 3071], np.int16), "CT", "x") == []
    assert "RescaleIntercept" in validate.check_values(np.array([0, 4000], np.int16), "CT", "x")[0]
    with pytest.raises(ImplausibleValues, match="not numbers"):
        validate.check_values(np.array([0.0, np.nan], np.float32), "MR", "x")
    with pytest.raises(ImplausibleValues):
        validate.check_values(np.array([0.0, 1e30], np.float32), "", "x")


def test_a_gantry_beyond_45_degrees_is_refused():
    with pytest.raises(ImplausibleGeometry, match="gantry"):
        validate.check_tilt([1, 0, 0], [0, 1, 0], [0, 5, 1], "x")


def test_every_refusal_is_a_spine_error():
    for error in (CorruptPixelData, ImplausibleGeometry, ImplausibleValues, MixedSeries, ScanTooLarge, UnsafeInput):
        assert issubclass(error, SpineError)


def test_a_sagittal_scan_stored_slice_first_reads_back_without_a_geometry_warning(tmp_path):
    """A half-turn orientation (the VB2 MR's IPR): its float32 quaternion holds the rotation only to
    ~3e-4, which once read back as 'sform and qform place the image differently' on our own labels."""
    from spine_core.io.writers import save_volume
    from spine_core.volume import Volume

    affine = np.array([[0.0, 0.0, -1.0, -10.0], [0.0, 1.0, 0.0, 20.0], [-1.0, 0.0, 0.0, 30.0], [0, 0, 0, 1.0]])
    volume = Volume(np.zeros((8, 9, 10), np.int16), affine)
    back = load_scan(save_volume(volume, tmp_path / "ipr.nii.gz"))
    assert np.allclose(back.affine, affine, atol=1e-4)
    assert not back.metadata.warnings
