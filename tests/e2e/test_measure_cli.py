"""`spineplan measure RESULT_DIR [--scan]`: files beside the labels; bad input is exit 2."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "app", "measure", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_measure_writes_json_and_csv_beside_the_labels(tmp_path):
    from spine_core.io import save_labelmap, save_volume
    from spine_core.phantom import PhantomOptions, generate_phantom

    phantom = generate_phantom(PhantomOptions(seed=5, first_level="T12", last_level="sacrum", spacing_mm=(1.0, 1.0, 1.0),
                                              fov_mm=160, centre_on_spine=True))
    result = tmp_path / "result"
    result.mkdir()
    save_labelmap(phantom.labels, result / "labels.nii.gz")
    scan = save_volume(phantom.image, tmp_path / "scan.nii.gz")
    run = _run(result, "--scan", scan)
    assert run.returncode == 0, run.stderr
    assert "lumbar lordosis L1-S1" in run.stdout
    doc = json.loads((result / "measurements.json").read_text())
    rows = {r["name"]: r for r in doc["vertebrae"]}
    assert rows["L3"]["core_hu"] is not None and rows["L3"]["middle_height_mm"] > 15
    assert (result / "measurements.csv").read_text().startswith("name,label_id")


def test_a_folder_without_labels_is_bad_input(tmp_path):
    run = _run(tmp_path)
    assert run.returncode == 2 and "not a SpinePlan result folder" in run.stderr and "Traceback" not in run.stderr
