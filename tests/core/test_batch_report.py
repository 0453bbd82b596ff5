"""The batch QA report (summary.json, summary.csv, report.html) and the sagittal thumbnail, on a
batch folder written by hand: no models run."""
from __future__ import annotations

import base64
import csv
import json
import re
import time

import numpy as np
import pytest

from spine_core.pictures import save_sagittal_thumbnail
from spine_core.volume import LabelMap, Volume, affine_from_geometry
from spine_core.workflows.batch_folder import BatchFolder
from spine_core.workflows.batch_report import batch_counts, write_reports

NASTY = "<b>x&y</b>"


@pytest.fixture(scope="module")
def phantom():
    from spine_core.phantom import PhantomOptions, generate_phantom

    return generate_phantom(PhantomOptions(seed=3, first_level="L1", last_level="L3", spacing_mm=(3.0, 3.0, 3.0),
                                           fov_mm=120.0, centre_on_spine=True, noise_hu=5.0))


def _pixels(path, mode: str = "RGB") -> np.ndarray:
    from PIL import Image

    with Image.open(path) as picture:
        return np.asarray(picture.convert(mode))


def _finish(folder: BatchFolder, case_id: str, state: str, **fields) -> None:
    folder.append(case_id, "queued", source=f"/in/{case_id}.nii.gz", kind="file")
    folder.append(case_id, "running", source=f"/in/{case_id}.nii.gz", kind="file")
    if state != "running":
        folder.append(case_id, state, **fields)


@pytest.fixture
def batch(tmp_path, phantom):
    folder = BatchFolder(tmp_path / "out")
    _finish(folder, "ok-case", "done", status="ok", flags=["vertebra at the scan edge: L3"], levels="L1-L3",
            n_vertebrae=3, seconds=12.5, series_uid="1.2.3")
    _finish(folder, NASTY, "done", status="review",
            flags=["low confidence: L2", "suspected fracture: L1"], levels="L1-L3", n_vertebrae=3, seconds=20.25)
    _finish(folder, "broken", "failed", status="failed", reason="slice 47 is missing <of 90>",
            flags=["processing failure: slice 47 is missing"], seconds=1.0)
    _finish(folder, "=cmd|x", "refused", status="failed", reason="not a CT", flags=["refused: not a CT"])
    _finish(folder, "waiting", "running")
    result = folder.case_dir("ok-case")
    (result / "meshes").mkdir(parents=True)
    (result / "centroids.json").write_text(json.dumps({"case": {"status": "ok", "flags": []}, "vertebrae": []}))
    (result / "labels.nii.gz").write_bytes(b"")
    save_sagittal_thumbnail(phantom.image, phantom.labels, folder.thumbnail("ok-case"), height_px=160)
    folder.save_review("ok-case", "accepted", note="fine & dandy", reviewer="dr <who>")
    return folder


def test_counts_cover_every_state_status_and_decision(batch):
    counts = batch_counts(list(batch.records().values()))
    assert counts == {"total": 5, "done": 2, "ok": 1, "review": 1, "failed": 2, "refused": 1, "not_finished": 1,
                      "accepted": 1, "corrected": 0, "rejected": 0, "undecided": 3}


def test_summary_json_holds_meta_counts_and_cases_in_review_order(batch):
    paths = write_reports(batch, {"input": "/data/night", "workers": 2, "spineplan": "0.1.0"})
    assert set(paths) == {"summary.json", "summary.csv", "report.html"}
    doc = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert doc["batch"]["input"] == "/data/night" and doc["batch"]["workers"] == 2
    assert doc["batch"]["counts"]["review"] == 1 and doc["batch"]["counts"]["failed"] == 2
    order = [c["case_id"] for c in doc["cases"]]
    assert order == [NASTY, "=cmd|x", "broken", "waiting", "ok-case"]    # review, failed, unfinished; decided last
    by_id = {c["case_id"]: c for c in doc["cases"]}
    assert by_id["ok-case"]["thumbnail"] == "thumbnails/ok-case.png"
    assert by_id["ok-case"]["result"] == "cases/ok-case"
    assert by_id["ok-case"]["review"]["decision"] == "accepted"
    assert by_id["=cmd|x"]["status"] == "failed" and by_id["=cmd|x"]["state"] == "refused"
    assert not list(batch.root.glob(".*"))        # atomic writes leave no temporary files


def test_summary_csv_has_one_row_per_case(batch):
    paths = write_reports(batch)
    with open(paths["summary.csv"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case_id"] for r in rows] == [NASTY, "'=cmd|x", "broken", "waiting", "ok-case"]
    review = rows[0]
    assert review["status"] == "review" and review["flags"] == "low confidence: L2; suspected fracture: L1"
    assert review["n_vertebrae"] == "3" and review["seconds"] == "20.25" and review["levels"] == "L1-L3"
    assert rows[2]["reason"] == "slice 47 is missing <of 90>" and rows[2]["state"] == "failed"
    assert rows[-1]["review_decision"] == "accepted" and rows[-1]["review_note"] == "fine & dandy"
    assert rows[-1]["series_uid"] == "1.2.3" and rows[-1]["source"] == "/in/ok-case.nii.gz"


def test_report_html_is_self_contained_escaped_and_shows_reviews(batch):
    page = write_reports(batch, {"input": "/data/<night>"})["report.html"].read_text(encoding="utf-8")
    assert NASTY not in page and "&lt;b&gt;x&amp;y&lt;/b&gt;" in page
    assert "dr <who>" not in page and "dr &lt;who&gt;" in page
    assert "/data/&lt;night&gt;" in page and "slice 47 is missing &lt;of 90&gt;" in page
    # nothing fetched from elsewhere: no external scripts, styles or pictures
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 1 and base64.b64decode(uris[0]) == batch.thumbnail("ok-case").read_bytes()
    assert page.count('loading="lazy"') == 1
    assert 'href="cases/ok-case/"' in page
    assert '<span class="decision accepted">accepted</span>' in page and "fine &amp; dandy" in page
    assert 'class="badge review"' in page and 'class="badge failed"' in page and 'class="badge ok"' in page
    assert 'title="the analysis is unsure' not in page      # case-level help, not the per-vertebra one
    assert "vertebrae below confidence" in page            # CASE_FLAG_HELP as the flag's tooltip
    assert not re.search(r"%[A-Z0-9]+%", page)              # every slot of the page filled
    assert "<h1>SpinePlan batch QA report</h1>" in page
    rows = re.findall(r'<tr class="(\w*)">', page)
    assert rows == ["review", "failed", "failed", "running", "ok"]


def test_report_of_an_empty_batch(tmp_path):
    folder = BatchFolder(tmp_path / "empty")
    paths = write_reports(folder)
    assert json.loads(paths["summary.json"].read_text())["cases"] == []
    assert "no cases yet" in paths["report.html"].read_text(encoding="utf-8")


def test_thumbnail_of_an_empty_label_map_shows_the_mid_sagittal_scan(tmp_path):
    shape = (60, 50, 80)
    ct = np.full(shape, -1000, np.int16)
    ct[20:40, 10:40, :] = 600                      # a bright column in the middle
    scan = Volume(ct, affine_from_geometry((2.0, 2.0, 2.5)))
    labels = LabelMap(np.zeros(shape, np.uint8), scan.affine, names={1: "L1"})
    path = save_sagittal_thumbnail(scan, labels, tmp_path / "thumbs" / "empty.png", height_px=200)
    picture = _pixels(path, "L")
    assert picture.shape[0] == 200
    assert picture[100, picture.shape[1] // 2] > 120          # the column (600 HU), cut through its middle
    assert picture[100, 2] < 30                               # air


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, -1.0])], ids=["LPS", "RAI"])
def test_thumbnail_puts_superior_up_and_anterior_left(tmp_path, direction):
    shape = (40, 40, 60)
    ct = np.full(shape, 0, np.int16)
    ids = np.zeros(shape, np.uint8)
    scan = Volume(ct, affine_from_geometry((2.0, 2.0, 2.0), direction))
    lps = scan.index_to_lps(np.argwhere(np.ones(shape, bool))).reshape(*shape, 3)
    lo, hi = lps.reshape(-1, 3).min(axis=0), lps.reshape(-1, 3).max(axis=0)
    top = lps[..., 2] > lo[2] + 0.75 * (hi[2] - lo[2])            # the most superior quarter
    front = lps[..., 1] < lo[1] + 0.5 * (hi[1] - lo[1])           # the anterior half
    ids[top & front] = 20                                          # L1: an orange
    labels = LabelMap(ids, scan.affine, names={20: "L1"})
    picture = _pixels(save_sagittal_thumbnail(scan, labels, tmp_path / "o.png", 120)).astype(int)
    orange = picture[..., 0] - picture[..., 2] > 60
    rows, cols = np.nonzero(orange)
    assert rows.max() < 0.3 * picture.shape[0]                      # superior up
    assert np.median(cols) < 0.5 * picture.shape[1]                 # anterior left


def test_thumbnail_is_small_and_fast(tmp_path, phantom):
    path = tmp_path / "t.png"
    began = time.perf_counter()
    save_sagittal_thumbnail(phantom.image, phantom.labels, path)
    assert time.perf_counter() - began < 2.0
    assert 2_000 < path.stat().st_size < 80_000
    picture = _pixels(path).astype(int)
    assert picture.shape[0] == 320
    # labels coloured: the lumbar oranges (red > blue) appear in the middle rows
    orange = (picture[..., 0] - picture[..., 2] > 60)
    assert orange[40:280].any()
    assert not list(tmp_path.glob(".*"))


def test_thumbnail_of_a_thin_slab_is_no_wider_than_its_limit(tmp_path):
    from spine_core.pictures import MAX_ASPECT

    shape = (100, 100, 8)                                         # 200 mm deep, 20 mm tall
    scan = Volume(np.zeros(shape, np.int16), affine_from_geometry((2.0, 2.0, 2.5)))
    labels = LabelMap(np.zeros(shape, np.uint8), scan.affine, names={1: "L1"})
    height, width = _pixels(save_sagittal_thumbnail(scan, labels, tmp_path / "slab.png", 200)).shape[:2]
    assert width <= MAX_ASPECT * 200 + 1 and height < 200


def test_rewriting_after_a_review_keeps_the_batch_facts(batch):
    write_reports(batch, {"input": "/data/night", "pipeline": "m3"})
    batch.save_review(NASTY, "rejected", note="two L2")
    paths = write_reports(batch)                                  # as the review window does
    doc = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert doc["batch"]["input"] == "/data/night" and doc["batch"]["pipeline"] == "m3"
    assert doc["batch"]["counts"]["rejected"] == 1
    assert [c["case_id"] for c in doc["cases"][-2:]] == [NASTY, "ok-case"]     # decided ones last
    assert "/data/night" in paths["report.html"].read_text(encoding="utf-8")
