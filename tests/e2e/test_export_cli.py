"""The real `spineplan export` CLI on a segment result folder made on a phantom DICOM series: every
format writes its files (exit 0); bad input exits 2 with a message and no traceback; the patient's
identifiers stay inside the DICOM objects."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.core.test_export_dicom import PATIENT_ID, PATIENT_NAME, export_study

ROOT = Path(__file__).resolve().parents[2]
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID, "DOE", "JANE", "73519")


def spineplan(*args):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return export_study(tmp_path_factory.mktemp("export-cli"))


def _no_identifiers(text: str, where: str) -> None:
    for word in IDENTIFIERS:
        assert word not in text, f"patient identifier {word!r} in {where}"


def test_every_format_writes_its_files(study, tmp_path):
    dicom_dir, result, labels, _ = study
    outputs = {"dicom-seg": tmp_path / "seg.dcm", "rtstruct": tmp_path / "rt.dcm",
               "markups": tmp_path / "centroids.mrk.json", "stl": tmp_path / "stl", "ply": tmp_path / "ply",
               "obj": tmp_path / "obj"}
    for fmt, out in outputs.items():
        run = spineplan("export", result, "--format", fmt, "-o", out, "--source", dicom_dir)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr and f"Wrote {out}" in run.stdout
        for name in ("L3", "L4", "L5"):
            assert name in run.stdout
        _no_identifiers(run.stdout + run.stderr, f"the output of export --format {fmt}")
    assert pydicom.dcmread(outputs["dicom-seg"]).Modality == "SEG"
    rt = pydicom.dcmread(outputs["rtstruct"])
    assert rt.Modality == "RTSTRUCT" and str(rt.PatientName) == PATIENT_NAME     # inside the object only
    assert json.loads(outputs["markups"].read_text())["markups"][0]["type"] == "Fiducial"
    for fmt in ("stl", "ply", "obj"):
        files = sorted(p.name for p in outputs[fmt].iterdir())
        assert "manifest.json" in files and f"L4.{fmt}" in files
        _no_identifiers((outputs[fmt] / "manifest.json").read_text(), f"the {fmt} manifest")
    _no_identifiers(outputs["markups"].read_text(), "the markups")
    for path in tmp_path.rglob("*"):
        _no_identifiers(path.name, "a file name")
    log_dir = Path(os.environ["SPINEPLAN_LOG_DIR"])
    for log in log_dir.rglob("*"):
        if log.is_file():
            _no_identifiers(log.read_text(errors="replace"), f"the log {log.name}")


def test_dicom_seg_without_source_is_bad_input(study, tmp_path):
    _, result, _, _ = study
    run = spineplan("export", result, "--format", "dicom-seg", "-o", tmp_path / "seg.dcm")
    assert run.returncode == 2
    assert "DICOM-SEG needs the DICOM series the labels were made on: pass --source" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "seg.dcm").exists()


def test_other_bad_input_exits_2(study, tmp_path):
    dicom_dir, result, _, _ = study
    cases = {
        "not a result folder": (["export", dicom_dir, "--format", "markups", "-o", tmp_path / "m.json"],
                                "not a SpinePlan result folder"),
        "missing result": (["export", tmp_path / "nope", "--format", "stl", "-o", tmp_path / "m"], "not a folder"),
        "unknown format": (["export", result, "--format", "vtk", "-o", tmp_path / "m"], "invalid choice"),
        "wrong series": (["export", result, "--format", "rtstruct", "-o", tmp_path / "rt.dcm", "--source",
                          dicom_dir, "--series", "1.2.3"], "The labels were made on series"),
    }
    for what, (args, message) in cases.items():
        run = spineplan(*args)
        assert run.returncode == 2, what
        assert message in run.stderr, (what, run.stderr)
        assert "Traceback" not in run.stderr, what
