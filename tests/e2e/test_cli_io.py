"""The real `spineplan` CLI: info/convert on the shared DICOM series and on bad input."""
import os
import subprocess
import sys
from pathlib import Path


from spine_core.io.dicom_writer import DicomOptions, write_dicom_series
from tests.conftest import make_volume

ROOT = Path(__file__).resolve().parents[2]


def spineplan(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=full_env, timeout=300)


def test_help_lists_working_commands():
    result = spineplan("--help")
    assert result.returncode == 0
    assert "info" in result.stdout and "convert" in result.stdout


def test_info_on_shared_dicom(shared_data):
    result = spineplan("info", shared_data / "ct/ts_dicom/dicom")
    assert result.returncode == 0, result.stderr
    assert "512 x 512 x 20 voxels" in result.stdout
    assert "0.9766 x 0.9766 x 2 mm" in result.stdout
    assert "Modality:     CT" in result.stdout


def test_convert_shared_dicom_to_nifti(shared_data, tmp_path):
    out = tmp_path / "ts.nii.gz"
    result = spineplan("convert", shared_data / "ct/ts_dicom/dicom", out)
    assert result.returncode == 0, result.stderr
    assert out.exists() and "Wrote" in result.stdout


def _bad_inputs(tmp: Path):
    (tmp / "empty").mkdir()
    (tmp / "text").mkdir()
    (tmp / "text/readme.txt").write_text("hello")
    (tmp / "garbage.nii.gz").write_bytes(b"\x00garbage" * 50)
    gap = tmp / "gap"
    write_dicom_series(make_volume(shape=(16, 16, 8)), gap)
    sorted(gap.iterdir())[3].unlink()
    two = tmp / "two"
    write_dicom_series(make_volume(shape=(16, 16, 8)), two / "a")
    write_dicom_series(make_volume(shape=(16, 16, 6)), two / "b")
    flat = tmp / "flat"
    write_dicom_series(make_volume(shape=(16, 16, 1)), flat)
    mr = tmp / "mr"
    write_dicom_series(make_volume(shape=(16, 16, 8)), mr, DicomOptions(modality="MR"))
    return {
        "missing path": (["info", tmp / "nope"], "does not exist"),
        "empty folder": (["info", tmp / "empty"], "empty"),
        "non-DICOM folder": (["info", tmp / "text"], "No DICOM"),
        "garbage file": (["info", tmp / "garbage.nii.gz"], "could not be read"),
        "missing slice": (["convert", gap, tmp / "o1.nii.gz"], "missing about 1 slice"),
        "two series": (["convert", two, tmp / "o2.nii.gz"], "choose one with --series"),
        "2D image": (["info", flat], "2D"),
        "MR where CT expected": (["convert", mr, tmp / "o3.nii.gz", "--expect-modality", "CT"],
                                 "MR scan but CT is expected"),
        "bad output name": (["convert", gap, tmp / "o4.png"], ".nii.gz"),
        "unknown option": (["info", "--frobnicate"], "error:"),
    }


def test_bad_input_gives_a_message_and_exit_2(tmp_path):
    for name, (args, message) in _bad_inputs(tmp_path).items():
        result = spineplan(*args)
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr, name


def test_two_series_info_lists_both(tmp_path):
    write_dicom_series(make_volume(shape=(16, 16, 8)), tmp_path / "a")
    write_dicom_series(make_volume(shape=(16, 16, 6)), tmp_path / "b")
    result = spineplan("info", tmp_path)
    assert result.returncode == 0
    assert "2 series" in result.stdout and "16 x 16 x 8 voxels" in result.stdout


def test_internal_failure_exits_3_with_a_log(tmp_path, monkeypatch):
    code = ("import sys; import app.commands as c; "
            "c.cmd_info = lambda args: 1/0; "
            "from app.cli import main; sys.exit(main(['info', 'x']))")
    env = {**os.environ, "SPINEPLAN_LOG_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 3, result.stderr
    assert "internal error" in result.stderr and "Traceback" not in result.stderr
    crash = list(tmp_path.glob("crash-*.log"))
    assert crash and "ZeroDivisionError" in crash[0].read_text()
