"""Plan files (zip and folder), atomic writes, autosave and crash recovery (headless)."""
import os
import time
import zipfile

import numpy as np
import pytest

from spine_core.plan import (PlanError, PlanInfo, discard_autosave, is_plan_file, load_plan,
                             mark_clean_close, recovery_candidate, save_plan, write_autosave)
from spine_core.volume import LabelMap, ScanMetadata, affine_from_geometry


def _labels():
    array = np.zeros((10, 12, 14), np.int16)
    array[2:8, 3:9, 1:6], array[2:8, 3:9, 7:12] = 20, 19
    affine = affine_from_geometry((0.8, 0.9, 2.0), None, (-5.0, 10.0, -200.0))
    return LabelMap(array, affine, ScanMetadata(series_uid="1.2.3"))


@pytest.mark.parametrize("name", ["case.spineplan", "case_plan"])
def test_plan_round_trip_keeps_labels_and_metadata(tmp_path, name):
    labels = _labels()
    info = PlanInfo(scan_source="/data/ct/case", series_uid="1.2.3", edits=("Split T12", "Paint L1"))
    path = save_plan(tmp_path / name, labels, info)
    assert is_plan_file(path)
    plan = load_plan(path)
    assert np.array_equal(plan.labels.array, labels.array)
    np.testing.assert_allclose(plan.labels.affine, labels.affine, atol=1e-5)
    assert plan.info.scan_source == "/data/ct/case" and plan.info.series_uid == "1.2.3"
    assert plan.info.edits == ("Split T12", "Paint L1") and plan.info.app_version
    assert [v["name"] for v in plan.info.vertebrae] == ["T12", "L1"]
    assert plan.info.created <= plan.info.modified
    assert not [p for p in tmp_path.rglob(".*")]              # no temporary files left behind


def test_a_damaged_or_newer_plan_is_refused_with_a_message(tmp_path):
    (tmp_path / "bad.spineplan").write_bytes(b"not a zip")
    with pytest.raises(PlanError, match="not a readable"):
        load_plan(tmp_path / "bad.spineplan")
    with zipfile.ZipFile(tmp_path / "new.spineplan", "w") as archive:
        archive.writestr("plan.json", '{"format_version": 99}')
    with pytest.raises(PlanError, match="newer SpinePlan"):
        load_plan(tmp_path / "new.spineplan")
    with pytest.raises(PlanError, match="does not exist"):
        load_plan(tmp_path / "missing.spineplan")


def test_overwriting_a_plan_is_atomic(tmp_path, monkeypatch):
    labels = _labels()
    path = save_plan(tmp_path / "p.spineplan", labels, PlanInfo(note="first"))
    import spine_core.plan as plan_module

    def broken(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plan_module.PlanInfo, "to_json", broken)
    with pytest.raises(PlanError, match="No space left"):
        save_plan(path, labels, PlanInfo(note="second"))
    monkeypatch.undo()
    assert load_plan(path).info.note == "first"


def test_autosave_is_offered_only_after_an_unclean_close(tmp_path):
    labels = _labels()
    assert recovery_candidate(tmp_path) is None
    write_autosave(labels, PlanInfo(scan_source="scan.nii.gz"), tmp_path)
    found = recovery_candidate(tmp_path)                     # crashed: no clean close since
    assert found is not None and np.array_equal(load_plan(found).labels.array, labels.array)
    mark_clean_close(tmp_path)
    assert recovery_candidate(tmp_path) is None
    time.sleep(0.01)
    write_autosave(labels, PlanInfo(), tmp_path)
    later = time.time() + 5
    os.utime(found, (later, later))                          # coarse file-system clocks
    assert recovery_candidate(tmp_path) == found
    discard_autosave(tmp_path)
    assert recovery_candidate(tmp_path) is None
