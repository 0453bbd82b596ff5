"""The real `spineplan eval` CLI on the shared VerSe label map and on synthetic ones."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spine_core.io import load_labels, save_labelmap
from spine_core.labels import next_below
from spine_core.volume import LabelMap, affine_from_geometry

ROOT = Path(__file__).resolve().parents[2]


def spineplan(*args):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


def shift_one_level(labels: LabelMap) -> LabelMap:
    """Each vertebra renamed to the one below it (cranio-caudal order), geometry untouched."""
    array = labels.array.copy()
    for vid in labels.ids():
        below = next_below(vid) if vid < 27 else None
        if below:
            array[labels.array == vid] = below
    return LabelMap(array, labels.affine)


def synthetic_spine() -> LabelMap:
    """T10-L3 blocks with discs, 0.8 x 0.8 x 2.5 mm, an oblique LPS grid."""
    array = np.zeros((40, 36, 60), np.int16)
    for n, vid in enumerate([17, 18, 19, 20, 21, 22]):
        array[8:32, 6:30, 2 + n * 9:2 + n * 9 + 7] = vid
        array[12:28, 10:26, 2 + n * 9 + 7:2 + n * 9 + 9] = 100 + vid
    theta = np.deg2rad(10)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    return LabelMap(array, affine_from_geometry((0.8, 0.8, 2.5), direction, (-20.0, 30.0, -400.0)))


def run_eval(pred, ref, out_json):
    result = spineplan("eval", pred, ref, "--json", out_json)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout, json.loads(Path(out_json).read_text())


def assert_perfect(stdout, data):
    s = data["summary"]
    assert s["mean_dice"] == 1.0 and s["binary_dice"] == 1.0
    assert s["identification_rate"] == 1.0 and s["instance_accuracy"] == 1.0
    assert s["mean_centroid_error_mm"] == pytest.approx(0.0, abs=1e-3) and s["acc_1_5mm"] == 1.0
    assert s["level_shift"] == 0 and s["missing"] == [] and s["extra"] == []
    assert all(row["dice"] == 1.0 and row["identified"] for row in data["vertebrae"])
    assert "identification rate:  100.0%" in stdout


def assert_shifted(stdout, data, ref_ids):
    """Shifted with next_below: T12 became T13 and L1 is called L2, so L1 is missing."""
    s = data["summary"]
    assert s["identification_rate"] == 0.0 and s["instance_accuracy"] == 0.0
    assert s["level_shift"] == 1
    assert s["binary_dice"] == 1.0 and s["acc_1_5mm"] == 1.0   # right place, wrong names
    assert s["n_ref"] == len(ref_ids)
    assert s["missing"] == [ref_ids[0], 20] and s["extra"] == [next_below(ref_ids[-1]), 28]
    assert "T13" in s["extra_names"]
    assert "level shift:          +1" in stdout


def test_shared_verse_against_itself(shared_data, tmp_path):
    labels = shared_data / "ct/verse007/labels.nii.gz"
    stdout, data = run_eval(labels, labels, tmp_path / "self.json")
    assert_perfect(stdout, data)
    assert [row["name"] for row in data["vertebrae"]] == ["T9", "T10", "T11", "T12", "L1", "L2", "L3"]


def test_shared_verse_shifted_by_one_level(shared_data, tmp_path):
    labels = shared_data / "ct/verse007/labels.nii.gz"
    shifted = save_labelmap(shift_one_level(load_labels(labels)), tmp_path / "shifted.nii.gz")
    stdout, data = run_eval(shifted, labels, tmp_path / "shifted.json")
    assert_shifted(stdout, data, [16, 17, 18, 19, 20, 21, 22])


def test_synthetic_against_itself_and_shifted(tmp_path):
    ref = save_labelmap(synthetic_spine(), tmp_path / "ref.nii.gz")
    stdout, data = run_eval(ref, ref, tmp_path / "self.json")
    assert_perfect(stdout, data)
    assert [row["id"] for row in data["discs"]] == [117, 118, 119, 120, 121, 122]
    shifted = save_labelmap(shift_one_level(load_labels(ref)), tmp_path / "shifted.nii.gz")
    stdout, data = run_eval(shifted, ref, tmp_path / "shifted.json")
    assert_shifted(stdout, data, [17, 18, 19, 20, 21, 22])


def test_prediction_on_another_grid(tmp_path):
    spine = synthetic_spine()
    flipped_origin = spine.index_to_lps([0, spine.shape[1] - 1, 0])
    affine = spine.affine.copy()
    affine[:3, 1] *= -1
    affine[:3, 3] = flipped_origin
    flipped = LabelMap(np.ascontiguousarray(spine.array[:, ::-1]), affine)
    ref = save_labelmap(spine, tmp_path / "ref.nii.gz")
    pred = save_labelmap(flipped, tmp_path / "pred.nrrd")
    stdout, data = run_eval(pred, ref, tmp_path / "grid.json")
    assert_perfect(stdout, data)
    assert any("resampled" in note for note in data["notes"])


def test_bad_input_exits_2_with_a_message(tmp_path):
    spine = synthetic_spine()
    ref = save_labelmap(spine, tmp_path / "ref.nii.gz")
    far = save_labelmap(LabelMap(spine.array, affine_from_geometry((1, 1, 1), None, (900.0, 0, 0))),
                        tmp_path / "far.nii.gz")
    (tmp_path / "garbage.nii.gz").write_bytes(b"\x00garbage" * 50)
    cases = {
        "missing": ([tmp_path / "nope.nii.gz", ref], "does not exist"),
        "garbage": ([tmp_path / "garbage.nii.gz", ref], ""),
        "disjoint": ([far, ref], "do not overlap"),
    }
    for name, (args, message) in cases.items():
        result = spineplan("eval", *args, "--json", tmp_path / f"{name}.json")
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and message in result.stderr, (name, result.stderr)
        assert result.stderr.startswith("spineplan: ")
        assert not (tmp_path / f"{name}.json").exists()


def test_help_lists_eval():
    result = spineplan("--help")
    assert result.returncode == 0 and "eval" in result.stdout
