"""spine_core.metrics on hand-built label maps whose answers are known exactly (or to a voxel)."""
import json

import numpy as np
import pytest

from spine_core.errors import GridMismatch, UnsupportedImage
from spine_core.labels import next_below
from spine_core.metrics import (BinaryConfusion, JointCounts, evaluate, format_report,
                                surface_distances)
from spine_core.metrics.identification import level_shift
from spine_core.volume import LabelMap, affine_from_geometry


def label_map(array, spacing=(1.0, 1.0, 1.0), direction=None, origin=(0.0, 0.0, 0.0)):
    return LabelMap(np.asarray(array, dtype=np.int16), affine_from_geometry(spacing, direction, origin))


def cube(shape, lo, size, label=20):
    array = np.zeros(shape, np.int16)
    array[tuple(slice(a, a + size) for a in lo)] = label
    return array


def stacked(ids, heights=None, gap=0, spacing=(1.0, 1.0, 2.0), discs=False, margin=3):
    """Vertebrae as 12 x 12 blocks stacked along k (cranial first), ``gap`` slices between them."""
    heights = heights or [8] * len(ids)
    depth = sum(heights) + gap * (len(ids) - 1) + 2 * margin
    array = np.zeros((20, 20, depth), np.int16)
    k = margin
    for vid, height in zip(ids, heights):
        array[4:16, 4:16, k:k + height] = vid
        if discs and gap and vid != ids[-1]:
            array[6:14, 6:14, k + height:k + height + gap] = 100 + vid
        k += height + gap
    return label_map(array, spacing)


def relabel(labels: LabelMap, mapping: dict) -> LabelMap:
    lut = np.arange(int(labels.array.max()) + 1, dtype=np.int16)
    for old, new in mapping.items():
        lut[old] = new
    return LabelMap(lut[labels.array], labels.affine)


def sphere(shape, spacing, centre_mm, radius_mm, label=20):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    inside = sum((g - c) ** 2 for g, c in zip(grids, centre_mm)) <= radius_mm ** 2
    return np.where(inside, label, 0).astype(np.int16)


# ---- overlap ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5])
def test_cubes_offset_by_k_voxels_give_exact_dice_and_iou(k):
    ref = label_map(cube((30, 30, 30), (5, 5, 5), 10))
    pred = label_map(cube((30, 30, 30), (5 + k, 5, 5), 10))
    row = evaluate(pred, ref).vertebrae[0]
    inter = (10 - k) * 100
    assert row.dice == pytest.approx(2 * inter / 2000)
    assert row.iou == pytest.approx(inter / (2000 - inter))
    assert row.hd == pytest.approx(k)            # the far faces are k voxels apart
    assert row.volume_ref_mm3 == row.volume_pred_mm3 == 1000


def test_missing_vertebra_counts_as_dice_zero_and_is_listed():
    ref = stacked([20, 21, 22])
    pred = relabel(ref, {22: 0})
    report = evaluate(pred, ref)
    assert [r.dice for r in report.vertebrae] == [1.0, 1.0, 0.0]
    assert report.summary.mean_dice == pytest.approx(2 / 3)
    assert report.summary.missing == (22,) and report.summary.extra == ()
    assert report.vertebrae[2].hd is None and report.vertebrae[2].centroid_error_mm is None
    assert report.summary.n_ref == 3 and report.summary.n_pred == 2


def test_pixel_accuracy_fpd_fnd_by_hand():
    ref = np.zeros((4, 4, 4), np.int16)
    ref[0:2, 0:2, 0:2] = 20                        # 8 spine voxels
    pred = np.zeros_like(ref)
    pred[0:2, 0:2, 0:2] = 20
    pred[0, 0, 0] = pred[1, 1, 1] = 0              # 2 missed: TP 6, FN 2
    pred[3, 3, 0:4] = 21                           # 4 false positives; TN = 64 - 12 = 52
    s = evaluate(label_map(pred), label_map(ref)).summary
    assert s.pixel_accuracy == pytest.approx(58 / 64)
    assert s.fpd == pytest.approx(4 / 56)
    assert s.fnd == pytest.approx(2 / 8)
    assert s.binary_dice == pytest.approx(12 / 18)
    assert s.binary_iou == pytest.approx(6 / 12)
    assert s.extra == (21,)


def test_binary_confusion_counts():
    ref = np.array([0, 0, 1, 1, 2, 2, 0, 0]).reshape(2, 2, 2)
    pred = np.array([0, 1, 1, 2, 2, 0, 0, 0]).reshape(2, 2, 2)
    counts = JointCounts.of(ref, pred)
    assert counts.intersection(1, 1) == 1 and counts.intersection(1, 2) == 1
    c = BinaryConfusion.of(counts, {1, 2})
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 1, 3)


# ---- surface distances -----------------------------------------------------------------------

def test_sphere_radius_r_vs_r_plus_d():
    spacing = (1.0, 1.0, 1.0)
    ref = sphere((50, 50, 50), spacing, (25, 25, 25), 12)
    pred = sphere((50, 50, 50), spacing, (25, 25, 25), 16)
    d = surface_distances(ref > 0, pred > 0, spacing)
    assert d.hd == pytest.approx(4, abs=1.0)
    assert d.hd95 == pytest.approx(4, abs=1.0)
    assert d.assd == pytest.approx(4, abs=1.0)


def test_anisotropic_spacing_measures_millimetres():
    spacing = (0.7, 0.7, 2.5)
    shape = (80, 80, 24)
    ref = sphere(shape, spacing, (28, 28, 30), 15)
    pred = sphere(shape, spacing, (28, 28, 30), 21)
    d = surface_distances(ref > 0, pred > 0, spacing)
    assert d.hd == pytest.approx(6, abs=2.5)       # within the coarsest voxel
    assert d.assd == pytest.approx(6, abs=1.5)


def test_shift_along_thick_slices_is_in_mm():
    spacing = (0.5, 0.5, 3.0)
    ref = label_map(cube((30, 30, 20), (5, 5, 5), 10), spacing)
    pred = label_map(cube((30, 30, 20), (5, 5, 6), 10), spacing)
    row = evaluate(pred, ref).vertebrae[0]
    assert row.hd == pytest.approx(3.0) and row.hd95 == pytest.approx(3.0)
    assert row.centroid_error_mm == pytest.approx(3.0)
    assert row.dice == pytest.approx(0.9)


def test_identical_masks_have_zero_distance_and_empty_is_none():
    mask = cube((10, 10, 10), (2, 2, 2), 5) > 0
    assert surface_distances(mask, mask, (1, 1, 1)).hd == 0
    assert surface_distances(mask, np.zeros_like(mask), (1, 1, 1)) is None


# ---- centroids, identification, level shift --------------------------------------------------

def test_centroid_error_of_shifted_label():
    spacing = (0.5, 0.8, 2.0)
    ref = label_map(cube((30, 30, 30), (5, 5, 5), 8), spacing)
    pred = label_map(cube((30, 30, 30), (8, 5, 6), 8), spacing)
    row = evaluate(pred, ref).vertebrae[0]
    assert row.centroid_error_mm == pytest.approx(np.hypot(3 * 0.5, 2.0))
    assert row.identified                            # nearest, same id, 2.5 mm < 20 mm


def test_centroid_too_far_is_not_identified():
    ref = label_map(cube((60, 20, 20), (2, 5, 5), 8))
    pred = label_map(cube((60, 20, 20), (30, 5, 5), 8))  # same id, 28 mm away
    report = evaluate(pred, ref)
    assert report.vertebrae[0].centroid_error_mm == pytest.approx(28)
    assert report.summary.identification_rate == 0.0


def test_perfect_prediction():
    ref = stacked([18, 19, 20, 21, 22], gap=2, discs=True)
    report = evaluate(ref, ref)
    s = report.summary
    assert s.mean_dice == 1.0 and s.identification_rate == 1.0 and s.instance_accuracy == 1.0
    assert s.mean_centroid_error_mm == 0.0 and s.acc_1_5mm == 1.0 and s.level_shift == 0
    assert [r.id for r in report.discs] == [118, 119, 120, 121]   # none below the last
    assert s.mean_disc_dice == 1.0 and s.fpd == 0.0 and s.fnd == 0.0


@pytest.mark.parametrize("direction", [+1, -1])
def test_shift_by_one_level_is_reported(direction):
    ids = [17, 18, 19, 20, 21, 22]
    ref = stacked(ids)
    if direction > 0:
        mapping = {v: next_below(v) for v in ids}   # 19 (T12) -> 28 (T13): still one level
    else:
        mapping = {v: v - 1 for v in ids}
    report = evaluate(relabel(ref, mapping), ref)
    s = report.summary
    assert s.identification_rate == 0.0
    assert s.instance_accuracy == 0.0
    assert s.level_shift == direction
    assert s.acc_1_5mm == 1.0 and s.mean_localization_error_mm == 0.0   # geometry is right
    assert s.binary_dice == 1.0
    assert f"{direction:+d}" in format_report(report)


def test_shift_without_t13_counts_t12_to_l1_as_one_level():
    ids = [18, 19, 20, 21]                            # T11 T12 L1 L2: no T13 anywhere
    ref = stacked(ids)
    report = evaluate(relabel(ref, {v: v + 1 for v in ids}), ref)
    assert report.summary.level_shift == 1


def test_level_shift_needs_agreement():
    assert level_shift({1: 1, 2: 1, 3: 1, 4: 0}) == 1
    assert level_shift({1: 1, 2: 0}) is None
    assert level_shift({}) is None


def test_merged_pair_fails_instance_matching():
    ref = stacked([19, 20, 21, 22], heights=[8, 6, 10, 8])   # touching blocks
    pred = relabel(ref, {21: 20})                             # L1 and L2 merged into one "L1"
    report = evaluate(pred, ref)
    rows = {r.id: r for r in report.vertebrae}
    # merged component vs L2: IoU 10/16 > 0.5 (matched, wrong id); vs L1: 6/16 (unmatched)
    assert [rows[i].instance_correct for i in (19, 20, 21, 22)] == [True, False, False, True]
    assert report.summary.instance_accuracy == 0.5
    assert rows[20].identified and not rows[21].identified
    assert rows[21].localization_error_mm == pytest.approx(3 * 2.0)   # 3 slices of 2 mm
    assert rows[20].localization_error_mm is None
    assert report.summary.missing == (21,)
    assert report.summary.acc_3mm == 0.5


def test_split_vertebra_still_matches_its_main_part():
    ref = stacked([20, 21], heights=[12, 8], gap=2)
    pred = ref.array.copy()
    pred[4:16, 4:16, 3 + 10] = 0                      # cut one slice: 10 + 1 slices of L1
    report = evaluate(label_map(pred, ref.spacing), ref)
    assert report.summary.instance_accuracy == 1.0


# ---- grids -----------------------------------------------------------------------------------

def _shifted_case():
    ref = stacked([19, 20, 21, 22], gap=2, discs=True, spacing=(1.0, 1.0, 1.0))
    pred = np.roll(ref.array, 1, axis=0)
    pred = np.roll(pred, 2, axis=2)
    return LabelMap(pred, ref.affine), ref


def _same_report(a, b):
    da, db = a.to_dict(), b.to_dict()
    da.pop("notes"), db.pop("notes")        # only "resampled" differs
    _close(da, db)


def _close(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6), (a, b)
        return True
    assert a == b, (a, b)
    return True


def test_flipped_prediction_grid_gives_the_same_answer():
    pred, ref = _shifted_case()
    flip = np.diag([-1.0, 1.0, 1.0])
    origin = ref.index_to_lps([pred.shape[0] - 1, 0, 0])
    flipped = LabelMap(np.ascontiguousarray(pred.array[::-1]), affine_from_geometry((1, 1, 1), flip, origin))
    assert not flipped.same_grid(ref)
    _same_report(evaluate(flipped, ref), evaluate(pred, ref))
    assert "resampled" in evaluate(flipped, ref).notes[0]


def test_permuted_axes_give_the_same_answer():
    pred, ref = _shifted_case()
    swapped = np.ascontiguousarray(pred.array.transpose(2, 0, 1))
    affine = np.eye(4)
    affine[:3, :3] = ref.affine[:3, [2, 0, 1]]
    _same_report(evaluate(LabelMap(swapped, affine), ref), evaluate(pred, ref))


def test_finer_prediction_grid_gives_the_same_answer():
    pred, ref = _shifted_case()
    fine = np.repeat(np.repeat(np.repeat(pred.array, 3, 0), 3, 1), 3, 2)
    fine_map = label_map(fine, (1 / 3, 1 / 3, 1 / 3), origin=(-1 / 3, -1 / 3, -1 / 3))
    _same_report(evaluate(fine_map, ref), evaluate(pred, ref))


def test_disjoint_grids_are_refused():
    ref = stacked([20, 21])
    far = LabelMap(ref.array, affine_from_geometry((1, 1, 2), None, (500.0, 0.0, 0.0)))
    with pytest.raises(GridMismatch, match="do not overlap"):
        evaluate(far, ref)


def test_partial_overlap_is_scored():
    ref = stacked([20, 21])
    half = LabelMap(ref.array, affine_from_geometry((1, 1, 2), None, (10.0, 0.0, 0.0)))
    report = evaluate(half, ref)
    assert 0 < report.summary.binary_dice < 1


def test_reference_without_vertebrae_is_refused():
    empty = label_map(np.zeros((8, 8, 8)))
    with pytest.raises(UnsupportedImage, match="no vertebra"):
        evaluate(empty, empty)


def test_negative_values_are_refused():
    ref = stacked([20])
    image = LabelMap(ref.array - 1000, ref.affine)
    with pytest.raises(UnsupportedImage, match="negative"):
        evaluate(image, ref)


# ---- report ----------------------------------------------------------------------------------

def test_report_to_dict_is_plain_json():
    ref = stacked([19, 20, 21], gap=2, discs=True)
    pred = relabel(ref, {21: 0, 120: 0})
    data = evaluate(pred, ref).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["summary"]["missing"] == [21]
    assert data["summary"]["missing_names"] == ["L2"]
    row = data["vertebrae"][0]
    for key in ("id", "name", "dice", "iou", "hd", "hd95", "assd", "centroid_error_mm", "identified",
                "volume_ref_mm3", "volume_pred_mm3"):
        assert key in row
    assert data["vertebrae"][2]["hd"] is None
    assert [d["id"] for d in data["discs"]] == [119, 120]


# ---- full size -------------------------------------------------------------------------------

def test_full_size_map_is_scored_correctly():
    """512 x 512 x 300 voxels, 20 vertebrae: the cropped surface code gives the exact offset.
    Its speed is measured by benchmarks/bench_eval.py, not asserted here."""
    from benchmarks.bench_eval import full_size_pair

    pred, ref = full_size_pair()
    report = evaluate(pred, ref)
    assert report.summary.n_ref == 20 and report.summary.identification_rate == 1.0
    assert report.vertebrae[0].hd == pytest.approx(np.hypot(0.8, 1.0))


def test_the_mr_benchmark_bounds_each_counts_trust_from_cases_or_structures():
    from benchmarks.eval_mr import trust_by_anchor, wilson_lower

    assert wilson_lower(75, 76) == 0.929 and wilson_lower(9, 9) == 0.701 and wilson_lower(0, 0) is None
    rows = [{"anchor": "sacrum", "judged": [(0.93, True), (0.93, False)]},
            {"anchor": "sacrum", "judged": [(0.93, True)]},
            {"anchor": "none", "judged": []}]                     # nothing judged: no case counted
    from spine_core.pipeline.registry import mr_pipeline

    trust = trust_by_anchor(rows, mr_pipeline("mr-sshs").level_trust)
    counts = {k: trust["sacrum"][k] for k in ("structures", "right", "cases", "cases_all_right")}
    assert counts == {"structures": 3, "right": 2, "cases": 2, "cases_all_right": 1}
    assert trust["sacrum"]["cap"] == mr_pipeline("mr-sshs").level_trust["sacrum"] < mr_pipeline("mr-scar").level_trust["sacrum"]
    assert trust["none"]["cases"] == 0 and trust["none"]["lower_by_case"] is None


def test_the_mr_benchmark_refuses_a_cache_of_another_models_output(tmp_path):
    from benchmarks.eval_mr import check_cache

    models, cache = tmp_path / "models", tmp_path / "cache" / "mr-scar" / "fold0"
    models.mkdir()
    (models / "mr-spine-seg.onnx").write_bytes(b"first training")
    check_cache(cache, models)
    check_cache(cache, models)                       # the same models: the cache is theirs
    (models / "mr-spine-seg.onnx").write_bytes(b"retrained")
    with pytest.raises(SystemExit, match="other models"):
        check_cache(cache, models)


def test_the_mr_benchmark_scores_each_structure_over_the_cases_that_hold_it():
    from benchmarks.eval_mr import per_structure, score

    ref = np.zeros((4, 4, 12), np.int16)
    ref[..., 0:3], ref[..., 4:7], ref[..., 7:8] = 23, 24, 124       # L4, L5, the L5/S1 disc
    named = score(ref, ref)
    shifted = score(np.where(ref == 23, 22, ref).astype(np.int16), ref)    # L4 called L3
    no_disc = np.where(ref == 124, 0, ref).astype(np.int16)
    lumbar_only = score(no_disc, no_disc)
    rows = [named, json.loads(json.dumps(shifted)), lumbar_only]    # a report read back has string keys
    table = per_structure(rows)
    assert list(table) == ["L4", "L5", "L5/S1"]
    two_of_three = pytest.approx(2 / 3, abs=1e-4)
    assert table["L4"] == {"cases": 3, "dice": two_of_three, "identified": two_of_three}
    assert table["L5"]["dice"] == 1.0 and table["L5/S1"]["cases"] == 2
