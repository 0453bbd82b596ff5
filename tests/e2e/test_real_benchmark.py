"""The real-CT benchmark's protocol and its floors (benchmarks/eval_real.py, docs/BENCHMARKS.md).

The protocol must never call a case held out that shaped the pipeline; the floors sit below the
figures measured 2026-11-29 on the four labelled real CTs, all of which shaped the shipped models
(trained on, or chose their checkpoints), so they guard against regressions, not generalisation."""
from pathlib import Path

import numpy as np
import pytest

from benchmarks.eval_real import LABELLED, any_level_dice, case_roles, pooled, score_case
from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.models import ModelSet

# measured 2026-11-30 (seventh session, body size in numbering): pooled vertebra Dice 0.500, binary Dice 0.758,
# identification 0.643 (default as shipped)
POOLED_FLOORS = {"vertebra_dice": 0.48, "binary_dice": 0.70, "identification_rate": 0.6}


@pytest.fixture(scope="module")
def models():
    return ModelSet(None, "cpu")


def test_no_labelled_case_shaping_a_model_is_called_held_out(models):
    for case in LABELLED:
        roles = case_roles(case, "default", models)
        assert roles, f"{case} is reported as held out"
    assert "checkpoint choice: ct-vertebra-seg" in case_roles("verse007", "default", models)
    assert "trained: ct-spine-localizer" in case_roles("verse006", "default", models)
    assert case_roles("not-a-case", "default", models) == []


def test_pooling_is_over_reference_vertebrae():
    rows = [{"vertebra_dice": [1.0, 0.0], "identified": [True, False], "centroid_errors_mm": [2.0],
             "binary_dice": 0.8, "found": 2, "expected": 2, "protocol": "held out", "case": "a"},
            {"vertebra_dice": [0.5], "identified": [True], "centroid_errors_mm": [4.0],
             "binary_dice": 0.6, "found": 3, "expected": 1, "protocol": "shaped the pipeline", "case": "b"}]
    p = pooled(rows)
    assert p["vertebra_dice"] == 0.5 and p["identification_rate"] == pytest.approx(0.667, abs=1e-3)
    assert p["centroid_error_mm"] == 3.0 and p["binary_dice"] == 0.7
    assert (p["found"], p["expected"], p["held_out_cases"]) == (5, 3, ["a"])


def test_any_level_dice_scores_the_masks_apart_from_their_names():
    reference = np.zeros((4, 4, 12), np.int16)
    reference[:, :, 0:4], reference[:, :, 6:10] = 20, 21
    shifted = np.where(reference > 0, reference - 1, 0).astype(np.int16)   # right masks, named a level up
    shifted[:, :2, 6:10] = 0                                                # half of the second one missed
    assert any_level_dice(shifted, reference) == [1.0, pytest.approx(0.667, abs=1e-3)]
    assert any_level_dice(np.zeros_like(reference), reference) == [0.0, 0.0]


@pytest.mark.slow
def test_pooled_real_ct_floors(shared_data, models):
    options = SegmentOptions(device="cpu")
    rows = [score_case(case, options, models) for case in LABELLED]
    result = pooled(rows)
    for key, floor in POOLED_FLOORS.items():
        assert result[key] >= floor, (key, result)
    assert result["expected"] == 14


# The leave-one-case-out fold of verse007 kept in the repository (training/loco.py --keep), measured
# 2026-12-02 with the pipeline as it ships, on verse007, which no model of the fold saw: any-level Dice
# 0.794, binary Dice 0.832; since its labeler was retrained on noisy masks (task.mask_noise), every name
# right (vertebra Dice 0.794, identification 7 of 7; the labeler trained on clean masks named all one low).
# One draw of a labeler whose names flip with retraining: the floors hold the kept models to it, they do
# not say the recipe always gets there.
FOLD = Path(__file__).resolve().parents[2] / "benchmarks" / "folds"
# The verse006 fold (same recipe, finished 2026-12-02): any-level Dice 0.228 / 0.503 (mean 0.366), binary 0.519,
# both vertebrae misnamed (T10-L1 for L4-L5 with two pieces more): floors on the masks only.
HELD_OUT_FLOORS = {"verse007": {"any_level": 0.74, "binary_dice": 0.78, "vertebra_dice": 0.70, "identification_rate": 0.85},
                   "verse006": {"any_level": 0.30, "binary_dice": 0.45},
                   # finished 2026-12-02: any-level 0.222 / 0.735 / 0.634 (mean 0.530), binary 0.788, named L4-L5
                   # for three (shift +1): floors on the masks only
                   "tptbox_lumbar": {"any_level": 0.45, "binary_dice": 0.70},
                   # finished 2026-12-02 (twenty-third session): a 40 mm slab whose 3 mm SliceThickness sends it
                   # to the fold's thick-slice detector; one mask over T12 and the T11 sliver (named T11), a
                   # second on an off-spine structure ~110 mm to the right (named T12 at 0.25, flagged);
                   # any-level 0.247 / 0.572 (mean 0.410), binary 0.542: floors on the masks only
                   "ts_dicom": {"any_level": 0.33, "binary_dice": 0.45}}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HELD_OUT_FLOORS))
def test_held_out_floors_on_the_kept_folds(shared_data, monkeypatch, case):
    from benchmarks.fold_models import fold_model_set
    from spine_core.models.site import SITE_ENV

    monkeypatch.setenv(SITE_ENV, "")            # fold_model_set points it at a throwaway registry: undone after
    models = fold_model_set(FOLD / case / "models")
    # no model of the fold saw it (the VerSe crops calibrated the phantoms; ts_dicom did not)
    assert set(case_roles(case, "default", models)) <= {"phantom calibration"}
    row = score_case(case, SegmentOptions(device="cpu"), models)
    floors = HELD_OUT_FLOORS[case]
    assert float(np.mean(row["any_level_dice"])) >= floors["any_level"], row
    assert row["binary_dice"] >= floors["binary_dice"], row
    for key in ("vertebra_dice", "identification_rate"):
        if key in floors:
            assert float(np.mean(row[key])) >= floors[key], (key, row)


# The verse007 fold at 5 mm axial slices (eval_real --thick-slices 5): the slices send it to the fold's own
# thick-slice detector, measured 2026-12-02: vertebra Dice 0.728, any-level 0.728, binary 0.796, 7 of 7
# named right (with the thin-slice detector 0.278 / 0.517 / 0.712, 2 of 7).
THICK_FLOORS = {"verse007": {"any_level": 0.66, "binary_dice": 0.74, "vertebra_dice": 0.66, "identification_rate": 0.85}}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(THICK_FLOORS))
def test_held_out_floors_at_5_mm_slices(shared_data, monkeypatch, case):
    from benchmarks.fold_models import fold_model_set
    from spine_core.models.site import SITE_ENV
    from spine_core.pipeline.api import THICK_DETECTOR_ID

    monkeypatch.setenv(SITE_ENV, "")
    models = fold_model_set(FOLD / case / "models")
    assert case_roles(case, "default", models) == ["phantom calibration"]
    row = score_case(case, SegmentOptions(device="cpu"), models, thick_mm=5.0)
    assert THICK_DETECTOR_ID in models.providers                     # the slices chose the detector
    floors = THICK_FLOORS[case]
    assert float(np.mean(row["any_level_dice"])) >= floors["any_level"], row
    assert row["binary_dice"] >= floors["binary_dice"], row
    for key in ("vertebra_dice", "identification_rate"):
        assert float(np.mean(row[key])) >= floors[key], (key, row)


def test_confidence_is_judged_only_where_the_reference_labels_the_vertebra():
    from types import SimpleNamespace

    from benchmarks.calibration import calibration_table, judged_vertebrae

    pred = np.zeros((10, 10, 10), np.int16)
    ref = np.zeros_like(pred)
    pred[0:3], ref[0:3] = 20, 20          # right
    pred[3:6], ref[3:6] = 21, 22          # misnumbered
    pred[7:9] = 23                        # outside the labelled part: not judged
    rows = [SimpleNamespace(id=20, confidence=0.95), SimpleNamespace(id=21, confidence=0.92),
            SimpleNamespace(id=23, confidence=0.3)]
    pairs = judged_vertebrae(pred, ref, rows)
    assert pairs == [(0.95, True), (0.92, False)]
    table = calibration_table(pairs)
    assert table[0] == {"confidence": "0.9-1.0", "vertebrae": 2, "right": 0.5}
    assert table[2]["vertebrae"] == 0 and table[2]["right"] is None
