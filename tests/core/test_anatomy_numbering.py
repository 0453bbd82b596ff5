"""Numbering from anatomy and the off-spine filter (spine_core.pipeline.ribs, .off_spine) on
synthetic geometry: a chain of vertebrae with ribs on the upper ones only."""
import numpy as np

from spine_core.labels import SACRUM
from spine_core.pipeline.off_spine import chains, detached, off_spine
from spine_core.pipeline.ribs import RibOptions, find_t12, last_rib_z, levels_from_t12
from spine_core.volume import Volume, affine_from_geometry

T10, T11, T12, L1, L2, L3, L4, L5 = 17, 18, 19, 20, 21, 22, 23, 24
PITCH = 32.0


def _chain(n, top=300.0):
    return np.array([[0.0, 0.0, top - PITCH * k] for k in range(n)])


def test_an_anterior_structure_off_the_chain_is_dropped_a_scoliotic_chain_is_not():
    centres = _chain(8)
    centres[:, 0] = np.linspace(0.0, 50.0, 8)                 # 7 mm lateral shift per level
    assert not off_spine(centres).any()
    with_hyoid = np.vstack([centres[:3], [[0.0, -70.0, centres[2, 2] - 10.0]], centres[3:]])
    assert off_spine(with_hyoid).tolist() == [False] * 3 + [True] + [False] * 5
    assert not off_spine(_chain(2)).any()                   # too few neighbours to judge


def test_a_pair_far_beside_the_spine_is_dropped_a_chain_beyond_a_gap_in_line_with_it_is_not():
    spine = _chain(8)
    spine[:, 1] = np.linspace(0.0, 90.0, 8)                  # a strongly kyphotic column, ~0.4 mm per mm
    pair = np.array([[-150.0, -150.0, spine[0, 2] + 130.0], [-150.0, -150.0, spine[0, 2] + 100.0]])
    centres = np.vstack([pair, spine])
    assert not off_spine(centres).any()                      # each of the pair is the other's only neighbour
    assert chains(centres).tolist() == [1, 1] + [0] * 8
    assert detached(centres).tolist() == [True, True] + [False] * 8
    # the cervical spine above a 100 mm gap the detector left, 25 mm further forward: one spine
    neck = np.array([[0.0, -25.0, spine[0, 2] + 100.0 + PITCH * k] for k in range(2)])
    assert not detached(np.vstack([neck, spine])).any()
    assert not detached(np.vstack([pair, spine[:2]])).any()  # two chains of two: no longest to judge by


def test_levels_count_from_t12_skip_missed_levels_and_end_in_the_sacrum():
    centres = _chain(9)
    assert levels_from_t12(centres, 2, RibOptions()) == [T10, T11, T12, L1, L2, L3, L4, L5, SACRUM]
    gap = np.delete(_chain(10), 5, axis=0)                    # L3 missed: a double spacing
    assert levels_from_t12(gap, 2, RibOptions()) == [T10, T11, T12, L1, L2, L4, L5, SACRUM, SACRUM]
    assert levels_from_t12(_chain(9), 2, RibOptions()) == [T10, T11, T12, L1, L2, L3, L4, L5, SACRUM]
    assert levels_from_t12(_chain(25), 20, RibOptions()) is None   # more levels above than exist
    # six lumbar-type vertebrae then a sacrum-sized last piece: the sixth is L6; a sacrum split in two
    # similar pieces is not
    six_lumbar = np.array([40.0] * 9 + [90.0])
    assert levels_from_t12(_chain(10), 2, RibOptions(), six_lumbar)[-2:] == [25, SACRUM]
    split_sacrum = np.array([40.0] * 8 + [60.0, 55.0])
    assert levels_from_t12(_chain(10), 2, RibOptions(), split_sacrum)[-2:] == [SACRUM, SACRUM]


def test_the_last_rib_is_the_last_peak_above_a_rib_free_stretch_with_vertebrae():
    opts = RibOptions()
    zs = np.arange(300.0, -100.0, -2.0)
    share = np.where(zs > 150.0, 0.1 * (1 + np.cos(2 * np.pi * zs / PITCH)), 0.0)
    centres_z = _chain(12)[:, 2]
    z = last_rib_z(zs, share, centres_z, opts)
    assert z is not None and 150.0 < z < 150.0 + PITCH
    assert last_rib_z(zs, share, np.array([300.0, 280.0]), opts) is None        # no vertebra in the gap
    ribs_everywhere = 0.1 * (1 + np.cos(2 * np.pi * zs / PITCH))
    assert last_rib_z(zs, ribs_everywhere, centres_z, opts) is None            # a chest scan: no anchor


def _torso(rib_levels: int, n: int = 9) -> tuple[Volume, np.ndarray]:
    """Vertebral bodies every PITCH mm along z; a rib bar behind and beside the upper ``rib_levels``."""
    spacing = 2.0
    shape = (110, 60, 170)                                    # x 220 mm, y 120 mm, z 340 mm
    origin = np.array([-110.0, -60.0, -20.0])
    hu = np.full(shape, 20.0, np.float32)
    x, y, z = [origin[a] + spacing * np.arange(shape[a]) for a in range(3)]
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    centres = _chain(n, top=300.0)
    for k, c in enumerate(centres):
        hu[(np.abs(X) < 18) & (np.abs(Y - c[1]) < 15) & (np.abs(Z - c[2]) < 11)] = 400.0
        if k < rib_levels:                                   # the rib's angle, sloping down laterally
            rib = (np.abs(X) > 30) & (np.abs(X) < 100) & (np.abs(Y - 15) < 5)
            hu[rib & (np.abs(Z - (c[2] - 4 - 0.1 * np.abs(X))) < 4)] = 600.0
    return Volume(hu, affine_from_geometry((spacing,) * 3, None, origin)), centres


def test_t12_is_found_on_a_synthetic_torso_and_not_without_ribs():
    volume, centres = _torso(rib_levels=3)
    assert find_t12(volume, centres) == 2
    volume, centres = _torso(rib_levels=0)
    assert find_t12(volume, centres) is None


def test_rib_bearing_vertebrae_named_lumbar_are_moved_up_to_t12_at_most():
    from spine_core.pipeline.ribs import rib_evidence, thoracic_cap

    assert thoracic_cap([L1, L2, L3]) == [T10, T11, T12]
    assert thoracic_cap([T10, T11]) is None
    assert thoracic_cap([L1, L2, L3], index=1) == [T11, T12, L1]     # the second lowest bears the last ribs
    volume, centres = _torso(rib_levels=9)               # a chest scan: ribs at every vertebra
    evidence = rib_evidence(volume, centres)
    assert evidence.t12_index is None and evidence.rib_bearing_index == len(centres) - 1
    volume, centres = _torso(rib_levels=8)               # ribs end one vertebra above the scan's lowest
    evidence = rib_evidence(volume, centres)
    assert evidence.t12_index is None and evidence.rib_bearing_index == 7


def test_candidates_side_by_side_are_not_a_spine():
    from spine_core.pipeline.off_spine import side_by_side

    assert side_by_side(np.array([[190.0, 2.0, -15.0], [211.0, -9.0, -18.0]]))      # ricord sagittal reformat
    assert not side_by_side(_chain(2))
    assert not side_by_side(_chain(1))


def test_scattered_candidates_over_a_vertebra_height_are_not_refused():
    from spine_core.pipeline.off_spine import side_by_side

    # the joint network on ts_dicom (a 40 mm slab): junk across the body, but the spine is there
    scattered = np.array([[108, 23, -774], [-11, -121, -776], [202, -121, -781], [-5, -106, -790],
                          [111, 22, -796]], float)
    assert not side_by_side(scattered)


def test_levels_without_an_anchor_are_shown_below_the_review_flag_unless_c2_or_the_sacrum_starts_the_count():
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.pipeline.output import UNPROVEN_COUNT_CAP
    from spine_core.pipeline.ribs import RibAnchorStage, RibEvidence
    from spine_core.pipeline.stages import Context, Levels
    from spine_core.review import LOW_CONFIDENCE_BELOW, NOT_ANCHORED_NOTE, UNIDENTIFIED

    def shown(ids, flags=None):
        ctx = Context(volume=None, options=SegmentOptions(), models=None)
        ctx.levels = Levels(list(ids), [0.8] * len(ids), flags or [()] * len(ids))
        RibAnchorStage().postprocess(ctx, RibEvidence(None, None), None)
        assert ctx.levels.ids == list(ids) and ctx.warnings[-1].startswith(NOT_ANCHORED_NOTE)   # names kept
        return ctx.levels.probability, ctx.warnings[-1]

    probability, note = shown([T10, T11, T12, L1])          # a crop: the labeler's outlines alone
    assert max(probability) == UNPROVEN_COUNT_CAP < LOW_CONFIDENCE_BELOW and "uncertain" in note
    assert shown([1, 2, 3, 4])[0] == [0.8] * 4              # C1 at the top: counted from it
    probability, note = shown([L4, L5, SACRUM])             # the sacrum at the bottom: counted from it
    assert probability == [0.8] * 3 and "the sacrum" in note
    assert "placeholders" in shown([1, 2], [(UNIDENTIFIED,)] * 2)[1]
