"""CT-physics refinement of vertebra masks (spine_core.pipeline.bone_refine) on small synthetic CTs."""
import numpy as np

from spine_core.pipeline.bone_refine import BoneRefineOptions, refine_owner

SPACING = (1.0, 1.0, 1.0)


def _two_vertebrae():
    """Two 'bodies' (cortical shell 700 HU around 120 HU cancellous, which alone reads like soft
    tissue) stacked along z with a 60 HU disc between, each with a 'posterior arch' attached in +y;
    fat (-100 HU) around."""
    hu = np.full((40, 50, 50), -100.0, np.float32)
    truth = np.zeros(hu.shape, np.int16)
    for vid, (z0, z1) in enumerate(((5, 22), (27, 44)), start=1):
        hu[10:30, 8:28, z0:z1] = 700.0
        hu[12:28, 10:26, z0 + 1:z1 - 1] = 120.0
        hu[17:23, 28:42, z0 + 4:z1 - 4] = 600.0          # pedicles + arch, joined to the body
        truth[10:30, 8:28, z0:z1] = vid
        truth[17:23, 28:42, z0 + 4:z1 - 4] = vid
    hu[10:30, 8:28, 22:27] = 60.0                         # the disc
    return hu, truth


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_half_segmented_bodies_grow_into_their_own_bone():
    hu, truth = _two_vertebrae()
    owner = np.where((truth > 0) & (np.arange(50)[None, :, None] < 20), truth, 0).astype(np.int16)
    owner[:, :, :] = np.where(np.arange(40)[:, None, None] < 20, owner, 0)   # left half of the bodies only
    spine = np.ones(hu.shape, bool)
    refined = refine_owner(owner, hu, spine, SPACING, BoneRefineOptions(grow_mm=25.0))
    for vid in (1, 2):
        assert _dice(owner == vid, truth == vid) < 0.6
        assert _dice(refined == vid, truth == vid) > 0.95, vid
    # the disc is not bone: neither vertebra takes it
    assert not refined[12:28, 10:26, 23:26].any()


def test_refinement_keeps_ids_drops_fat_and_stays_inside_the_spine():
    hu, truth = _two_vertebrae()
    hu[34:39, 10:20, 5:22] = 800.0                       # a rib-like bone beside vertebra 1
    owner = truth.copy()
    owner[30:32, 8:28, 5:22] = 1                          # mask spilled into fat
    spine = np.zeros(hu.shape, bool)
    spine[8:34] = True                                    # the localizer's spine ends before the rib
    refined = refine_owner(owner, hu, spine, SPACING)
    assert set(np.unique(refined)) == {0, 1, 2}
    assert not refined[31, 8:28, 5:22].any()              # fat removed (the voxel touching the cortex
    # reads as bone after partial-volume smoothing, like on a scan)
    assert not refined[34:39].any()                       # the rib outside the spine is not taken
    assert _dice(refined > 0, truth > 0) > 0.95


def test_an_instance_on_no_bone_keeps_its_mask():
    hu = np.full((20, 20, 20), -100.0, np.float32)
    owner = np.zeros(hu.shape, np.int16)
    owner[5:10, 5:10, 5:10] = 3
    refined = refine_owner(owner, hu, np.ones(hu.shape, bool), SPACING)
    assert (refined == owner).all()


def _arch_only_spine():
    """Three stacked vertebrae along z as on a real thick-slice CT where the networks found only the
    middle one's arch: bodies (120 HU cancellous in a 700 HU shell) 40 mm wide, 30 mm deep; the
    localizer's spine covers the arches only; the arches touch at their facets; an 'ilium' plate
    touches the middle body 30-45 mm left of the midline."""
    hu = np.full((100, 80, 80), -100.0, np.float32)
    truth = np.zeros(hu.shape, np.int16)
    for vid, (z0, z1) in enumerate(((2, 24), (28, 50), (54, 76)), start=1):
        hu[30:70, 10:40, z0:z1] = 700.0
        hu[32:68, 12:38, z0 + 1:z1 - 1] = 120.0
        hu[44:56, 40:62, z0 + 4:z1 - 4] = 600.0          # pedicles + arch
        truth[30:70, 10:40, z0:z1] = vid
        truth[44:56, 40:62, z0 + 4:z1 - 4] = vid
    hu[44:56, 50:58, 18:60] = 600.0                       # facet joints: the arches touch
    hu[5:20, 15:35, 30:48] = 700.0                        # 'ilium', touching the middle body
    hu[20:30, 20:30, 36:42] = 700.0
    owner = np.where((truth == 2) & (np.arange(80)[None, :, None] >= 40), 2, 0).astype(np.int16)
    spine = np.zeros(hu.shape, bool)
    spine[40:60, 38:64] = True
    return hu, truth, owner, spine


def test_body_completion_fills_a_missed_body_within_its_own_column():
    hu, truth, owner, spine = _arch_only_spine()
    without = refine_owner(owner, hu, spine, SPACING, BoneRefineOptions(body_reach_mm=0.0))
    refined = refine_owner(owner, hu, spine, SPACING)
    assert _dice(without == 2, truth == 2) < 0.4           # the 12 mm growth inside the localizer's spine
    assert _dice(refined == 2, truth == 2) > 0.9
    assert not refined[5:20].any()                         # the 'ilium' is outside the body's column
    bodies = np.zeros(hu.shape, bool)
    bodies[:, :40] = True
    assert not refined[bodies & ((truth == 1) | (truth == 3))].any()   # nor the missed neighbours' bodies
    assert not without[bodies & ((truth == 1) | (truth == 3))].any()
    assert set(np.unique(refined)) == {0, 2}


def test_noise_specks_inside_a_body_are_filled_but_foramina_and_the_canal_stay_open():
    """Dark cancellous bone (40 HU) on a noisy 1.5 mm scan (noise sd 100 HU) reads below 0 HU in
    places; those voxels, dropped as non-bone, would pock the body. A 6 mm wide foramen and the
    18 mm canal are openings, not specks."""
    hu, truth = _two_vertebrae()
    rng = np.random.default_rng(0)
    cancellous = np.zeros(hu.shape, bool)
    cancellous[12:22, 10:26, 6:21] = True
    hu[cancellous] = 40.0 + rng.normal(0.0, 100.0, int(cancellous.sum()))
    hu[22:28, 10:26, 6:21] = 700.0                        # thick cortex around the foramen
    canal = np.zeros(hu.shape, bool)
    canal[14:26, 30:40, :] = True                         # a tunnel through the whole arch, open at both ends
    hu[canal & (truth == 1)] = 10.0
    foramen = (slice(24, 28), slice(14, 18), slice(5, 22))
    hu[foramen] = -100.0                                  # a 6 mm wide foramen (fat) through the body
    truth1 = (truth == 1) & ~canal
    truth1[foramen] = False
    owner = np.where(truth1, 1, 0).astype(np.int16)
    spine = np.ones(hu.shape, bool)
    spacing = (1.5, 1.5, 1.5)
    pocked = refine_owner(owner, hu, spine, spacing, BoneRefineOptions(speckle_mm2=0.0))
    filled = refine_owner(owner, hu, spine, spacing)
    inner = cancellous & truth1
    assert (pocked[inner] == 0).sum() > 50                # without the fill, the body is pocked
    assert (filled[inner] == 1).all()
    for opening in (canal & (truth == 1), foramen):
        assert (filled[opening] == pocked[opening]).all()  # the fill adds nothing there
    assert not filled[canal & (truth == 1)].any()
    assert (filled[foramen] == 0).mean() > 0.5


def test_a_canal_the_networks_leave_open_stays_open_however_bright():
    """On an enhanced chest CT the canal reads ~140 HU (enhancing veins, beam hardening), like bone;
    the networks ring it with the pedicles and laminae and leave it open, and so must the growth into
    bone. A body the networks missed (arch only) is still completed."""
    hu = np.full((60, 70, 40), -100.0, np.float32)
    hu[15:45, 5:30, 5:35] = 700.0                         # body: cortical shell
    hu[17:43, 7:28, 6:34] = 200.0                         # cancellous interior
    hu[20:40, 30:50, 10:30] = 600.0                       # pedicles and laminae
    canal = np.zeros(hu.shape, bool)
    canal[24:36, 32:46, :] = True                         # a tunnel through the ring
    hu[canal] = 140.0
    owner = np.zeros(hu.shape, np.int16)
    owner[15:45, 5:30, 5:35] = 1
    owner[20:40, 30:50, 10:30] = 1
    owner[canal] = 0                                      # the networks leave the canal open
    spine = np.ones(hu.shape, bool)
    filled = refine_owner(owner, hu, spine, SPACING, BoneRefineOptions(open_min_mm2=0.0))
    kept_open = refine_owner(owner, hu, spine, SPACING)
    in_ring = canal & (np.arange(40)[None, None, :] >= 10) & (np.arange(40)[None, None, :] < 30)
    assert (filled[in_ring] == 1).mean() > 0.9            # the old growth took it as bone
    assert not kept_open[in_ring].any()
    assert (kept_open[owner == 1] == 1).all()
    arch_only = np.where(np.arange(70)[None, :, None] >= 30, owner, 0).astype(np.int16)
    completed = refine_owner(arch_only, hu, spine, SPACING)
    assert (completed[15:45, 5:30, 10:30] == 1).mean() > 0.9
    assert not completed[in_ring].any()
    # a slit the networks left inside the body reads like the marrow around it: that is bone, filled
    slit = np.zeros(hu.shape, bool)
    slit[22:38, 12:20, 15:18] = True                      # 128 mm^2 on each slice
    refined = refine_owner(np.where(slit, 0, owner).astype(np.int16), hu, spine, SPACING)
    assert (refined[slit] == 1).all() and not refined[in_ring].any()
