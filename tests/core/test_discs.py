"""Vertebrae missed between two discs of the column (spine_core.pipeline.discs)."""
import numpy as np
from scipy import ndimage

from spine_core.pipeline.discs import DiscOptions, body_centres, column_profile, find_discs, missed_between_discs
from spine_core.pipeline.stages import Instances
from spine_core.volume import Volume

PITCH = 26.0            # disc centre to disc centre, mm (a thoracic body and its disc)
SPACING = 1.0


def _column(cancellous=250.0, endplate=450.0, disc=90.0, n=8):
    """HU on a 1 mm grid: a column of ``n`` bodies (x, y 10-40 mm: body in front, arch behind from y 40-70)
    along z, a disc every ``PITCH`` mm, and each body's z-range."""
    shape = (50, 80, int(n * PITCH) + 20)
    hu = np.full(shape, 20.0, np.float32)            # soft tissue
    bodies = []
    for k in range(n):
        top = shape[2] - 10 - k * PITCH               # z index of the disc above body k (cranial first)
        z0, z1 = int(top - PITCH + 3), int(top - 3)   # 6 mm disc, endplates 2 mm
        hu[10:40, 10:40, z0:z1] = cancellous
        hu[10:40, 10:40, z0:z0 + 2] = endplate
        hu[10:40, 10:40, z1 - 2:z1] = endplate
        hu[10:40, 10:40, z1:int(top + 3)] = disc
        hu[20:30, 40:70, z0 + 4:z1 - 4] = 600.0      # the arch
        bodies.append((z0, z1))
    return hu, bodies


def _instances(hu, bodies, found):
    owner = np.zeros(hu.shape, np.int16)
    for label, k in enumerate(found, start=1):
        z0, z1 = bodies[k]
        owner[10:40, 10:70, z0:z1][hu[10:40, 10:70, z0:z1] > 150] = label
    grid = Volume(np.zeros(hu.shape, np.uint8), np.diag([SPACING, SPACING, SPACING, 1.0]))
    labels = list(range(1, len(found) + 1))
    centres = grid.index_to_lps(np.array(ndimage.center_of_mass(owner > 0, owner, labels)).reshape(-1, 3))
    return Instances(grid, owner, centres, np.ones(len(found)))


def test_the_discs_of_a_column_are_found_a_pitch_apart():
    hu, bodies = _column()
    inst = _instances(hu, bodies, range(8))
    points, arc, profile = column_profile(hu, inst.grid, body_centres(inst))
    discs = find_discs(arc, profile)
    assert len(discs) == 7                         # between eight bodies
    np.testing.assert_allclose(np.diff(discs), PITCH, atol=1.5)


def test_every_other_vertebra_missed_is_proposed_between_its_discs():
    hu, bodies = _column()
    inst = _instances(hu, bodies, [0, 2, 4, 6])     # the detector's every-other failure (ricord_chest)
    proposals = missed_between_discs(inst, hu)
    assert len(proposals) == 3
    expected = [inst.grid.index_to_lps(np.array([[25.0, 40.0, (bodies[k][0] + bodies[k][1]) / 2]]))[0, 2]
                for k in (1, 3, 5)]
    np.testing.assert_allclose(sorted(proposals[:, 2], reverse=True), expected, atol=3.0)
    assert np.all(proposals[:, 1] > 25.0)           # moved back from the body towards the arch, like its neighbours


def test_nothing_is_proposed_where_every_vertebra_is_found_or_the_bone_shows_no_discs():
    hu, bodies = _column()
    assert len(missed_between_discs(_instances(hu, bodies, range(8)), hu)) == 0
    soft, bodies = _column(cancellous=100.0, endplate=110.0, disc=90.0)   # osteoporotic, thick slices
    assert len(missed_between_discs(_instances(soft, bodies, [0, 2, 4, 6]), soft)) == 0


def test_one_missed_vertebra_is_proposed_once_and_only_where_its_neighbours_leave_room():
    hu, bodies = _column()
    assert len(missed_between_discs(_instances(hu, bodies, [0, 1, 3, 4]), hu)) == 1
    # neighbours two slots apart leave room for one; asking for three slots of room (as where masks are
    # split, so found centres sit closer than their bodies) proposes nothing
    assert len(missed_between_discs(_instances(hu, bodies, [0, 2, 4, 6]), hu, DiscOptions(room=3.0))) == 0
