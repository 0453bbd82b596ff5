"""The generated T2 MR phantom (spine_core.phantom.mr): the reference set of the MR site adaptation's
check. It must look like what the MR sets hold (sagittal stack, bodies and discs labelled, T2 contrast)
and be the same on every site (seeded)."""
import numpy as np
import pytest

from spine_core.labels import DISC_OFFSET, SACRUM
from spine_core.phantom.mr import MRPhantomOptions, generate_mr_phantom
from spine_core.pipeline.pipelines import scan_modality


@pytest.fixture(scope="module")
def phantom():
    return generate_mr_phantom(MRPhantomOptions(seed=31, first_level="L2", width_mm=40.0))


def test_it_is_a_sagittal_mr_stack_routed_to_the_mr_pipeline(phantom):
    image = phantom.image
    assert image.orientation == "IPR" and np.allclose(image.spacing, 1.0)     # as the shared MR sets store it
    assert image.shape[2] == 40 and image.array.dtype == np.uint16
    assert scan_modality(image, "")[0] == "MR"
    assert phantom.labels.same_grid(image)


def test_labels_hold_bodies_and_discs_only(phantom):
    ids = phantom.labels.ids()
    bodies = [i for i in ids if i < DISC_OFFSET]
    discs = [i for i in ids if i >= DISC_OFFSET]
    assert bodies == [20, 21, 22, 23, 24] and SACRUM not in ids            # L2-L5, the sacrum unlabelled
    assert discs == [120, 121, 122, 123, 124]                               # L2/L3 .. L5/S1
    labels = phantom.labels.array
    for i in bodies:                                                        # no arch: ~35 mm deep, not ~90
        depth = np.ptp(np.nonzero(labels == i)[1]) + 1
        assert 20 <= depth <= 50, (i, depth)
    for i in discs:                                                         # between the endplates only
        height = np.ptp(np.nonzero(labels == i)[0]) + 1
        assert height <= 25, (i, height)


def test_t2_contrast_discs_bright_bodies_intermediate_cortex_dark(phantom):
    image, labels = phantom.image.array.astype(float), phantom.labels.array
    body = np.median(image[(labels > 0) & (labels < DISC_OFFSET)])
    disc = np.median(image[labels >= DISC_OFFSET])
    assert disc > 1.3 * body > 0
    assert np.percentile(image, 1) < 0.2 * body                             # air and cortex


def test_the_same_seed_gives_the_same_phantom(phantom):
    again = generate_mr_phantom(MRPhantomOptions(seed=31, first_level="L2", width_mm=40.0))
    assert np.array_equal(again.image.array, phantom.image.array)
    assert np.array_equal(again.labels.array, phantom.labels.array)
