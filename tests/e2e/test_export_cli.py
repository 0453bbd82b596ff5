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


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory):
    """The quick demo study (`spineplan demo --quick`: DICOM, patient PHANTOM) and a result folder with its
    exact labels, as a perfect analysis would write it."""
    from spine_core.io import load_labels, load_scan
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.workflows.analysis import analyse_to_folder
    from tests.core.test_export_dicom import _oracle

    root = tmp_path_factory.mktemp("export-demo")
    run = spineplan("demo", "--quick", "--out", root / "demo")
    assert run.returncode == 0, run.stderr
    scan = load_scan(root / "demo" / "dicom")
    labels = load_labels(root / "demo" / "labels.nii.gz", grid=scan)
    analyse_to_folder(scan, root / "result", SegmentOptions(), segment=_oracle(labels.array))
    return root / "demo" / "dicom", root / "result", scan


def _report_checks(out: Path, identifiers) -> str:
    """The report folder's files, the manifest's hashes, a self-contained page; returns the page."""
    import hashlib

    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.html", "report.pdf"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["coordinate_system"] == "LPS" and manifest["units"] == "mm"
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    html = (out / "report.html").read_text()
    assert "<script" not in html.lower() and 'src="http' not in html and "url(" not in html
    assert html.count('src="data:image/png;base64,') == 1
    assert "only as good as the labels" in html
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    for word in identifiers:
        for text, where in ((html, "report.html"), (json.dumps(manifest), "the manifest")):
            assert word not in text, f"patient identifier {word!r} in {where}"
    return html


def test_report_on_the_demo_result(demo_result, tmp_path):
    dicom_dir, result, scan = demo_result
    out = tmp_path / "report"
    run = spineplan("export", result, "--format", "report", "-o", out, "--scan", dicom_dir)
    assert run.returncode == 0, run.stderr
    assert f"Wrote {out} (report: report.html, report.pdf)" in run.stdout
    html = _report_checks(out, ("PHANTOM",))
    manifest = json.loads((out / "manifest.json").read_text())
    frame = str(pydicom.dcmread(next(dicom_dir.iterdir()), stop_before_pixels=True).FrameOfReferenceUID)
    assert manifest["frame_of_reference_uid"] == frame and manifest["source_series_uid"] == scan.metadata.series_uid
    for name in ("T12", "L1", "L3", "L5"):
        assert f"<td>{name}</td>" in html
    assert "L1 superior endplate to sacrum superior endplate" in html         # lordosis, with what it used
    assert "SpinePlan&#x27;s suggestions for this report, not reviewed" in html   # no plan: suggested screws
    assert html.count("<td>suggested</td>") >= 8
    for path in tmp_path.rglob("*"):
        assert "PHANTOM" not in path.name


def test_report_and_meshes_carry_the_planned_screws(study, tmp_path):
    import shutil

    dicom_dir, result, _, _ = study
    result = shutil.copytree(result, tmp_path / "result")
    run = spineplan("screws", result, "--scan", dicom_dir)
    assert run.returncode == 0, run.stderr
    planned = json.loads((result / "screws.json").read_text())["screws"]
    assert planned
    run = spineplan("export", result, "--format", "report", "-o", tmp_path / "report", "--scan", dicom_dir)
    assert run.returncode == 0, run.stderr
    html = _report_checks(tmp_path / "report", IDENTIFIERS)
    assert "The plan&#x27;s screws (screws.json" in html and "<td>suggested</td>" in html
    assert html.count('bgcolor="#d9f2d9">A</td>') == len(planned)        # each suggestion keeps 1 mm: grade A
    run = spineplan("export", result, "--format", "stl", "-o", tmp_path / "stl")
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "stl" / "manifest.json").read_text())
    assert len(manifest["screws"]) == len(planned)
    for entry in manifest["screws"]:
        assert (tmp_path / "stl" / entry["file"]).is_file() and entry["file"].startswith("screw-")
    for path in tmp_path.rglob("*"):
        _no_identifiers(path.name, "a file name")
    for log in Path(os.environ["SPINEPLAN_LOG_DIR"]).rglob("*"):
        if log.is_file():
            _no_identifiers(log.read_text(errors="replace"), f"the log {log.name}")
