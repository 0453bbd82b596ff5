import numpy as np
import pytest

from spine_core.labels import CRANIOCAUDAL, label_color, label_name
from spine_core.volume import LabelMap, Volume, affine_from_geometry, orientation_code


def test_geometry_is_derived_from_the_affine():
    direction = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # PIR-like file layout
    vol = Volume(np.zeros((4, 5, 6), np.int16), affine_from_geometry([1.0, 2.0, 3.0], direction, [5, 6, 7]))
    assert np.allclose(vol.spacing, [1, 2, 3])
    assert np.allclose(vol.direction, direction)
    assert np.allclose(vol.origin, [5, 6, 7])
    assert orientation_code(vol.affine) == "AIL"
    ijk = np.array([[1, 2, 3], [0, 0, 0], [3.5, 4, 5]])
    assert np.allclose(vol.lps_to_index(vol.index_to_lps(ijk)), ijk)
    assert np.allclose(vol.index_to_lps([1, 0, 0]), [5, 5, 7])


def test_volume_is_frozen_and_checks_its_inputs():
    vol = Volume(np.zeros((2, 2, 2)), np.eye(4))
    with pytest.raises(Exception):
        vol.array = np.ones((2, 2, 2))
    with pytest.raises(ValueError):
        vol.affine[0, 0] = 5
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 2, 2)), np.zeros((4, 4)))


def test_patient_id_stays_out_of_reprs():
    from spine_core.volume import ScanMetadata

    vol = Volume(np.zeros((2, 2, 2)), np.eye(4), ScanMetadata(modality="CT", patient_id="SECRET-123"))
    assert "SECRET" not in repr(vol) and "SECRET" not in repr(vol.metadata)


def test_labelmap_names_follow_verse_conventions():
    arr = np.zeros((4, 4, 4), np.int16)
    arr[0, 0, 0], arr[1, 1, 1], arr[2, 2, 2], arr[3, 3, 3] = 1, 20, 123, 26
    labels = LabelMap(arr, np.eye(4))
    assert labels.names == {1: "C1", 20: "L1", 123: "L4/L5", 26: "sacrum"}
    assert labels.ids() == [1, 20, 26, 123]
    with pytest.raises(ValueError):
        LabelMap(np.zeros((2, 2, 2), np.float32), np.eye(4))


def test_label_conventions():
    assert [label_name(i) for i in (7, 8, 19, 20, 24, 25, 26, 28)] == \
        ["C7", "T1", "T12", "L1", "L5", "L6", "sacrum", "T13"]
    assert label_name(124) == "L5/S1" and label_name(105) == "C5/C6" and label_name(119) == "T12/L1"
    assert CRANIOCAUDAL.index(28) == CRANIOCAUDAL.index(19) + 1
    colours = {label_color(i) for i in CRANIOCAUDAL}
    assert len(colours) >= 6 and label_color(20) != label_color(21)
