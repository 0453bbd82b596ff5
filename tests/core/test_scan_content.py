"""The voxels' own evidence: CT or MR when no header says, and noise refused before any model runs."""
import numpy as np
import pytest
from scipy import ndimage

from spine_core.errors import UnsupportedImage
from spine_core.io import load_scan
from spine_core.io.content import guess_modality, structure
from spine_core.phantom import PhantomOptions, generate_phantom
from spine_core.pipeline import check_structure, scan_modality
from spine_core.volume import ScanMetadata, Volume, affine_from_geometry


def _volume(array, modality=""):
    return Volume(array, affine_from_geometry((1.0, 1.0, 2.0), None, (0.0, 0.0, 0.0)),
                  ScanMetadata(modality=modality))


def _phantom_without_tag():
    scan = generate_phantom(PhantomOptions(seed=3, size=0.5)).image
    return Volume(scan.array, scan.affine, ScanMetadata())


@pytest.fixture(scope="module")
def mr_like():
    rng = np.random.default_rng(1)
    return _volume((ndimage.gaussian_filter(rng.random((64, 96, 96)), 2) * 600).astype(np.uint16))


def test_a_ct_in_hounsfield_units_reads_as_ct():
    guess = guess_modality(_phantom_without_tag())
    assert guess.modality == "CT" and "Hounsfield" in guess.reason


def test_non_negative_values_read_as_mr(mr_like):
    guess = guess_modality(mr_like)
    assert guess.modality == "MR" and "not Hounsfield" in guess.reason


def test_a_few_negative_voxels_cannot_be_told_apart(mr_like):
    array = mr_like.array.astype(np.int16)
    array[:, :4, :5] = -200                         # 0.2 %: neither a CT's fat and air nor an MR
    assert guess_modality(_volume(array)).modality == ""


def test_noise_has_no_structure_and_anatomy_has():
    rng = np.random.default_rng(0)
    noise = _volume(rng.integers(-1000, 2000, (60, 80, 80)).astype(np.int16))
    assert structure(noise) < 0.1
    assert structure(_phantom_without_tag()) > 0.8
    assert structure(_volume(np.zeros((30, 30, 30), np.int16))) == 0.0


def test_the_header_wins_then_the_users_word_then_the_values(mr_like):
    assert scan_modality(mr_like) == ("MR", [])
    assert scan_modality(mr_like, "CT") == ("CT", [])
    tagged = _volume(mr_like.array, modality="MR")
    assert scan_modality(tagged) == ("MR", [])
    with pytest.raises(UnsupportedImage, match="header says MR"):
        scan_modality(tagged, "CT")
    with pytest.raises(UnsupportedImage, match="--modality ct"):
        scan_modality(_volume(mr_like.array, modality="OT"))


def test_noise_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(UnsupportedImage, match="no anatomy"):
        check_structure(_volume(rng.normal(0, 400, (60, 120, 120)).astype(np.int16)))
    check_structure(_phantom_without_tag())


def test_an_undecided_scan_is_analysed_as_ct_with_a_note(mr_like):
    array = mr_like.array.astype(np.int16)
    array[:, :4, :5] = -200
    modality, notes = scan_modality(_volume(array))
    assert modality == "CT" and len(notes) == 1 and "--modality mr" in notes[0]


def test_the_shared_scans_are_told_apart(shared_data):
    for case in ("VB2_04", "VB3_02", "IVD_20", "tptbox_cervical"):
        assert guess_modality(load_scan(shared_data / "mr" / case / "image.nii.gz")).modality == "MR", case
    for path in ("ct/verse006/image.nii.gz", "ct/tptbox_lumbar/image.nii.gz",
                 "ct_unlabelled/cptac_abdomen/image.nii.gz"):
        scan = load_scan(shared_data / path)
        assert guess_modality(scan).modality == "CT", path
        assert structure(scan) > 0.5, path
