"""Real vertebra shapes in the phantom: a small hand-made shape library stands in for the VerSe masks."""
import numpy as np
import pytest
from scipy import ndimage

from spine_core.labels import NAME_TO_ID
from spine_core.phantom import PhantomOptions, ShapeLibrary, VertebraShape, generate_phantom
from spine_core.phantom.anatomy import region_of
from spine_core.phantom.generate import phantom_layout
from spine_core.phantom.real_shapes import choose_shape, level_scale
from spine_core.phantom.vertebra import vertebra_sdf
from spine_core.volume import Volume, affine_from_geometry

BODY = (40.0, 30.0, 24.0)          # width, depth, height of the blobs' bodies (mm)


def blob(arm_mm: float) -> VertebraShape:
    """A vertebra no analytic level looks like: a box-like body and two flat arms going back and
    out from it at 45 degrees (no canal, no transverse or spinous processes), left-right symmetric."""
    u, v, w = np.meshgrid(np.arange(-45, 46.0), np.arange(-25, 61.0), np.arange(-20, 21.0), indexing="ij")
    body = (np.abs(u / 20) ** 4 + np.abs(v / 15) ** 4 <= 1) & (np.abs(w) <= 12)
    arms = (np.abs(np.abs(u) - v) <= arm_mm) & (v >= 8) & (v <= 40) & (np.abs(w) <= 6)
    mask = (body | arms).astype(np.uint8)
    return VertebraShape(Volume(mask, affine_from_geometry((1.0, 1.0, 1.0), None, (-45.0, -25.0, -20.0))),
                         BODY, f"blob{arm_mm}")


@pytest.fixture(scope="module")
def library():
    return ShapeLibrary({"L2": [blob(5.0)], "L3": [blob(6.0)]})


def options(**kw) -> PhantomOptions:
    base = dict(seed=11, first_level="T12", last_level="L5", spacing_mm=(1.2, 1.2, 1.5), fov_mm=220.0,
                centre_on_spine=True, noise_hu=8.0)
    base.update(kw)
    return PhantomOptions(**base)


@pytest.fixture(scope="module")
def real(library):
    return generate_phantom(options(real_shape_p=1.0), shapes=library)


def local_coords(phantom, name, vid):
    """Voxels of the phantom's bounding box around ``name`` in its local frame (mm), and their labels."""
    p = next(q for q in phantom_layout(phantom.options)["placements"] if q.name == name)
    lo = np.floor(phantom.labels.lps_to_index(p.centre - 75)).astype(int)
    hi = np.ceil(phantom.labels.lps_to_index(p.centre + 75)).astype(int)
    box = tuple(slice(max(min(a, b), 0), max(a, b) + 1) for a, b in zip(lo, hi))
    idx = np.argwhere(np.ones(phantom.labels.array[box].shape, bool)) + [s.start for s in box]
    lps = phantom.labels.index_to_lps(idx)
    local = (lps - p.centre) @ p.rot
    near = np.all(np.abs(local - [0, 20, 0]) < [55, 55, 35], axis=1)
    return p, local[near], phantom.labels.array[tuple(idx[near].T)] == vid


def dice(a, b):
    return 2 * np.sum(a & b) / max(np.sum(a) + np.sum(b), 1)


@pytest.mark.parametrize("name, shape", [("L2", 0), ("L3", 1), ("L5", 1)])
def test_levels_take_the_library_shape_scaled_to_the_level(real, library, name, shape):
    """L2 and L3 draw their own blobs, L5 (none of its own) the nearest lumbar one (L3)."""
    vid = NAME_TO_ID[name]
    p, local, labelled = local_coords(real, name, vid)
    source = library.shapes[["L2", "L3"][shape]][0]
    scaled = local / level_scale(p, source)
    index = np.rint(scaled - source.mask.origin).astype(int)
    inside = np.all((index >= 0) & (index < source.mask.shape), axis=1)
    expected = np.zeros(len(local), bool)
    expected[inside] = source.mask.array[tuple(index[inside].T)] > 0
    analytic = vertebra_sdf(*local.T.astype(np.float32), name, p.dims, region_of(name)) < 0
    assert dice(labelled, expected) > 0.8, dice(labelled, expected)
    # Behind the body (bodies look alike) the labels follow the arms, not the arch and processes.
    back = local[:, 1] > 0.6 * p.dims.body_d
    assert dice(labelled[back], expected[back]) > 0.6, dice(labelled[back], expected[back])
    assert dice(labelled[back], analytic[back]) < 0.3, dice(labelled[back], analytic[back])


def test_label_ids_discs_between_and_other_regions_analytic(real):
    ids = set(real.labels.ids())
    assert {NAME_TO_ID[n] for n in ("T12", "L1", "L2", "L3", "L4", "L5", "sacrum")} <= ids
    assert ids <= {NAME_TO_ID[n] for n in ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "sacrum")}
    # T12 is thoracic: no lumbar blob may stand in for it; it keeps its analytic canal (a ring).
    p, local, labelled = local_coords(real, "T12", NAME_TO_ID["T12"])
    analytic = vertebra_sdf(*local.T.astype(np.float32), "T12", p.dims, "thoracic") < 0
    assert dice(labelled, analytic) > 0.85
    # Each blob is one piece, and bone of L2 and L3 never reaches past the disc between them.
    arr = real.labels.array
    for name in ("L1", "L2", "L3", "L4", "L5"):
        _, n = ndimage.label(arr == NAME_TO_ID[name])
        assert n == 1, name
    upper, _, up_lab = local_coords(real, "L2", NAME_TO_ID["L2"])
    _, local, low_lab = local_coords(real, "L2", NAME_TO_ID["L3"])
    lowest_l2 = local[up_lab & (local[:, 1] < 10)][:, 2].min()
    highest_l3 = local[low_lab & (local[:, 1] < 10)][:, 2].max()
    assert highest_l3 < lowest_l2 - 0.3 * upper.disc_below, (highest_l3, lowest_l2)


def test_real_shapes_keep_the_bone_tissue_model(real):
    img, lab = real.image.array.astype(np.float32), real.labels.array
    bone = np.isin(lab, [NAME_TO_ID[n] for n in ("L2", "L3")])
    core = ndimage.binary_erosion(bone, iterations=3)
    rim = bone & ~ndimage.binary_erosion(bone, iterations=1)
    assert np.median(img[rim]) > np.median(img[core]) + 40
    assert 150 < np.median(img[core]) < 400


def test_reproducible_and_off_by_default(library):
    a = generate_phantom(options(real_shape_p=1.0), shapes=library)
    b = generate_phantom(options(real_shape_p=1.0), shapes=library)
    assert np.array_equal(a.image.array, b.image.array) and np.array_equal(a.labels.array, b.labels.array)
    plain = generate_phantom(options())
    for off in (generate_phantom(options(), shapes=library), generate_phantom(options(real_shape_p=1.0))):
        assert np.array_equal(off.image.array, plain.image.array)
        assert np.array_equal(off.labels.array, plain.labels.array)
    # Only the vertebrae change: far from the spine the two scans are the same voxels.
    far = ndimage.distance_transform_edt(plain.labels.array == 0) > 25
    assert np.array_equal(a.image.array[far], plain.image.array[far])


def test_choice_follows_the_seed_and_the_share(library):
    draws = [choose_shape(library, "L2", 0.5, seed) is not None for seed in range(200)]
    assert 70 < sum(draws) < 130
    assert draws == [choose_shape(library, "L2", 0.5, seed) is not None for seed in range(200)]
    assert choose_shape(library, "T12", 1.0, 0) is None          # no thoracic shape within reach
    assert choose_shape(None, "L2", 1.0, 0) is None and choose_shape(library, "L2", 0.0, 0) is None
    assert library.candidates("L1") == library.shapes["L2"]      # the nearest lumbar level
