"""The planning report and the screws as meshes (spine_core.exports.report, spine_core.workflows.plan_report,
spine_core.meshes.implants), headless on a small phantom: the page's content and escaping, a report without
the scan, the workstation's in-memory labels, and closed screw cylinders where the plan puts them."""
import html
import json

import numpy as np
import pytest

from spine_core.errors import SpineError
from spine_core.exports import ResultExport
from spine_core.exports.report import CHECK_STATEMENT, ReportContent, report_html
from spine_core.meshes.implants import cylinder_mesh
from spine_core.planning import NotPlanned, Screw
from spine_core.workflows.plan_export import export_plan, session_source


@pytest.fixture(scope="module")
def phantom():
    from spine_core.phantom import PhantomOptions, generate_phantom

    return generate_phantom(PhantomOptions(seed=5, first_level="L3", last_level="L5", spacing_mm=(1.0, 1.0, 1.0),
                                           fov_mm=140, centre_on_spine=True, shape_jitter=0.0))


def test_a_screw_mesh_is_a_closed_cylinder_from_entry_to_tip():
    entry, tip, diameter = np.array([10.0, 40.0, -3.0]), np.array([-2.0, 5.0, -8.0]), 6.5
    mesh = cylinder_mesh(entry, tip, diameter, "L4 left", 3)
    edges = np.sort(np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]), axis=1)
    assert (np.unique(edges, axis=0, return_counts=True)[1] == 2).all()          # closed: each edge twice
    length = np.linalg.norm(tip - entry)
    axis = (tip - entry) / length
    along = (mesh.vertices - entry) @ axis
    radial = np.linalg.norm(mesh.vertices - entry - along[:, None] * axis, axis=1)
    assert along.min() == pytest.approx(0.0, abs=1e-9) and along.max() == pytest.approx(length)
    assert radial.max() == pytest.approx(diameter / 2)
    assert mesh.signed_volume_mm3() == pytest.approx(np.pi * (diameter / 2) ** 2 * length, rel=0.02)   # outward


def test_the_page_escapes_what_it_is_given_and_says_what_it_could_not_measure():
    screw = Screw("L4", "left", [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 6.0, 40.0, -2.5, "C", "user", ["<b>moved</b>"])
    page = report_html(ReportContent(
        facts=[("Labels", "<script>alert(1)</script>")], case_status="review", case_flags=["metal: <img src=x>"],
        vertebrae=[{"name": "L4", "volume_ml": 50.0, "anterior_height_mm": 20.0, "middle_height_mm": 22.0,
                    "posterior_height_mm": 25.0, "wedge_ratio": 0.8, "genant_grade": 1, "core_hu": 90.0,
                    "flags": ["low bone density (90 HU < 110)"]},
                   {"name": "L5", "genant_grade": None, "notes": ["a 30% height loss was not graded: ..."], "flags": []}],
        screws=[screw], not_planned=[NotPlanned("L5", "right", "pedicle too narrow")], pictures=[("x", b"\x89PNG")]))
    assert "<script" not in page and "<img src=x>" not in page and "&lt;b&gt;moved" in page
    assert html.escape(CHECK_STATEMENT) in page and "90 (low)" in page and "grade 1" in page and "pedicle too narrow" in page
    assert ">n/g<" in page                 # a loss measured but not graded says so
    assert "L1 or the sacrum is not labelled" in page and ">-2.5<" in page and 'bgcolor="#f9d0cc">C</td>' in page


def test_the_workstation_labels_without_a_scan_make_a_report(phantom, tmp_path):
    source = session_source(phantom.labels, None, {"case": {"status": "ok", "flags": []}}, edits=2)
    summary = export_plan(source, tmp_path / "report", ResultExport("report"))
    assert summary.items == ["report.html"]                        # no PDF printer given: HTML only
    assert any("not at hand" in n for n in summary.notes)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "2 edits" in page and "<td>L4</td>" in page and "not reviewed by a surgeon" in page
    manifest = json.loads((tmp_path / "report" / "manifest.json").read_text())
    assert [f["file"] for f in manifest["files"]] == ["report.html"] and manifest["frame_of_reference_uid"] == ""
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(SpineError, match="holds other files"):
        export_plan(source, tmp_path / "other", ResultExport("report"))
    with pytest.raises(SpineError, match="DICOM-SEG needs the scan's DICOM series: no scan is open"):
        export_plan(source, tmp_path / "seg.dcm", ResultExport("dicom-seg"))


def test_meshes_of_the_workstation_carry_its_screws(phantom, tmp_path):
    from spine_core.planning.files import plan_screws

    screws = plan_screws(phantom.labels).screws
    source = session_source(phantom.labels, phantom.image, {}, screws=screws)
    summary = export_plan(source, tmp_path / "ply", ResultExport("ply"))
    manifest = json.loads((summary.path / "manifest.json").read_text())
    assert len(manifest["screws"]) == len(screws) > 0
    first = manifest["screws"][0]
    assert first["entry_lps"] == pytest.approx(screws[0].entry_lps, abs=1e-3) and first["file"].endswith(".ply")
    assert (summary.path / first["file"]).read_bytes().startswith(b"ply\n")
