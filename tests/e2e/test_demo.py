"""The real `spineplan demo` CLI writes a loadable study, reuses it, and is fast enough."""
import json

import numpy as np
import pytest

from spine_core.io import load_labels, load_scan
from tests.e2e.test_cli_io import spineplan


def _check_study(folder, expected_first: str):
    scan = load_scan(folder / "dicom")
    labels = load_labels(folder / "labels.nii.gz", grid=scan)      # same grid as the DICOM
    doc = json.loads((folder / "centroids.json").read_text())
    assert doc["coordinate_system"] == "LPS" and doc["units"] == "mm"
    names = [v["name"] for v in doc["vertebrae"]]
    assert expected_first in names and names[-1] == "sacrum"
    for v in doc["vertebrae"]:
        idx = np.argwhere(labels.array == v["id"])
        com = labels.index_to_lps(idx.mean(axis=0))
        assert np.linalg.norm(com - np.array(v["position"])) < 1.0, v["name"]
    assert scan.metadata.modality == "CT"
    return scan, labels


def test_quick_demo_writes_a_loadable_study_and_reuses_it(tmp_path):
    out = tmp_path / "demo"
    result = spineplan("demo", "--quick", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Wrote the demo study" in result.stdout
    scan, labels = _check_study(out, "T11")
    assert {19, 20, 21, 22, 23, 24, 26} <= set(labels.ids())
    again = spineplan("demo", "--quick", "--out", out)
    assert again.returncode == 0 and "reused" in again.stdout


def test_demo_default_folder_is_per_user(tmp_path):
    result = spineplan("demo", "--quick", env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xdg/spineplan/demo-quick/labels.nii.gz").exists()


def test_demo_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    result = spineplan("demo", "--quick", "--out", tmp_path)
    assert result.returncode == 2 and "already holds files" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
def test_full_demo_is_a_whole_spine_at_workstation_resolution(tmp_path):
    """Its generation time is a benchmark (docs/BENCHMARKS.md), not asserted here."""
    out = tmp_path / "demo"
    result = spineplan("demo", "--out", out)
    assert result.returncode == 0, result.stderr
    scan, labels = _check_study(out, "C1")
    assert scan.shape[:2] == (512, 512) and np.allclose(scan.spacing, (0.8, 0.8, 1.0))
    assert set(range(1, 25)) | {26} <= set(labels.ids())
