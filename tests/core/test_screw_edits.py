"""Screws drawn and moved by hand (spine_core.planning.edits): the vertebra and side they get, their size, the
undoable step that records them."""
import numpy as np
import pytest

from spine_core.measure.pedicles import Pedicle
from spine_core.planning.edits import (DEFAULT_DIAMETER_MM, ScrewEdit, ScrewPlacementError, fitting_diameter,
                                       moved_screw, place_screw, sort_screws, unchecked, vertebra_along,
                                       with_length)
from spine_core.volume import LabelMap, affine_from_geometry

L3, L4 = 22, 23


@pytest.fixture(scope="module")
def labels():
    """Two boxes, L3 above L4, 1 mm voxels on an LPS grid from (-30, -30, 0)."""
    array = np.zeros((60, 60, 60), np.int16)
    array[10:50, 10:50, 32:55] = L3
    array[10:50, 10:50, 5:28] = L4
    return LabelMap(array, affine_from_geometry((1.0, 1.0, 1.0), None, (-30.0, -30.0, 0.0)))


CENTROIDS = {L3: np.array([0.0, 0.0, 43.0]), L4: np.array([0.0, 0.0, 16.0])}


def test_a_drawn_screw_belongs_to_the_vertebra_it_runs_through_on_the_side_of_its_entry(labels):
    left = place_screw(labels, (8.0, 15.0, 16.0), (3.0, -10.0, 16.0), CENTROIDS)
    assert (left.vertebra, left.side, left.source, left.length_mm) == ("L4", "left", "user", 25.5)
    assert left.diameter_mm == DEFAULT_DIAMETER_MM and left.min_cortex_distance_mm is None
    # mostly through L3 although its entry lies in L4's top
    right = place_screw(labels, (-8.0, 15.0, 27.0), (-8.0, -15.0, 40.0), CENTROIDS)
    assert (right.vertebra, right.side) == ("L3", "right")
    assert vertebra_along(labels, (-30.0, -30.0, 0.0), (-25.0, -25.0, 0.0)) is None
    with pytest.raises(ScrewPlacementError, match="through a vertebra"):
        place_screw(labels, (-29.0, -29.0, 1.0), (-29.0, -10.0, 1.0), CENTROIDS)
    with pytest.raises(ScrewPlacementError, match="at least"):
        place_screw(labels, (0.0, 0.0, 16.0), (0.0, 5.0, 16.0), CENTROIDS)


def test_the_diameter_follows_the_pedicle_like_a_suggestion():
    pedicle = Pedicle(L4, "L4", "left", found=True, width_mm=7.6, height_mm=12.0)
    assert fitting_diameter(pedicle) == 6.0                     # <= 80 % of 7.6 mm
    assert fitting_diameter(Pedicle(L4, "L4", "left", found=True, width_mm=3.0, height_mm=9.0)) == 3.5
    assert fitting_diameter(None) == DEFAULT_DIAMETER_MM


def test_moving_an_end_clears_the_check_and_an_edit_undoes_as_a_whole(labels):
    screw = place_screw(labels, (8.0, 15.0, 16.0), (3.0, -10.0, 16.0), CENTROIDS)
    checked = screw.__class__(**{**screw.to_dict(), "min_cortex_distance_mm": 1.2, "grade": "A"})
    moved = moved_screw(labels, checked, CENTROIDS, tip=(3.0, -10.0, 44.0))
    assert moved.vertebra == "L3" and moved.grade is None and moved.entry_lps == checked.entry_lps
    longer = with_length(labels, checked, CENTROIDS, 20.0)
    assert longer.length_mm == 20.0 and longer.entry_lps == checked.entry_lps
    assert unchecked(checked).min_cortex_distance_mm is None
    edit = ScrewEdit("Move", (checked,), (moved,))
    assert edit.inverse().after == (checked,) and not edit.touched and not edit.is_remap and edit.nbytes > 0
    assert [s.vertebra for s in sort_screws([moved, checked])] == ["L3", "L4"]
