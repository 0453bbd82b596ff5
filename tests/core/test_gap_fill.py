"""Vertebrae the detector missed inside the column (spine_core.pipeline.vertebra_seg.GapFillStage)."""
from types import SimpleNamespace

import numpy as np

from spine_core.pipeline.vertebra_seg import gap_centres, on_spine
from spine_core.volume import Volume


def _chain(levels, pitch=30.0):
    return np.array([[0.0, 0.0, 300.0 - pitch * k] for k in levels])


def test_one_or_two_missed_vertebrae_are_proposed_at_the_local_spacing():
    np.testing.assert_allclose(gap_centres(_chain([0, 1, 2, 4, 5, 6]), 1.6), [[0.0, 0.0, 210.0]])
    np.testing.assert_allclose(gap_centres(_chain([0, 1, 2, 5, 6, 7]), 1.6)[:, 2], [210.0, 180.0])


def test_no_gap_a_short_chain_or_a_broken_chain_proposes_nothing():
    assert len(gap_centres(_chain(range(8)), 1.6)) == 0
    assert len(gap_centres(_chain([0, 2]), 1.6)) == 0                      # two centres: no local spacing
    assert len(gap_centres(_chain([0, 1, 2, 8, 9, 10]), 1.6)) == 0         # five missing: not a gap


def test_proposals_off_the_localizers_spine_are_not_tried():
    mask = np.zeros((20, 20, 40), bool)
    mask[8:12, 8:12, :] = True                                             # a column along z
    location = SimpleNamespace(grid=Volume(np.zeros(mask.shape, np.float32), np.diag([3.0, 3.0, 3.0, 1.0])),
                               mask=mask)
    centres = np.array([[30.0, 30.0, 60.0], [30.0, 57.0, 60.0]])          # on the column; 15 mm beside it
    assert on_spine(location, centres).tolist() == [True, False]


def test_past_the_chains_ends_a_centre_is_proposed_only_where_the_localizers_spine_goes_on():
    from spine_core.pipeline.vertebra_seg import end_centres

    mask = np.zeros((20, 20, 100), bool)
    mask[8:12, 8:12, 20:80] = True                                         # the spine: z 60-240 mm
    location = SimpleNamespace(grid=Volume(np.zeros(mask.shape, np.float32), np.diag([3.0, 3.0, 3.0, 1.0])),
                               mask=mask)
    chain = np.array([[30.0, 30.0, z] for z in (180.0, 150.0, 120.0)])    # found: the middle of it
    proposals = end_centres(chain, location)
    assert len(proposals) == 2
    np.testing.assert_allclose(sorted(proposals[:, 2]), [90.0, 210.0], atol=6.0)
    np.testing.assert_allclose(proposals[:, :2], 28.5, atol=1.0)           # on the mask's own centre line
    ends = np.array([[30.0, 30.0, z] for z in (237.0, 207.0, 177.0, 147.0, 117.0, 87.0, 66.0)])
    assert len(end_centres(ends, location)) == 0                           # the spine ends where the chain does
