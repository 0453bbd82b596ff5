"""`spineplan batch`: discovery, the journal and resuming, kill -9 at random points, worker deaths,
the QA statuses of a mixed batch through the shipped models, and a Dask LocalCluster giving the same
results as the local pool."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spine_core.labels import is_disc
from spine_core.workflows.batch import BatchOptions, levels_text, run_batch
from spine_core.workflows.batch_discovery import discover
from spine_core.workflows.batch_folder import BatchFolder
from tests.e2e.batch_inputs import SHARED, build_inputs, expected_state

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.e2e.crash_pipeline:segment"


def _options(**kw):
    from spine_core.pipeline.api import SegmentOptions

    return BatchOptions(segment=SegmentOptions(fast=True), threads=1, **kw)


def _box_inputs(root: Path, n: int) -> Path:
    """``n`` small NIfTI scans the fake pipeline analyses in a blink (0 boxes: refused, no spine)."""
    from spine_core.io import save_volume
    from tests.ui.study import box_scan

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_volume(box_scan(i % 4), root / f"scan_{i:02d}.nii.gz")
    return root


@pytest.fixture
def fake_pipeline(monkeypatch):
    monkeypatch.setenv("SPINEPLAN_PIPELINE", FAKE)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _finished_lines(folder: BatchFolder) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in folder.entries():
        if entry["state"] in ("done", "failed", "refused"):
            out.setdefault(entry["case"], []).append(entry["state"])
    return out


def test_discovery_finds_one_case_per_series_with_stable_ids(tmp_path):
    inputs = build_inputs(tmp_path / "in", real=False)
    (inputs / "notes.txt").write_text("not a scan")
    studies = discover(inputs)
    ids = [s.case_id for s in studies]
    assert ids == [s.case_id for s in discover(inputs)]          # stable
    assert len(ids) == len(set(ids))
    two = [s for s in studies if s.case_id.startswith("two_series-")]
    assert len(two) == 2 and len({s.series_uid for s in two}) == 2 and all(len(s.files) > 100 for s in two)
    zipped = [s for s in studies if s.kind == "zip"]
    assert len(zipped) == 1 and zipped[0].series_uid
    assert [s.refuse for s in studies if s.case_id.startswith("empty_series-")][0].startswith("series ")
    assert {s.case_id for s in studies if s.kind == "file"} >= {"phantom_plain", "corrupt"}
    assert not any("notes" in i for i in ids)
    assert levels_text(["C1", "C2", "C4", "C5", "T12", "L1", "L5", "sacrum"]) == "C1-C2, C4-C5, T12-L1, L5-sacrum"


def test_a_rerun_resumes_and_a_torn_journal_line_is_ignored(tmp_path, fake_pipeline):
    inputs = _box_inputs(tmp_path / "in", 6)
    out = tmp_path / "out"
    first = run_batch(inputs, out, _options())
    # 0 boxes: refused (no spine); 1 box: T11 alone, ok; 2-3 boxes: T12 unsure, to review
    assert first.ran == 6 and first.counts == {"failed": 2, "ok": 2, "review": 2}
    folder = BatchFolder(out)
    records = folder.records()
    assert records["scan_00"].state == "refused" and "No spine" in records["scan_00"].reason
    assert records["scan_01"].status == "ok" and records["scan_01"].levels == "T11"
    assert records["scan_03"].status == "review" and records["scan_03"].levels == "T11-L1"
    assert (folder.case_dir("scan_03") / "centroids.json").exists()
    case = json.loads((folder.case_dir("scan_03") / "centroids.json").read_text())["case"]
    assert case["status"] == "review" and any(f.startswith("low confidence: T12") for f in case["flags"])
    with open(folder.journal_path, "a") as fh:                 # what a kill mid-write leaves
        fh.write('{"case": "scan_01", "state": "runn')
    import shutil

    shutil.rmtree(folder.case_dir("scan_02"))                  # a result deleted by hand is redone
    again = run_batch(inputs, out, _options())
    assert again.ran == 1 and again.skipped == 5
    assert _finished_lines(folder)["scan_02"] == ["done", "done"]
    assert all(len(v) == 1 for k, v in _finished_lines(folder).items() if k != "scan_02")
    retried = run_batch(inputs, out, _options(retry_failed=True))
    assert retried.ran == 2                                     # the two refused cases


def test_output_folder_rules(tmp_path, fake_pipeline):
    from spine_core.errors import SpineError

    inputs = _box_inputs(tmp_path / "in", 1)
    with pytest.raises(SpineError, match="outside the input folder"):
        run_batch(inputs, inputs / "out", _options())
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.docx").write_text("precious")
    with pytest.raises(SpineError, match="not a SpinePlan batch folder"):
        run_batch(inputs, other, _options())
    assert (other / "thesis.docx").read_text() == "precious"
    with pytest.raises(SpineError, match="is not a folder"):
        run_batch(tmp_path / "absent", tmp_path / "out", _options())
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no scans here")
    with pytest.raises(SpineError, match="No studies were found"):
        run_batch(tmp_path / "nothing", tmp_path / "out", _options())


def test_a_dying_worker_fails_its_case_only(tmp_path, fake_pipeline, monkeypatch):
    inputs = _box_inputs(tmp_path / "in", 4)
    monkeypatch.setenv("SPINEPLAN_CRASH_ON", "scan_02")
    monkeypatch.setenv("SPINEPLAN_RAISE_ON", "scan_03")
    summary = run_batch(inputs, tmp_path / "out", _options(), workers=2)
    records = BatchFolder(tmp_path / "out").records()
    assert records["scan_02"].state == "failed" and "worker process died" in records["scan_02"].reason
    assert records["scan_03"].state == "failed" and "simulated bug" in records["scan_03"].reason
    assert (tmp_path / "out" / "failures" / "scan_03.log").read_text().count("RuntimeError") >= 1
    assert records["scan_01"].state == "done" and records["scan_00"].state == "refused"
    assert summary.counts == {"failed": 3, "ok": 1}


def test_the_cli_refuses_bad_arguments_with_exit_2(tmp_path):
    run = subprocess.run([sys.executable, "-m", "app", "batch", str(tmp_path / "none"), "-o", str(tmp_path / "o")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "is not a folder" in run.stderr and "Traceback" not in run.stderr


def _spineplan_batch(inputs: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SPINEPLAN_PIPELINE", None)
    return subprocess.Popen([sys.executable, "-m", "app", "batch", str(inputs), "-o", str(out), "--fast",
                             "--threads", "1", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _results(folder: BatchFolder) -> dict:
    """Per done case: label voxels (hash) and centroids, to compare runs."""
    from spine_core.io import load_labels

    out = {}
    for record in folder.records().values():
        if record.state == "done":
            labels = load_labels(folder.case_dir(record.case_id) / "labels.nii.gz")
            doc = json.loads((folder.case_dir(record.case_id) / "centroids.json").read_text())
            out[record.case_id] = (hash(labels.array.tobytes()), json.dumps(doc, sort_keys=True))
        else:
            out[record.case_id] = (record.state, record.reason)
    return out


# One case of each kind the executor meets (a phantom, a real CT, a DICOM MR, a refused file): the
# cluster runs the same code per case as the local pool, so these show it gives the same results
# without analysing the whole batch twice.
DASK_CASES = ("phantom_fracture_L1.nii.gz", "ct/verse006.nii.gz", "mr_lumbar", "corrupt.nii.gz")


def _one_of_each_kind(inputs: Path, root: Path) -> Path:
    for relative in DASK_CASES:
        source, target = inputs / relative, root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return root


@pytest.mark.slow
@pytest.mark.shared_data
def test_mixed_batch_survives_three_kills_and_matches_a_dask_cluster(tmp_path):
    """>= 12 cases (phantoms with variants, real CTs, two series in a folder, a zip, a corrupt file, an
    empty series, an MR) through the shipped models: killed with SIGKILL three times at random points
    and resumed, every case ends exactly once in its expected state; a LocalCluster run of one case of
    each kind gives identical results."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    inputs = build_inputs(tmp_path / "in")
    out = tmp_path / "out"
    rng = random.Random(20261130)
    for _ in range(3):
        proc = _spineplan_batch(inputs, out, "--workers", "2")
        time.sleep(rng.uniform(3.0, 14.0))
        os.killpg(proc.pid, signal.SIGKILL)          # the command and its worker processes
        proc.wait(timeout=30)
    proc = _spineplan_batch(inputs, out, "--workers", "2")
    log, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, log
    folder = BatchFolder(out)
    records = folder.records()
    assert len(records) >= 14
    for case_id, record in records.items():
        assert record.state == expected_state(case_id), (case_id, record.state, record.reason)
    assert all(len(v) == 1 for v in _finished_lines(folder).values()), _finished_lines(folder)
    assert set(_finished_lines(folder)) == set(records)
    assert not list(out.rglob("*.partial")) and not list((out / "cases").glob(".*"))
    for record in records.values():
        if record.state == "done":
            assert {p.name for p in folder.case_dir(record.case_id).iterdir()} >= {
                "labels.nii.gz", "centroids.json", "metrics.json", "segment.log"}
            assert folder.thumbnail(record.case_id).stat().st_size > 1000
    statuses = {r.case_id: r.status for r in records.values()}
    assert statuses["corrupt"] == "failed"
    fracture = next(r for r in records.values() if r.case_id == "phantom_fracture_L1")
    assert any(f.startswith("suspected fracture") for f in fracture.flags)
    assert any(f.startswith("metal") for f in records["phantom_hardware"].flags)
    mr = next(r for r in records.values() if r.case_id.startswith("mr_lumbar"))
    mr_metrics = json.loads((folder.case_dir(mr.case_id) / "metrics.json").read_text())
    assert [m["id"] for m in mr_metrics["models"]] == ["mr-spine-seg"]
    # the column counts vertebrae; an MR result's discs are not among them
    found = [v["id"] for v in mr_metrics["vertebrae"]]
    assert mr.n_vertebrae == sum(not is_disc(i) for i in found) < len(found)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["cases"]) == len(records) and (out / "report.html").stat().st_size > 10_000
    # models were loaded once per worker process, not per case
    done = [e for e in folder.entries() if e["state"] == "done"]
    loads = [e for e in done if "model_load_s" in e]
    assert 1 <= len(loads) <= len({e["worker"] for e in done}) and len(loads) < len(done)

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        from spine_core.pipeline.api import SegmentOptions

        dask_out = tmp_path / "dask"
        summary = run_batch(_one_of_each_kind(inputs, tmp_path / "dask_in"), dask_out,
                            BatchOptions(SegmentOptions(fast=True), threads=1), dask_address=cluster.scheduler_address)
    assert summary.ran == len(DASK_CASES)
    mine, theirs = _results(folder), _results(BatchFolder(dask_out))
    assert len(theirs) == len(DASK_CASES) and theirs.keys() <= mine.keys()
    different = [k for k in theirs if mine[k] != theirs[k]]
    assert not different, different
    assert np.all([s in ("ok", "review", "failed") for s in statuses.values()])
