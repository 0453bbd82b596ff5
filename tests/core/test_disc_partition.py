"""Masks re-divided at the column's discs (spine_core.pipeline.discs.partition_at_discs): a mask
running across a disc is cut there, its far part given to the vertebra beyond or made a vertebra of
its own, and nothing changes where the bone shows no disc with endplates on both sides."""
import numpy as np
import pytest

from spine_core.pipeline.discs import partition_at_discs
from spine_core.pipeline.stages import Instances
from spine_core.volume import Volume

BODY, DISC, PLATE = 25, 8, 2          # mm: body height (endplates included), disc, endplate


def _column(cancellous=250.0, n=4):
    """HU on a 1 mm LPS grid (z up) with ``n`` cylindrical bodies, and the z range of each (top first)."""
    shape = (60, 60, n * (BODY + DISC) + 20)
    hu = np.full(shape, 20.0, np.float32)
    x, y = np.ogrid[:shape[0], :shape[1]]
    disc_xy = (x - 30) ** 2 + (y - 25) ** 2 <= 15 ** 2
    bodies = []
    top = shape[2] - 10
    for i in range(n):
        lo, hi = top - BODY, top
        column = np.full(BODY, cancellous, np.float32)
        column[:PLATE] = column[-PLATE:] = 600.0
        hu[disc_xy, lo:hi] = column
        if i < n - 1:
            hu[disc_xy, lo - DISC:lo] = 80.0
        bodies.append((lo, hi))
        top = lo - DISC
    return hu, bodies, disc_xy


def _instances(shape, disc_xy, pieces):
    owner = np.zeros(shape, np.int16)
    for value, (lo, hi) in enumerate(pieces, start=1):
        owner[disc_xy, lo:hi] = value
    grid = Volume(np.zeros(shape, np.float32), np.eye(4))
    centres = np.array([[30.0, 25.0, (lo + hi) / 2] for lo, hi in pieces])
    return Instances(grid, owner, centres, np.ones(len(pieces)))


def _labels_per_body(owner, disc_xy, bodies):
    return [set(np.unique(owner[disc_xy, lo:hi]).tolist()) - {0} for lo, hi in bodies]


def test_right_masks_are_left_alone():
    hu, bodies, xy = _column()
    owner, handed, added = partition_at_discs(_instances(hu.shape, xy, bodies), hu)
    assert (handed, added) == (0, 0)


def _across_a_disc(bodies):
    """Body 3's top 8 mm went with body 2's mask: that part goes back to body 3's mask."""
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = bodies
    return [(a0, a1), (c1 - 8, b1), (c0, c1 - 8), (d0, d1)]


def _two_bodies_as_one(bodies):
    """Bodies 2 and 3 (and their disc) as one mask: split into two vertebrae."""
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = bodies
    return [(a0, a1), (c0, b1), (d0, d1)]


@pytest.mark.parametrize("pieces, expected", [(_across_a_disc, (1, 0)), (_two_bodies_as_one, (0, 1))])
def test_a_mask_running_across_a_disc_is_cut_there(pieces, expected):
    hu, bodies, xy = _column()
    owner, handed, added = partition_at_discs(_instances(hu.shape, xy, pieces(bodies)), hu)
    assert (handed, added) == expected
    per_body = _labels_per_body(owner, xy, bodies)
    assert all(len(labels) == 1 for labels in per_body) and len(set().union(*per_body)) == 4


def test_pieces_of_one_body_are_left_for_the_user():
    hu, bodies, xy = _column()
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = bodies
    mid = (b0 + b1) // 2
    pieces = [(a0, a1), (mid, b1), (b0, mid), (c0, c1), (d0, d1)]
    owner, handed, added = partition_at_discs(_instances(hu.shape, xy, pieces), hu)
    assert (handed, added) == (0, 0)


def test_dark_cancellous_bone_beside_an_endplate_is_not_taken_for_a_disc():
    hu, bodies, xy = _column(cancellous=30.0)       # discs (80 HU) brighter than the bone inside
    (a0, a1), (b0, b1), (c0, c1), (d0, d1) = bodies
    pieces = [(a0, a1), (c0, b1), (d0, d1)]
    owner, handed, added = partition_at_discs(_instances(hu.shape, xy, pieces), hu)
    assert (handed, added) == (0, 0)
