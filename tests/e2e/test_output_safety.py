"""`spineplan segment -o OUT` never deletes what SpinePlan did not write: a folder without SpinePlan's
marker is refused, an earlier result is replaced only with --overwrite and only when it holds nothing
else; unwritable targets exit 2; SIGTERM / SIGHUP end it cleanly and the staging folders of killed runs
are removed by the next run. Runs the real CLI with the fake pipeline (tests/ui/fake_pipeline.py)."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spine_core.io import save_volume
from spine_core.models.card import sha256_of
from spine_core.pipeline.api import SegmentOptions
from spine_core.volume import Volume, affine_from_geometry
from spine_core.workflows.analysis import analyse_to_folder
from spine_core.workflows.result_folder import MARKER, OutputRefused
from tests.ui import fake_pipeline

ROOT = Path(__file__).resolve().parents[2]
FAKE = {"SPINEPLAN_PIPELINE": "tests.ui.fake_pipeline:segment"}


def boxes() -> Volume:
    array = np.full((40, 40, 48), -1000, np.int16)
    for k in (6, 20, 34):                                   # three "vertebrae"
        array[14:26, 14:26, k:k + 8] = 1000
    return Volume(array, affine_from_geometry((1.0, 1.0, 1.0)))


@pytest.fixture
def scan(tmp_path) -> Path:
    save_volume(boxes(), tmp_path / "scan.nii.gz")
    return tmp_path / "scan.nii.gz"


def spineplan(*args, **env):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **FAKE, **env}, timeout=300)


def start(*args, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **FAKE, **env})


def staging(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name.endswith(".partial")]


def wait_for_staging(proc: subprocess.Popen, out: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not staging(out):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)                                          # into the (slowed) analysis


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_result_carries_a_marker_listing_every_file(scan, tmp_path):
    out = tmp_path / "out"
    run = spineplan("segment", scan, "-o", out)
    assert run.returncode == 0, run.stderr
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "SpinePlan" and marker["version"] and marker["written"]
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {MARKER}
    assert set(marker["files"]) == files >= {"labels.nii.gz", "centroids.json", "metrics.json", "segment.log",
                                             "meshes/manifest.json"}
    assert all(marker["files"][n]["sha256"] == sha256_of(out / n) for n in files)


def test_a_folder_of_the_users_files_is_never_replaced(scan, tmp_path):
    """Names SpinePlan writes do not make a folder SpinePlan's."""
    mine = tmp_path / "mine"
    (mine / "meshes").mkdir(parents=True)
    (mine / "labels.nii.gz").write_bytes(b"my corrected labels")
    (mine / "segment.log").write_text("my notes")
    (mine / "meshes" / "implant_plan.stl").write_text("solid plan")
    (mine / "meshes" / "screws.json").write_text("{}")
    before = snapshot(mine)
    for extra in ((), ("--overwrite",)):
        run = spineplan("segment", scan, "-o", mine, *extra)
        assert run.returncode == 2 and "not a SpinePlan result" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert snapshot(mine) == before and not staging(mine)


def test_an_earlier_result_is_replaced_only_with_overwrite(scan, tmp_path):
    out = tmp_path / "out"
    assert spineplan("segment", scan, "-o", out).returncode == 0
    first = (out / MARKER).read_text()
    run = spineplan("segment", scan, "-o", out)
    assert run.returncode == 2 and "pass --overwrite" in run.stderr
    time.sleep(1.1)                                          # the marker's time has seconds
    run = spineplan("segment", scan, "-o", out, "--overwrite")
    assert run.returncode == 0, run.stderr
    assert (out / MARKER).read_text() != first and not staging(out)


def test_overwrite_refuses_a_result_holding_a_users_file_and_names_it(scan, tmp_path):
    out = tmp_path / "out"
    assert spineplan("segment", scan, "-o", out).returncode == 0
    (out / "meshes" / "implant_plan.stl").write_text("solid plan")
    run = spineplan("segment", scan, "-o", out, "--overwrite")
    assert run.returncode == 2 and "meshes/implant_plan.stl" in run.stderr, run.stderr
    assert (out / "meshes" / "implant_plan.stl").read_text() == "solid plan"
    (out / "meshes" / "implant_plan.stl").unlink()
    (out / "labels.nii.gz").write_bytes(b"labels corrected and saved over the result")
    run = spineplan("segment", scan, "-o", out, "--overwrite")
    assert run.returncode == 2 and "labels.nii.gz (changed since SpinePlan wrote it)" in run.stderr
    assert (out / "labels.nii.gz").read_bytes().startswith(b"labels corrected")


def test_unwritable_targets_exit_2_with_a_message(scan, tmp_path):
    (tmp_path / "a-file").write_text("x")
    for out, message in ((tmp_path / "a-file", "is a file"), (tmp_path / "a-file" / "out", "Cannot write")):
        run = spineplan("segment", scan, "-o", out)
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    if os.geteuid() != 0:                                    # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        run = spineplan("segment", scan, "-o", locked / "out")
        assert run.returncode == 2 and "Cannot write" in run.stderr, run.stderr


def test_a_read_only_parent_is_refused_in_process(tmp_path, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(OutputRefused, match="Cannot write the result.*Permission denied"):
        analyse_to_folder(boxes(), tmp_path / "out", SegmentOptions(), segment=fake_pipeline.segment)


def test_batch_replaces_its_own_case_result(tmp_path):
    case = tmp_path / "cases" / "case-1"
    analyse_to_folder(boxes(), case, SegmentOptions(), segment=fake_pipeline.segment)
    with pytest.raises(OutputRefused, match="--overwrite"):
        analyse_to_folder(boxes(), case, SegmentOptions(), segment=fake_pipeline.segment)
    analyse_to_folder(boxes(), case, SegmentOptions(), segment=fake_pipeline.segment, overwrite=True)
    assert (case / MARKER).exists() and not list(case.parent.glob(".*"))


def test_staging_of_a_killed_run_is_removed_by_the_next(scan, tmp_path):
    out = tmp_path / "out"
    proc = start("segment", scan, "-o", out, SPINEPLAN_FAKE_DELAY="30")
    wait_for_staging(proc, out)
    proc.kill()
    proc.wait()
    left = staging(out)
    assert len(left) == 1 and str(proc.pid) in left[0].name
    host = left[0].name.split(".")[2].partition("-")[2]
    alive = tmp_path / f".out.{os.getpid()}-{host}.x.partial"       # a live writer's (this process): kept
    elsewhere = tmp_path / f".out.{proc.pid}-0another.x.partial"    # another machine's: not ours to judge
    alive.mkdir()
    elsewhere.mkdir()
    run = spineplan("segment", scan, "-o", out)
    assert run.returncode == 0, run.stderr
    assert sorted(staging(out)) == sorted([alive, elsewhere])


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 130)])
def test_sigterm_and_sighup_end_segment_cleanly(scan, tmp_path, signum, code):
    out = tmp_path / "out"
    proc = start("segment", scan, "-o", out, SPINEPLAN_FAKE_DELAY="30")
    wait_for_staging(proc, out)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "stopped" in stderr and "Traceback" not in stderr
    assert not staging(out) and not out.exists()


def test_sighup_ignored_on_the_way_in_stays_ignored(scan, tmp_path):
    """`nohup spineplan segment ...` survives the terminal closing."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "app", "segment", str(scan), "-o", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **FAKE, "SPINEPLAN_FAKE_DELAY": "0.5"},
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_for_staging(proc, out)
    proc.send_signal(signal.SIGHUP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert (out / MARKER).exists()


def test_measurements_written_into_a_result_are_spineplans_to_replace(scan, tmp_path):
    out = tmp_path / "out"
    assert spineplan("segment", scan, "-o", out).returncode == 0
    run = spineplan("measure", out)
    assert run.returncode == 0, run.stderr
    assert {"measurements.json", "measurements.csv"} <= set(json.loads((out / MARKER).read_text())["files"])
    run = spineplan("segment", scan, "-o", out, "--overwrite")
    assert run.returncode == 0, run.stderr
    assert not (out / "measurements.json").exists()
