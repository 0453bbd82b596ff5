"""Vertebral body size as numbering evidence: the measure on masks, the reference table, and its use
in the positional logic (robust to fragments, lower confidence where size cannot tell the levels)."""
import numpy as np

from spine_core.labels import CRANIOCAUDAL
from spine_core.pipeline.sequence import assign_levels
from spine_core.pipeline.sizes import body_dimensions, size_log_likelihood, size_table
from spine_core.volume import Volume

LABEL_IDS = list(range(1, 25)) + [25, 26, 28]


def _vertebra(owner, value, z0, depth, width):
    """A box body ``depth`` (A-P) x ``width`` (L-R) x 20 mm tall, a 12 mm canal behind it, and an
    arch behind the canal, on a 1 mm LPS grid (axis 1 = P, so the body is at low j)."""
    cx = owner.shape[0] // 2
    owner[cx - width // 2:cx - width // 2 + width, 10:10 + depth, z0:z0 + 20] = value
    owner[cx - 15:cx + 15, 10 + depth + 12:10 + depth + 22, z0 + 5:z0 + 20] = value     # arch
    owner[cx - 15:cx - 10, 10 + depth:10 + depth + 12, z0 + 5:z0 + 15] = value          # pedicle
    owner[cx + 10:cx + 15, 10 + depth:10 + depth + 12, z0 + 5:z0 + 15] = value          # pedicle


def test_depth_and_width_are_read_at_the_body_not_the_arch():
    owner = np.zeros((90, 100, 80), np.int16)
    _vertebra(owner, 1, 50, 30, 40)          # LPS z grows upward: value 1 is the cranial one
    _vertebra(owner, 2, 20, 34, 46)
    grid = Volume(np.zeros(owner.shape, np.float32), np.eye(4))
    dims = body_dimensions(owner, grid, 2)
    assert np.allclose(dims, [[30, 40], [34, 46]], atol=2.0)


def test_a_vertebra_without_a_mask_is_not_measured():
    owner = np.zeros((90, 100, 80), np.int16)
    _vertebra(owner, 2, 20, 34, 46)
    dims = body_dimensions(owner, Volume(np.zeros(owner.shape, np.float32), np.eye(4)), 2)
    assert np.isnan(dims[0]).all() and np.isfinite(dims[1]).all()


def test_reference_table_grows_down_the_thoracic_and_lumbar_spine():
    table = {v: np.exp(m) for v, m in size_table().items()}
    assert set(range(2, 25)) <= set(table)
    assert table[9][0] < table[18][0] and table[9][1] < table[18][1]     # T2 < T11, depth and width
    assert table[10][1] < table[23][1]                                   # T3 narrower than L4


def _sizes(levels, scale=1.0):
    table = size_table()
    return np.array([np.exp(table[v]) * scale for v in levels])


def _uniform(n):
    return np.full((n, len(LABEL_IDS)), 1.0 / len(LABEL_IDS))


def _centres(n):
    return np.column_stack([np.zeros(n), np.zeros(n), -30.0 * np.arange(n)])


def test_without_a_labeler_opinion_size_puts_an_upper_thoracic_chain_in_the_upper_thorax():
    truth = [9, 10, 11]                                        # T2-T4 of a patient 8 % larger
    result = assign_levels(_uniform(3), LABEL_IDS, _centres(3), sizes_mm=_sizes(truth, 1.08))
    position = [CRANIOCAUDAL.index(v) for v in result.ids]
    assert abs(position[0] - CRANIOCAUDAL.index(9)) <= 1
    lumbar = assign_levels(_uniform(3), LABEL_IDS, _centres(3), sizes_mm=_sizes([21, 22, 23]))
    assert all(19 <= v <= 26 for v in lumbar.ids)             # T12 .. sacrum: not thoracic
    # lumbar levels differ by a few per cent: size cannot be sure which, and says so
    assert max(lumbar.probability) < 0.9


def test_a_fragment_does_not_drag_the_chain():
    truth = [16, 17, 18, 19, 20, 21]                           # T9-L2
    probs = np.zeros((6, len(LABEL_IDS)))
    for i, v in enumerate(truth):
        probs[i, LABEL_IDS.index(v)] = 0.9
    probs += 0.1 / len(LABEL_IDS)
    sizes = _sizes(truth)
    sizes[3] = (3.5, 4.8)                                      # a sliver where T12 should be measured
    result = assign_levels(probs, LABEL_IDS, _centres(6), sizes_mm=sizes)
    assert result.ids == truth


def test_size_likelihood_prefers_the_true_level_at_the_true_scale():
    levels = [v for v in CRANIOCAUDAL if v in size_table()]
    scales, ll = size_log_likelihood(_sizes([18]), levels)     # T11
    k = int(np.argmin(np.abs(scales)))
    assert levels[int(np.argmax(ll[k, 0]))] in (17, 18, 19)
    assert ll[k, 0, levels.index(18)] > ll[k, 0, levels.index(9)] + 5     # far from T2
