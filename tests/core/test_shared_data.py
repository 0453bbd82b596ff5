"""Geometry on the real shared scans."""
import json

import numpy as np
import pytest

from spine_core.io import load_labels, load_scan, save_volume
from spine_core.resample import resample_to_grid


def test_shared_dicom_and_its_labels_land_on_one_physical_grid(shared_data):
    scan = load_scan(shared_data / "ct/ts_dicom/dicom")
    assert scan.shape == (512, 512, 20)
    assert np.allclose(scan.spacing, [0.9765625, 0.9765625, 2.0], atol=1e-4)
    labels = load_labels(shared_data / "ct/ts_dicom/labels.nii.gz")
    on_scan = resample_to_grid(labels, scan)
    assert on_scan.ids() == [18, 19]
    for vid in (18, 19):
        a = scan.index_to_lps(np.argwhere(on_scan.array == vid).mean(axis=0))
        b = labels.index_to_lps(np.argwhere(labels.array == vid).mean(axis=0))
        assert np.linalg.norm(a - b) < 0.5, vid
        assert (on_scan.array == vid).sum() == (labels.array == vid).sum()
    # The labelled vertebrae are bone: their median HU must look like bone, not air or fat.
    assert np.median(scan.array[on_scan.array > 0]) > 150


@pytest.mark.parametrize("case", ["verse006", "verse007", "tptbox_lumbar"])
def test_every_shared_ct_shares_a_grid_with_its_labels(shared_data, case):
    manifest = {c["case"]: c for c in json.loads((shared_data / "manifest.json").read_text())}
    scan = load_scan(shared_data / "ct" / case / "image.nii.gz")
    labels = load_labels(shared_data / "ct" / case / "labels.nii.gz", grid=scan)
    assert labels.ids() == manifest[f"ct/{case}"]["labels"]
    assert np.median(scan.array[labels.array > 0]) > 100


def test_shared_dicom_round_trip_through_nifti(shared_data, tmp_path):
    scan = load_scan(shared_data / "ct/ts_dicom/dicom")
    back = load_scan(save_volume(scan, tmp_path / "ts.nii.gz"))
    assert np.allclose(back.affine, scan.affine, atol=1e-4)
    assert np.array_equal(back.array, scan.array)
