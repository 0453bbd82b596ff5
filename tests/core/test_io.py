"""Loading scans: geometry round trips and every kind of bad input a clinician may bring."""
import shutil
import zipfile

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from spine_core.atomic import atomic_path
from spine_core.errors import (IncompleteSeries, InputNotFound, ModalityMismatch, MultipleSeries,
                               NoScanFound, SpineError, UnreadableFile, UnsupportedImage)
from spine_core.io import list_series, load_labels, load_scan, save_labelmap, save_volume
from spine_core.io.dicom_writer import DicomOptions, write_dicom_series
from spine_core.io.readers import check_modality
from spine_core.volume import LabelMap, Volume, affine_from_geometry
from tests.conftest import make_volume


@pytest.fixture()
def series_dir(tmp_path):
    vol = make_volume()
    write_dicom_series(vol, tmp_path / "series")
    return tmp_path / "series", vol


def test_dicom_round_trip_keeps_voxels_and_geometry(series_dir):
    folder, vol = series_dir
    loaded = load_scan(folder)
    assert loaded.shape == vol.shape
    assert np.array_equal(loaded.array, vol.array)
    assert np.allclose(loaded.affine, vol.affine, atol=1e-4)
    assert loaded.metadata.modality == "CT" and loaded.metadata.series_uid
    assert loaded.metadata.body_part == "SPINE"           # BodyPartExamined: the MR numbering reads it


@pytest.mark.parametrize("thickness, expected", [("5.0", 5.0), (None, 0.0), ("n/a", 0.0)])
def test_slice_thickness_is_read_and_a_damaged_one_ignored(series_dir, thickness, expected):
    folder, vol = series_dir
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        if thickness is None:
            del ds.SliceThickness
        else:         # as a scanner might write it: unchecked
            ds[0x00180050] = pydicom.dataelem.RawDataElement(0x00180050, "DS", len(thickness), thickness.encode(),
                                                              0, True, True)
        ds.save_as(path)
    loaded = load_scan(folder)
    assert loaded.metadata.slice_thickness_mm == expected     # the detector is chosen by it
    assert np.array_equal(loaded.array, vol.array)


def test_dicom_slices_are_sorted_by_position_not_name(series_dir, tmp_path):
    folder, vol = series_dir
    files = sorted(folder.iterdir())
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for n, f in enumerate(reversed(files)):
        shutil.copy(f, shuffled / f"{n:03d}_x.dcm")
    loaded = load_scan(shuffled)
    assert np.array_equal(loaded.array, vol.array)


def test_oblique_flipped_series_round_trips(tmp_path):
    angle = np.radians(20)
    direction = np.array([[np.cos(angle), 0, np.sin(angle)], [0, -1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    direction[:, 2] = np.cross(direction[:, 0], direction[:, 1])
    vol = Volume(make_volume().array, affine_from_geometry([0.9, 0.9, 2.0], direction, [5, 5, 5]))
    write_dicom_series(vol, tmp_path / "obl")
    loaded = load_scan(tmp_path / "obl")
    assert np.allclose(loaded.affine, vol.affine, atol=1e-3)
    assert np.array_equal(loaded.array, vol.array)


def test_nifti_round_trip_keeps_the_affine(series_dir, tmp_path):
    folder, vol = series_dir
    out = save_volume(load_scan(folder), tmp_path / "scan.nii.gz")
    back = load_scan(out)
    assert np.allclose(back.affine, vol.affine, atol=1e-4)
    assert np.array_equal(back.array, vol.array)
    for suffix in (".nrrd", ".mha"):
        other = load_scan(save_volume(back, tmp_path / f"scan{suffix}"))
        assert np.allclose(other.affine, vol.affine, atol=1e-4)


def test_labelmap_written_on_the_input_grid(series_dir, tmp_path):
    folder, vol = series_dir
    arr = np.zeros(vol.shape, np.int16)
    arr[5:10, 5:10, 2:6] = 20
    path = save_labelmap(LabelMap.on_grid(vol, arr), tmp_path / "labels.nii.gz")
    back = load_labels(path, grid=vol)
    assert back.ids() == [20] and back.names[20] == "L1"


def test_missing_path():
    with pytest.raises(InputNotFound, match="does not exist"):
        load_scan("/no/such/scan")


def test_empty_folder(tmp_path):
    with pytest.raises(NoScanFound, match="empty"):
        load_scan(tmp_path)


def test_folder_of_non_dicom_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(NoScanFound, match="No DICOM"):
        load_scan(tmp_path)


def test_garbage_and_truncated_files(tmp_path, series_dir):
    garbage = tmp_path / "broken.nii.gz"
    garbage.write_bytes(b"this is not gzip" * 10)
    with pytest.raises(UnreadableFile, match="broken.nii.gz"):
        load_scan(garbage)
    good = sitk.GetImageFromArray(np.zeros((20, 20, 20), np.int16))
    sitk.WriteImage(good, str(tmp_path / "whole.nii"))
    data = (tmp_path / "whole.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFile):
        load_scan(tmp_path / "cut.nii")
    folder, _ = series_dir
    victim = sorted(folder.iterdir())[4]
    raw = victim.read_bytes()
    victim.write_bytes(raw[: len(raw) - 1000])
    with pytest.raises(SpineError):
        load_scan(folder)


def test_series_with_a_missing_slice(series_dir):
    folder, _ = series_dir
    sorted(folder.iterdir())[5].unlink()
    with pytest.raises(IncompleteSeries, match="missing about 1 slice"):
        load_scan(folder)


def test_a_reference_image_in_another_plane_is_left_out_with_a_warning(series_dir):
    """Reformatted series (e.g. ricord_sagittal_reformat) can carry one image in another plane under
    the same series UID, at the position of a real slice."""
    folder, vol = series_dir
    first = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(first)
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]          # coronal
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "reference.dcm")
    loaded = load_scan(folder)
    assert loaded.shape == vol.shape and np.array_equal(loaded.array, vol.array)
    assert any("another plane" in w for w in loaded.metadata.warnings)


def test_uneven_spacing_is_resampled_with_a_warning(tmp_path):
    vol = make_volume(shape=(20, 20, 10), spacing=(1, 1, 2))
    write_dicom_series(vol, tmp_path / "s")
    victim = sorted((tmp_path / "s").iterdir())[4]
    ds = pydicom.dcmread(victim)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.4
    ds.save_as(victim)
    loaded = load_scan(tmp_path / "s")
    assert any("spacing varies" in w for w in loaded.metadata.warnings)
    assert np.allclose(loaded.spacing, [1, 1, 2], atol=1e-6)


def test_gantry_tilt_is_resampled_onto_an_axial_grid(tmp_path):
    vol = make_volume(shape=(30, 30, 10), spacing=(1, 1, 2))
    affine = vol.affine.copy()
    affine[1, 2] = 2 * np.tan(np.radians(15))  # each slice shifted in y: a 15 degree gantry tilt
    i, j, k = np.indices(vol.shape)
    smooth = (10 * i + 20 * j + 30 * k).astype(np.int16)  # linear: interpolation is exact
    tilted = Volume(smooth, affine)
    write_dicom_series(tilted, tmp_path / "tilt")
    loaded = load_scan(tmp_path / "tilt")
    assert any("gantry tilt of 15.0" in w for w in loaded.metadata.warnings)
    cols = loaded.affine[:3, :3]
    assert abs(cols[:, 2] @ cols[:, 1]) < 1e-6  # orthogonal now
    # A voxel in the middle keeps its physical value.
    centre_lps = tilted.index_to_lps([15, 15, 5])
    from scipy import ndimage

    ijk = loaded.lps_to_index(centre_lps)
    value = ndimage.map_coordinates(loaded.array.astype(float), ijk[:, None], order=1)[0]
    assert value == pytest.approx(tilted.array[15, 15, 5], abs=2)


def test_two_series_default_to_the_largest_ct_axial_with_a_warning(tmp_path):
    write_dicom_series(make_volume(shape=(20, 20, 8)), tmp_path / "a", DicomOptions(series_number=1))
    write_dicom_series(make_volume(shape=(20, 20, 12)), tmp_path / "b", DicomOptions(series_number=2))
    series = list_series(tmp_path)
    assert [s.n_slices for s in series] == [12, 8]
    loaded = load_scan(tmp_path)
    assert loaded.shape[2] == 12 and any("2 series" in w for w in loaded.metadata.warnings)
    assert load_scan(tmp_path, series=series[1].uid).shape[2] == 8


def test_two_equal_series_ask_for_a_choice(tmp_path):
    write_dicom_series(make_volume(shape=(20, 20, 8)), tmp_path / "a")
    write_dicom_series(make_volume(shape=(20, 20, 8), seed=2), tmp_path / "b")
    with pytest.raises(MultipleSeries, match="choose one") as info:
        load_scan(tmp_path)
    assert len(info.value.series) == 2


def test_2d_inputs_are_refused(tmp_path):
    write_dicom_series(make_volume(shape=(20, 20, 1)), tmp_path / "one")
    with pytest.raises(UnsupportedImage, match="2D"):
        load_scan(tmp_path / "one")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 20), np.int16)), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(UnsupportedImage, match="2D"):
        load_scan(tmp_path / "flat.nii.gz")


def test_mr_where_ct_is_expected(tmp_path):
    write_dicom_series(make_volume(), tmp_path / "mr", DicomOptions(modality="MR"))
    loaded = load_scan(tmp_path / "mr", expect_modality="CT")
    assert loaded.metadata.modality == "MR"
    assert any("MR scan but CT is expected" in w for w in loaded.metadata.warnings)
    with pytest.raises(ModalityMismatch, match="Choose a CT series"):
        check_modality(loaded, "CT")


def test_dicom_zip(series_dir, tmp_path):
    folder, vol = series_dir
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"study/series/{f.name}")
    assert np.array_equal(load_scan(archive).array, vol.array)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(UnreadableFile, match="zip"):
        load_scan(tmp_path / "bad.zip")


def test_a_zip_is_unpacked_into_a_temporary_folder_that_always_goes(series_dir, tmp_path, monkeypatch):
    import tempfile

    from spine_core.errors import UnsupportedImage

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder, _ = series_dir
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    load_scan(archive)
    assert list((tmp_path / "tmp").iterdir()) == []           # the patient's copy is gone
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", b"\0" * (20 * 1024 * 1024))   # 20 MB of zeros packs ~1000:1
    with pytest.raises(UnsupportedImage, match="beyond what a scan holds"):
        load_scan(bomb)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_compressed_dicom_via_gdcm(series_dir, tmp_path):
    """A JPEG-LS/J2K series from PACS decodes the same as the uncompressed one."""
    folder, vol = series_dir
    out = tmp_path / "rle"
    out.mkdir()
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        try:
            ds.compress(pydicom.uid.RLELossless)
        except Exception as exc:  # pragma: no cover - encoder availability
            pytest.skip(f"RLE encoder unavailable: {exc}")
        ds.save_as(out / f.name)
    loaded = load_scan(out)
    assert np.array_equal(loaded.array, vol.array)


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os
    import stat


    target = tmp_path / "result.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
