"""Review rows (spine_core.review): one flag vocabulary for the CLI, the workstation and batch."""
from types import SimpleNamespace

import numpy as np

from spine_core.review import (AT_EDGE, GAP_ABOVE, LOW_CONFIDENCE, SMALL, review_summary, vertebra_rows)
from spine_core.volume import LabelMap, affine_from_geometry


def test_rows_carry_label_map_and_analysis_flags_once():
    array = np.zeros((30, 30, 60), np.int16)
    array[10:20, 10:20, 45:55] = 20          # L1
    array[10:20, 10:20, 30:40] = 21          # L2
    array[12:16, 12:16, 20:24] = 22          # L3: small
    array[10:20, 10:20, 0:8] = 24            # L5 at the border, L4 absent
    labels = LabelMap(array, affine_from_geometry((1.0, 1.0, 1.0), None, (0.0, 0.0, 0.0)),
                      names={20: "L1", 21: "L2", 22: "L3", 24: "L5"})
    analysis = {24: SimpleNamespace(confidence=0.3, flags=(LOW_CONFIDENCE, AT_EDGE)),
                20: SimpleNamespace(confidence=0.9, flags=())}
    rows = {row.name: row for row in vertebra_rows(labels, analysis)}
    assert [r.name for r in vertebra_rows(labels, analysis)] == ["L1", "L2", "L3", "L5"]
    assert rows["L3"].flags == (SMALL,)
    assert rows["L5"].flags == (AT_EDGE, GAP_ABOVE, LOW_CONFIDENCE)      # each flag once
    assert rows["L1"].flags == () and rows["L1"].confidence == 0.9 and rows["L2"].confidence is None
    assert abs(rows["L1"].volume_ml - 1.0) < 1e-9
    assert review_summary(list(rows.values())) == ["L3: small", f"L5: {AT_EDGE}, {GAP_ABOVE}, {LOW_CONFIDENCE}"]


def test_neighbours_whose_centres_cross_are_flagged_out_of_order():
    from spine_core.review import COUNT_UNPROVEN, OUT_OF_ORDER, case_review

    array = np.zeros((30, 30, 60), np.int16)
    array[10:20, 10:20, 45:55] = 19          # T12
    array[10:20, 10:20, 30:40] = 21          # L2 above L1: the names cross
    array[10:20, 10:20, 15:25] = 20          # L1
    array[10:20, 10:20, 0:8] = 22            # L3
    labels = LabelMap(array, affine_from_geometry((1.0, 1.0, 1.0), None, (0.0, 0.0, 0.0)),
                      names={19: "T12", 20: "L1", 21: "L2", 22: "L3"})
    rows = {row.name: row for row in vertebra_rows(labels)}
    assert OUT_OF_ORDER in rows["L1"].flags and OUT_OF_ORDER in rows["L2"].flags
    assert OUT_OF_ORDER not in rows["T12"].flags and OUT_OF_ORDER not in rows["L3"].flags
    # the names counted through the crossing are unproven; the crossed pair says more than that
    assert COUNT_UNPROVEN in rows["T12"].flags and COUNT_UNPROVEN in rows["L3"].flags
    assert COUNT_UNPROVEN not in rows["L1"].flags
    review = case_review(list(rows.values()), labels=labels)
    assert review.status == "review"
    assert any("L1 out of order" in f and "L2 out of order" in f for f in review.flags)
    in_order = LabelMap(np.where(array == 21, 20, np.where(array == 20, 21, array)), labels.affine, names=labels.names)
    assert not any(OUT_OF_ORDER in r.flags or COUNT_UNPROVEN in r.flags for r in vertebra_rows(in_order))
    # the analysis never shows a crossed pair as more likely right than wrong, however sure its networks,
    # nor any other name counted along that chain above the review flag's threshold
    from spine_core.pipeline.output import CONTRADICTED_CAP, UNPROVEN_COUNT_CAP, result_rows

    sure = {v: 0.9 for v in (19, 20, 21, 22)}
    shown = {r.name: r for r in result_rows(labels, sure, {})}
    assert shown["L1"].confidence == shown["L2"].confidence == CONTRADICTED_CAP < UNPROVEN_COUNT_CAP < 0.5
    assert shown["T12"].confidence == shown["L3"].confidence == UNPROVEN_COUNT_CAP
    assert all(LOW_CONFIDENCE in r.flags for r in shown.values())
    assert all(r.confidence == 0.9 for r in result_rows(in_order, sure, {}))


def _lumbar_phantom(**overrides):
    from spine_core.phantom import PhantomOptions, generate_phantom

    return generate_phantom(PhantomOptions(seed=100, first_level="T11", last_level="sacrum", spacing_mm=(1.2, 1.2, 2.0),
                                           fov_mm=200.0, centre_on_spine=True, **overrides))


def test_case_review_reads_fracture_metal_and_the_field_of_view_from_the_labels():
    from spine_core.review import case_review

    plain = _lumbar_phantom()
    review = case_review(vertebra_rows(plain.labels), plain.image, (), plain.labels)
    assert review.status == "ok", review.flags                 # ground truth: nothing to look at
    broken = _lumbar_phantom(fractures=(("L1", 0.45),), hardware_levels=("L3", "L4"))
    review = case_review(vertebra_rows(broken.labels), broken.image, ("a note.",), broken.labels)
    assert review.status == "review"
    assert "suspected fracture: L1" in review.flags
    assert any(f.startswith("metal: ") for f in review.flags)
    assert "analysis note: a note" in review.flags
    # the analysis found only T11-L2 of a scan that shows down to the sacrum
    array = plain.labels.array.copy()
    array[np.isin(array, [22, 23, 24, 26])] = 0
    partial = LabelMap(array, plain.labels.affine, names=dict(plain.labels.names))
    review = case_review(vertebra_rows(partial), plain.image, (), partial)
    assert review.status == "review"
    assert any(f.startswith("fewer vertebrae than the field of view implies: ") and "below L2" in f
               for f in review.flags), review.flags


def _box_column(slices: list[int], slice_mm: float) -> LabelMap:
    """T10-L2 as boxes 20 mm wide and deep, stacked head to foot with two-slice gaps; ``slices``: each
    body's height in slices, top first."""
    gap = 2
    array = np.zeros((30, 30, sum(slices) + gap * (len(slices) + 1)), np.int16)
    top = array.shape[2] - gap
    for label_id, n in zip((17, 18, 19, 20, 21), slices):
        array[5:25, 5:25, top - n:top] = label_id
        top -= n + gap
    return LabelMap(array, affine_from_geometry((1.0, 1.0, slice_mm), None, (0.0, 0.0, 0.0)),
                    names={17: "T10", 18: "T11", 19: "T12", 20: "L1", 21: "L2"})


def test_a_height_loss_the_slices_cannot_resolve_is_not_called_a_fracture():
    from spine_core.review import FRACTURE

    # 4.25 mm slices: one slice less than its neighbours reads as a 25 % loss, but it is 4 mm, under the
    # two voxels by which the grid alone can shorten a body
    thick = {r.name: r.flags for r in vertebra_rows(_box_column([5, 5, 4, 5, 5], 4.25))}
    assert thick and not any(flags for flags in thick.values()), thick
    # the same column on 1 mm slices with a real 35 % loss is flagged, and only that body
    fine = {r.name: r.flags for r in vertebra_rows(_box_column([21, 21, 14, 21, 21], 1.0))}
    assert [name for name, flags in fine.items() if FRACTURE in flags] == ["T12"]
    # and on thick slices a loss of three slices is resolved
    crushed = {r.name: r.flags for r in vertebra_rows(_box_column([6, 6, 3, 6, 6], 4.25))}
    assert [name for name, flags in crushed.items() if FRACTURE in flags] == ["T12"]


def test_counts_name_discs_apart_from_vertebrae():
    from spine_core.labels import count_structures

    assert count_structures([20, 21, 22]) == "3 vertebrae"
    assert count_structures([22, 122, 23, 123, 24]) == "3 vertebrae, 2 discs"     # an MR result
    assert count_structures([124]) == "1 disc" and count_structures([20]) == "1 vertebra"
    assert count_structures([]) == "0 vertebrae" and count_structures([0, 20]) == "1 vertebra"
