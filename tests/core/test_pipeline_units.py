"""Pipeline building blocks on small synthetic inputs: sliding window, preprocessing, clustering,
fragment removal, labeler input, and the positional labeling logic."""
import numpy as np
import pytest

from spine_core.labels import L6, T13
from spine_core.pipeline.clustering import cluster_centres
from spine_core.pipeline.preprocess import canonical_grid, model_input, resample_image
from spine_core.pipeline.sequence import SequenceOptions, assign_levels, chain, missed_gaps
from spine_core.pipeline.sliding import gaussian_importance, run_whole, sliding_window, window_starts
from spine_core.resample import resample_to_grid
from spine_core.volume import Volume, affine_from_geometry

LABEL_IDS = list(range(1, 25)) + [25, 26, 28]


# Sliding window
def test_gaussian_blend_of_a_constant_model_is_constant():
    image = np.random.default_rng(0).random((1, 50, 37, 21), dtype=np.float32)
    out = sliding_window(image, lambda x: np.full((1, 2, *x.shape[2:]), 3.0, np.float32), (16, 16, 16))
    assert out.shape == (2, 50, 37, 21) and np.allclose(out, 3.0, atol=1e-5)


def test_sliding_window_matches_whole_volume_inference_for_a_pointwise_linear_model():
    image = np.random.default_rng(1).random((1, 45, 30, 70), dtype=np.float32)
    model = lambda x: 2.0 * x - 0.5          # noqa: E731
    out = sliding_window(image, model, (16, 24, 32), overlap=0.5)
    assert np.allclose(out, model(image), atol=1e-5)
    assert np.allclose(run_whole(image, model), model(image), atol=1e-6)


def test_windows_cover_the_volume_with_half_overlap_and_small_volumes_run_once():
    starts = window_starts(100, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 68 and max(np.diff(starts)) <= 16
    calls = []
    out = sliding_window(np.ones((1, 10, 12, 8), np.float32), lambda x: calls.append(x.shape) or x, (16, 16, 16))
    assert calls == [(1, 1, 16, 16, 16)] and out.shape == (1, 10, 12, 8)
    w = gaussian_importance((16, 16, 16))
    assert w.max() == 1.0 and w.min() > 0 and w[8, 8, 8] > w[0, 0, 0]


# Preprocessing
def _phantom_volume(direction, spacing=(1.5, 1.5, 2.0), shape=(30, 30, 24)):
    """A smooth HU field defined in LPS, sampled on a grid of any orientation."""
    direction = np.asarray(direction, float)
    origin = -direction @ (np.asarray(spacing) * (np.asarray(shape) - 1)) / 2
    affine = affine_from_geometry(spacing, direction, origin)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    lps = idx @ affine[:3, :3].T + affine[:3, 3]
    hu = 1000 * np.sin(lps[:, 0] / 9) + 500 * np.cos(lps[:, 1] / 7) + 10 * lps[:, 2]
    return Volume(hu.reshape(shape).astype(np.float32), affine)


@pytest.mark.parametrize("direction", [np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, -1.0])])
def test_any_orientation_gives_the_same_canonical_array(direction):
    ref = _phantom_volume(np.eye(3))
    other = _phantom_volume(direction)
    a = model_input(ref, canonical_grid(ref, [3.0] * 3), [-1000, 2000])
    b = model_input(other, canonical_grid(other, [3.0] * 3), [-1000, 2000])
    assert a.dtype == np.float32 and a.shape == b.shape
    assert np.allclose(a, b, atol=2e-3)


def test_cropped_resampling_equals_whole_scan_resampling():
    """The crop handed to SimpleITK must not change a single value (training parity)."""
    vol = _phantom_volume(np.eye(3), shape=(40, 36, 30))
    theta = np.deg2rad(17)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    vol = Volume(vol.array, affine_from_geometry((1.5, 1.5, 2.0), rot, vol.origin))
    grid = Volume(np.broadcast_to(np.uint8(0), (9, 11, 7)), affine_from_geometry((2.0, 2.0, 2.0), None,
                                                                                 vol.index_to_lps([12, 10, 8])))
    whole = resample_to_grid(vol, grid, fill=-1024.0, labels=False).array
    assert np.array_equal(resample_image(vol, grid), whole)


def test_training_uses_the_same_preprocessing_functions():
    data = pytest.importorskip("training.data")
    from training import tasks

    from spine_core.pipeline import preprocess
    from spine_core.pipeline.preprocess import centre_weight_map

    assert data.canonical_grid is preprocess.canonical_grid and data.scale_window is preprocess.scale_window
    assert "from spine_core.pipeline.preprocess import centre_weight_map" in open(tasks.__file__).read()
    assert centre_weight_map((5, 5, 5), (2, 2, 2), 1.0)[2, 2, 2] == 1.0


def test_labeler_mask_resize_matches_torch_trilinear():
    torch = pytest.importorskip("torch")
    from spine_core.pipeline.labeling import resize_linear

    mask = np.zeros((37, 30, 19), np.float32)
    mask[5:30, 4:22, 3:15] = 1
    ref = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=(48, 48, 24),
                                          mode="trilinear", align_corners=False)[0, 0].numpy()
    assert np.allclose(resize_linear(mask, (48, 48, 24)), ref, atol=1e-5)


# Clustering and fragments
def test_dbscan_gives_one_centre_per_vertebra_and_drops_small_clusters():
    rng = np.random.default_rng(0)
    truth = np.array([[0, 0, 60.0], [0, 2, 30.0], [1, 0, 0.0]])
    points = np.concatenate([c + rng.normal(0, 1.0, (25, 3)) for c in truth] + [[[40, 40, 40]] * 3])
    centres = cluster_centres(points, eps_mm=6.0, min_samples=3, min_fraction=0.2)
    assert len(centres) == 3 and np.allclose(centres, truth, atol=1.0)   # cranial first, noise dropped


def test_fragments_are_removed_keeping_the_part_at_the_centre():
    from spine_core.pipeline.instance_ops import remove_fragments

    owner = np.zeros((20, 20, 20), np.int16)
    owner[2:8, 2:8, 2:8] = 1
    owner[15:17, 15:17, 15:17] = 1           # a fragment far from centre 1
    owner[10:14, 2:6, 2:6] = 2
    remove_fragments(owner, {1: np.array([5.0, 5.0, 5.0]), 2: np.array([12.0, 4.0, 4.0])})
    assert (owner == 1).sum() == 216 and (owner == 2).sum() == 64


def test_labeler_runs_in_overlapping_windows_of_at_most_the_trained_length():
    from spine_core.pipeline.labeling import windowed_probabilities

    seen = []

    def run(masks):
        seen.append(masks.shape[1])
        return np.zeros((1, masks.shape[1], 3), np.float32)

    probs = windowed_probabilities(run, np.zeros((20, 1, 4, 4, 2), np.float32), 12)
    assert max(seen) == 12 and probs.shape == (20, 3) and np.allclose(probs, 1 / 3)


# Positional labeling logic
def _probs(calls, sharp=0.9):
    """Labeler probabilities: each vertebra's argmax is ``calls[i]`` with probability ``sharp``."""
    p = np.full((len(calls), len(LABEL_IDS)), (1 - sharp) / (len(LABEL_IDS) - 1))
    for i, vid in enumerate(calls):
        p[i, LABEL_IDS.index(vid)] = sharp
    return p


def _centres(n, spacing=30.0, gap_after=None):
    z = -spacing * np.arange(n, dtype=float)
    if gap_after is not None:
        z[gap_after + 1:] -= spacing
    return np.column_stack([np.zeros(n), np.zeros(n), z])


def test_duplicate_call_is_renumbered_to_a_consecutive_sequence():
    calls = [15, 16, 16, 18]                       # T8 T9 T9 T11, evenly spaced: a mislabel
    result = assign_levels(_probs(calls), LABEL_IDS, _centres(4))
    assert result.ids == [15, 16, 17, 18] and not any(result.flags)


def test_a_wide_gap_is_a_missed_vertebra_flagged_not_invented():
    calls = [15, 16, 18, 19]                       # T8 T9 T11 T12 with a double distance after T9
    result = assign_levels(_probs(calls), LABEL_IDS, _centres(4, gap_after=1))
    assert result.ids == [15, 16, 18, 19]
    assert result.flags[2] == ("possible missed vertebra above",)
    assert missed_gaps(_centres(6, gap_after=2), 1.6).tolist() == [False] * 3 + [True] + [False] * 2


def test_a_whole_sequence_shift_follows_the_majority():
    calls = [20, 21, 22, 23, 23, 24]               # one wrong call at the bottom
    result = assign_levels(_probs(calls), LABEL_IDS, _centres(6))
    assert result.ids == [19, 20, 21, 22, 23, 24] or result.ids == [20, 21, 22, 23, 24, 26]
    assert len(set(result.ids)) == 6


def test_l6_only_with_evidence_otherwise_a_candidate_flag():
    strong = assign_levels(_probs([19, 20, 21, 22, 23, 24, L6, 26], 0.95), LABEL_IDS, _centres(8))
    assert strong.ids == [19, 20, 21, 22, 23, 24, L6, 26]
    weak = _probs([19, 20, 21, 22, 23, 24, 24, 26], 0.6)
    weak[6, LABEL_IDS.index(L6)] = 0.3              # some support for L6 at the 7th vertebra
    result = assign_levels(weak, LABEL_IDS, _centres(8))
    assert L6 not in result.ids and len(set(result.ids)) == 8
    assert any("L6 candidate" in f for f in result.flags)


def test_t13_candidate_is_flagged_not_silently_numbered():
    p = _probs([17, 18, 19, 20, 21], 0.7)
    p[2, LABEL_IDS.index(T13)] = 0.25
    result = assign_levels(p, LABEL_IDS, _centres(5))
    assert result.ids == [17, 18, 19, 20, 21] and "T13 candidate" in result.flags[2]
    assert T13 not in chain() and chain((T13,)).index(T13) == chain().index(19) + 1


def test_low_variant_margin_is_configurable():
    p = _probs([19, 20, 21, 22, 23, 24, L6, 26], 0.95)
    result = assign_levels(p, LABEL_IDS, _centres(8), SequenceOptions(variant_margin=1e6))
    assert L6 not in result.ids and any("L6 candidate" in f for f in result.flags)


def test_lateral_peaks_of_one_vertebra_form_one_cluster_and_pelvis_is_dropped():
    from spine_core.pipeline.clustering import cluster_centres
    from spine_core.pipeline.detect import DetectOptions, drop_off_midline

    rng = np.random.default_rng(0)
    points = []
    for s in (0.0, 30.0, 60.0, 90.0):                       # four vertebrae 30 mm apart
        for lateral in (-24.0, -10.0, 0.0, 10.0, 24.0):     # pedicles and processes peak too
            points.append(rng.normal([lateral, 0.0, s], 1.0, (4, 3)))
    points.append(rng.normal([-60.0, 10.0, -20.0], 1.0, (12, 3)))   # an iliac wing
    points = np.concatenate(points)
    o = DetectOptions()
    centres = cluster_centres(points, 6.0, axis_scale=(o.lateral_scale, 1.0, 1.0))
    centres = drop_off_midline(centres, o.max_off_midline_mm)
    assert len(centres) == 4
    assert np.allclose(centres[:, 2], [90, 60, 30, 0], atol=2) and np.all(np.abs(centres[:, 0]) < 3)


def test_midline_follows_a_scoliotic_curve():
    from spine_core.pipeline.detect import drop_off_midline

    s = np.arange(0, 300, 30.0)
    centres = np.column_stack([40 * np.sin(s / 300 * np.pi), np.zeros_like(s), s])   # 40 mm apex shift
    assert len(drop_off_midline(centres, 30.0)) == len(centres)


def test_more_candidates_than_levels_are_trimmed_not_a_crash():
    from types import SimpleNamespace

    from spine_core.pipeline.instance_ops import keep_at_most_levels
    from spine_core.pipeline.sequence import chain
    from spine_core.pipeline.stages import Instances
    from spine_core.labels import L6, T13

    n = len(chain((T13, L6))) + 3
    owner = np.arange(1, n + 1, dtype=np.int16).reshape(n, 1, 1)
    grid = Volume(np.zeros((n, 1, 1), np.int16), np.eye(4))
    confidence = np.linspace(1.0, 0.5, n)
    confidence[[4, 9, 14]] = 0.1                     # three weak candidates (rib heads, say)
    ctx = SimpleNamespace(instances=Instances(grid, owner, np.zeros((n, 3)), confidence), warnings=[])
    ctx.warn = ctx.warnings.append
    probs = keep_at_most_levels(ctx, np.ones((n, 5)))
    assert len(probs) == n - 3 and len(ctx.instances.centres_mm) == n - 3
    assert sorted(set(np.unique(ctx.instances.owner)) - {0}) == list(range(1, n - 2))
    assert ctx.instances.owner[4, 0, 0] == 0 and "discarded" in ctx.warnings[0]


def test_a_variant_level_guessed_far_from_its_place_is_not_flagged():
    p = _probs([2, 3, 4, 5, 6], 0.7)                 # C2-C6, the labeler giving C3 some T13 probability
    p[1, LABEL_IDS.index(T13)] = 0.25
    result = assign_levels(p, LABEL_IDS, _centres(5))
    assert result.ids == [2, 3, 4, 5, 6] and not any("T13 candidate" in f for f in result.flags)
