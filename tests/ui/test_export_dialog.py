"""File > Export plan (ui/export_dialog.py, ui/export_actions.py) without a window: the formats offered, the
DICOM ones disabled for a scan not read from DICOM (saying why), and an export of what the workstation
shows (edited labels, the plan's screws) through the CLI's workflow, in a Worker."""
import json

import pydicom
import pytest

from spine_core.edits import delete_vertebra
from spine_core.io import load_scan, save_volume
from spine_core.labels import NAME_TO_ID
from spine_core.workflows.plan_export import TARGETS
from tests.core.test_export_dicom import PATIENT_ID, PATIENT_NAME, export_study
from tests.ui import test_controllers
from ui.export_actions import ExportController
from ui.export_dialog import ExportPlanDialog
from ui.preferences import Preferences
from ui.session import Session

ANALYSIS = {"pipeline": "per-vertebra", "provider": "CPUExecutionProvider",
            "models": [{"id": "ct-vertebra-seg", "version": "1.0", "sha256": "ab" * 32}],
            "case": {"status": "review", "flags": ["numbering not anchored: the last rib pair is not in view"]}}


host = test_controllers.host          # the stub host fixture: a real TaskController, no window


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """(DICOM scan, the same scan as NIfTI, labels on their grid, a suggested L4 screw) of an L3-L5 phantom
    written as DICOM with the patient's name and ID."""
    from spine_core.planning.files import plan_screws

    root = tmp_path_factory.mktemp("export-dialog")
    dicom_dir, _, labels, _ = export_study(root)
    scan = load_scan(dicom_dir)
    nifti = load_scan(save_volume(scan, root / "scan.nii.gz"))
    screw = next(s for s in plan_screws(labels).screws if s.vertebra == "L4")
    return scan, nifti, labels, screw


def _controller(host, settings, volume, labels, source=""):
    session = Session()
    session.set_volume(volume, source)
    session.set_labels(labels)
    return ExportController(session, host, Preferences(settings), lambda: dict(ANALYSIS))


def test_the_dialog_offers_every_format_and_says_why_dicom_ones_are_not(qtbot, host, settings, study):
    scan, nifti, labels, _ = study
    exports = _controller(host, settings, nifti, labels)
    unavailable = exports.unavailable()
    assert set(unavailable) == {"dicom-seg", "rtstruct"} and "not read from DICOM" in unavailable["rtstruct"]
    dialog = ExportPlanDialog("/tmp/plan", ["dicom-seg", "markups", "report"], unavailable, exports.summary())
    qtbot.addWidget(dialog)
    assert list(dialog.boxes) == list(TARGETS)
    for fmt in ("dicom-seg", "rtstruct"):
        assert not dialog.boxes[fmt].isEnabled() and "not read from DICOM" in dialog.boxes[fmt].toolTip()
    assert all(dialog.boxes[f].isEnabled() for f in ("markups", "stl", "ply", "obj", "report"))
    assert dialog.chosen_formats() == ["markups", "report"]          # a disabled format is never chosen
    assert dialog.export_button.isEnabled()
    dialog.folder_edit.setText("")
    assert not dialog.export_button.isEnabled()
    assert exports.export(dialog.folder() or "/tmp/plan", ["rtstruct"]) is None     # refused, with the reason
    assert "RTSTRUCT cannot be exported" in host.errors[-1] and "not read from DICOM" in host.errors[-1]
    dicom = _controller(host, settings, scan, labels, scan.metadata.source)
    assert dicom.unavailable() == {}


def test_export_writes_what_the_workstation_shows(qtbot, host, settings, study, tmp_path):
    scan, _, labels, screw = study
    exports = _controller(host, settings, scan, labels, scan.metadata.source)
    session = exports.session
    session.apply(delete_vertebra(session.labels, NAME_TO_ID["L3"]))     # an unsaved edit
    session.set_screws([screw])                                           # the plan's screw
    out = tmp_path / "export"
    with qtbot.waitSignal(exports.exported, timeout=120000) as done:
        exports.export(out, ["report", "dicom-seg", "markups", "stl"])
    assert not host.errors, host.errors
    names = [p.split("/")[-1] for p in done.args[0]]
    assert names == ["segmentation.dcm", "vertebrae.mrk.json", "meshes-stl", "report"]     # in TARGETS' order
    assert "segmentation.dcm" in host.messages[-1] and "report/" in host.messages[-1]
    seg = pydicom.dcmread(out / "segmentation.dcm")
    assert "L3" not in [s.SegmentLabel for s in seg.SegmentSequence]     # the edit, not the result on disk
    assert str(seg.PatientName) == PATIENT_NAME                           # inside the DICOM object only
    manifest = json.loads((out / "meshes-stl" / "manifest.json").read_text())
    assert [s["file"] for s in manifest["screws"]] == [f"screw-L4-{screw.side}.stl"]
    assert manifest["frame_of_reference_uid"] == scan.metadata.frame_of_reference_uid != ""
    assert not (out / "meshes-stl" / "L3.stl").exists()
    html = (out / "report" / "report.html").read_text()
    assert "1 edit" in html and "numbering not anchored" in html and "ab" * 32 in html
    assert "<td>L3</td>" not in html and "<td>L4</td>" in html
    assert (out / "report" / "report.pdf").stat().st_size > 10000
    for path in out.rglob("*"):
        for word in (PATIENT_NAME, PATIENT_ID, "DOE", "JANE"):
            assert word not in path.name
            if path.suffix in (".html", ".json"):
                assert word not in path.read_text(), (word, path)


def test_the_file_menu_offers_export_plan_once_labels_are_shown(qtbot, window, tmp_path):
    from PySide6.QtGui import QAction

    from tests.ui.study import open_and_wait, synthetic_study

    action = next(a for a in window.findChildren(QAction) if a.text() == "Export pla&n...")
    assert not action.isEnabled()
    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    assert action.isEnabled() and action.shortcut().toString() == "Ctrl+Shift+E"
    assert "not read from DICOM" in window.exports.unavailable()["dicom-seg"]
    assert "as opened or analysed" in window.exports.summary()
