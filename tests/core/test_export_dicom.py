"""Exports for planning and navigation (spine_core.exports) on a phantom written as a DICOM series:
DICOM-SEG read back voxel for voxel, RTSTRUCT contours filled back to the labels, Slicer markups at the
label centroids, dciodvfy on both DICOM objects, and the refusals a clinician can act on."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from spine_core.errors import GridMismatch, SeriesNotFound, SpineError, UnsupportedImage
from spine_core.exports import ResultExport, export_result
from spine_core.io import load_scan
from spine_core.io.dicom_writer import DicomOptions, write_dicom_series
from spine_core.volume import LabelMap, Volume

PATIENT_NAME, PATIENT_ID = "DOE^JANE", "PID-73519"
_CACHE = {}


def _oracle(labels_array):
    """A pipeline that returns the given labels (what a perfect analysis would)."""
    from spine_core.pipeline.api import SegmentResult, VertebraResult

    def segment(volume, options, progress):
        labels = LabelMap.on_grid(volume, labels_array)
        rows = [VertebraResult(i, labels.names[i], labels.index_to_lps(np.argwhere(labels.array == i).mean(0)),
                               0.9, 1.0) for i in labels.ids()]
        return SegmentResult(labels, rows, {"total": 0.0}, "oracle", [])
    return segment


def set_recorded_source(result: Path, source) -> None:
    """metrics.json's input.source (newer results record it): a path, or None to leave it out."""
    path = result / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["input"].pop("source", None)
    if source is not None:
        metrics["input"]["source"] = str(source)
    path.write_text(json.dumps(metrics))


def export_study(root: Path, orientation: str = "LPS", tilt_deg: float = 0.0):
    """(DICOM folder, result folder, labels on the loaded grid, phantom) for a small L2-sacrum phantom
    with discs; ``tilt_deg`` writes it with a gantry tilt (the loader resamples such a series)."""
    from scipy import ndimage

    from spine_core.phantom import PhantomOptions, generate_phantom
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.workflows.analysis import analyse_to_folder

    phantom = generate_phantom(PhantomOptions(seed=3, first_level="L3", last_level="L5", spacing_mm=(1.5, 1.5, 2.0),
                                              fov_mm=120.0, centre_on_spine=True, label_discs=True, noise_hu=5.0,
                                              orientation=orientation))
    affine = phantom.image.affine.copy()
    affine[1, 2] += affine[2, 2] * np.tan(np.radians(tilt_deg))
    written = Volume(phantom.image.array, affine, phantom.image.metadata)
    write_dicom_series(written, root / "dicom", DicomOptions(patient_name=PATIENT_NAME, patient_id=PATIENT_ID))
    volume = load_scan(root / "dicom")
    to_written = np.linalg.inv(affine) @ volume.affine
    labels = ndimage.affine_transform(phantom.labels.array, to_written[:3, :3], to_written[:3, 3],
                                      output_shape=volume.shape, order=0)
    analyse_to_folder(volume, root / "result", SegmentOptions(), segment=_oracle(labels))
    set_recorded_source(root / "result", None)
    return root / "dicom", root / "result", LabelMap.on_grid(volume, labels), phantom


def _study(factory, orientation="LPS"):
    if orientation not in _CACHE:
        _CACHE[orientation] = export_study(factory.mktemp(f"study-{orientation}"), orientation)
    return _CACHE[orientation]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return _study(tmp_path_factory)


@pytest.fixture(scope="module", params=["LPS", "RAI"])       # RAI: loaded as RAS, slices in reverse
def any_study(request, tmp_path_factory):
    return _study(tmp_path_factory, request.param)


def source_slices(dicom_dir: Path) -> list:
    """The source headers sorted along the slice normal, as the loader stacks them."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(Path(dicom_dir).iterdir())]
    iop = np.array(headers[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(headers, key=lambda ds: float(np.array(ds.ImagePositionPatient, float) @ normal))


def rasterise_rtstruct(path: Path, headers: list) -> dict[int, np.ndarray]:
    """ROI number -> (slice, row, column) mask, each slice's contours filled with the even-odd rule."""
    from skimage.draw import polygon

    ds = pydicom.dcmread(path)
    iop = np.array(headers[0].ImageOrientationPatient, float)
    row_dir, col_dir = iop[:3], iop[3:]
    row_spacing, col_spacing = (float(v) for v in headers[0].PixelSpacing)
    shape = (int(headers[0].Rows), int(headers[0].Columns))
    index = {h.SOPInstanceUID: k for k, h in enumerate(headers)}
    masks = {}
    for roi in ds.ROIContourSequence:
        mask = masks.setdefault(int(roi.ReferencedROINumber), np.zeros((len(headers), *shape), bool))
        for contour in roi.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            k = index[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            points = np.array(contour.ContourData, float).reshape(-1, 3) - np.array(headers[k].ImagePositionPatient,
                                                                                    float)
            assert len(points) == int(contour.NumberOfContourPoints)
            assert np.abs(points @ np.cross(row_dir, col_dir)).max() < 1e-3        # on its slice
            rr, cc = polygon(points @ col_dir / row_spacing, points @ row_dir / col_spacing, shape)
            filled = np.zeros(shape, bool)
            filled[rr, cc] = True
            mask[k] ^= filled
    return masks


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def dciodvfy(path: Path) -> list[str]:
    """dciodvfy's messages on ``path`` less the DICOMDIR hints (not about this object)."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed; the DICOM validity check needs it")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if "build DICOMDIR" not in line]


def test_dicom_seg_reads_back_voxel_for_voxel(any_study, tmp_path):
    import highdicom as hd

    dicom_dir, result, labels, _ = any_study
    summary = export_result(result, tmp_path, ResultExport("dicom-seg", source=dicom_dir))
    assert summary.path == tmp_path / "segmentation.dcm" and not summary.notes
    seg = hd.seg.segread(summary.path)
    headers = source_slices(dicom_dir)
    assert seg.SegmentationType == "BINARY"
    numbers = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in headers], combine_segments=True)
    by_name = {name: i for i, name in labels.names.items()}
    lut = np.zeros(len(seg.SegmentSequence) + 1, np.int16)
    for item in seg.SegmentSequence:
        lut[item.SegmentNumber] = by_name[item.SegmentLabel]
    assert np.array_equal(lut[numbers], labels.array.transpose(2, 1, 0))
    assert seg.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == headers[0].SeriesInstanceUID
    assert (str(seg.PatientName), seg.PatientID) == (PATIENT_NAME, PATIENT_ID)


def test_dicom_seg_segments_are_coded_coloured_and_attributed(study, tmp_path):
    import highdicom as hd

    from spine_core.labels import label_color
    from spine_core.plan import app_version

    dicom_dir, result, labels, _ = study
    seg = hd.seg.segread(export_result(result, tmp_path / "s.dcm", ResultExport("dicom-seg", source=dicom_dir)).path)
    by_name = {name: i for i, name in labels.names.items()}
    expected = {"L3": "36470004", "L4": "11994002", "L5": "49668003", "sacrum": "54735007", "L3/L4": "62551000",
                "L4/L5": "84020006"}
    items = {item.SegmentLabel: item for item in seg.SegmentSequence}
    assert set(items) == set(labels.names.values())
    for name, code in expected.items():
        assert items[name].SegmentedPropertyTypeCodeSequence[0].CodeValue == code
    for name, item in items.items():
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"   # anatomical structure
        assert item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
        assert item.SegmentAlgorithmType == "AUTOMATIC" and item.SegmentAlgorithmName == "SpinePlan"
        assert item.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == app_version()
        rgb = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue).to_rgb()
        assert np.allclose(rgb, label_color(by_name[name]), atol=2)


def test_dicom_seg_lies_where_the_labels_are(study, tmp_path):
    """highdicom's own geometry of the segmentation (its volume affine) puts each vertebra where the
    phantom's label centroid is."""
    import highdicom as hd

    dicom_dir, result, labels, phantom = study
    seg = hd.seg.segread(export_result(result, tmp_path / "s.dcm", ResultExport("dicom-seg", source=dicom_dir)).path)
    volume = seg.get_volume(combine_segments=True)
    numbers = {item.SegmentLabel: item.SegmentNumber for item in seg.SegmentSequence}
    for label_id in (22, 23, 24):
        index = np.argwhere(volume.array == numbers[labels.names[label_id]]).mean(axis=0)
        lps = volume.affine[:3, :3] @ index + volume.affine[:3, 3]
        assert np.linalg.norm(lps - phantom.centroids[label_id]) < 0.5


def test_rtstruct_contours_fill_back_to_the_labels(any_study, tmp_path):
    dicom_dir, result, labels, _ = any_study
    summary = export_result(result, tmp_path, ResultExport("rtstruct", source=dicom_dir))
    headers = source_slices(dicom_dir)
    masks = rasterise_rtstruct(summary.path, headers)
    frames = labels.array.transpose(2, 1, 0)
    assert set(masks) == set(labels.ids())
    scores = {labels.names[i]: dice(masks[i], frames == i) for i in labels.ids()}
    assert min(scores.values()) >= 0.95, scores
    ds = pydicom.dcmread(summary.path)
    names = {int(roi.ROINumber): roi.ROIName for roi in ds.StructureSetROISequence}
    assert names == {i: labels.names[i] for i in labels.ids()}
    reference = ds.ReferencedFrameOfReferenceSequence[0]
    assert reference.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    series = reference.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == headers[0].SeriesInstanceUID
    assert {c.ReferencedSOPInstanceUID for c in series.ContourImageSequence} == {h.SOPInstanceUID for h in headers}
    assert (str(ds.PatientName), ds.PatientID) == (PATIENT_NAME, PATIENT_ID)


def test_rtstruct_keeps_holes_as_contours_inside_contours():
    """A ring on a slice (the vertebral foramen closed by the arch) is two contours; even-odd filling
    gives the ring back, hole included."""
    from skimage.draw import polygon

    from spine_core.exports.rtstruct import slice_contours

    ring = np.zeros((20, 20), bool)
    ring[3:17, 3:17], ring[7:12, 6:13] = True, False
    polygons = slice_contours(ring)
    assert len(polygons) == 2
    filled = np.zeros_like(ring)
    for p in polygons:
        one = np.zeros_like(ring)
        one[polygon(p[:, 0], p[:, 1], ring.shape)] = True
        filled ^= one
    assert np.array_equal(filled, ring)


def test_dicom_objects_pass_dciodvfy(study, tmp_path):
    dicom_dir, result, _, _ = study
    for fmt in ("dicom-seg", "rtstruct"):
        path = export_result(result, tmp_path / f"{fmt}.dcm", ResultExport(fmt, source=dicom_dir)).path
        messages = dciodvfy(path)
        errors = [line for line in messages if line.startswith("Error")]
        assert not errors, f"{fmt}: {errors}"


def test_markups_centroids_at_the_label_centroids(study, tmp_path):
    dicom_dir, result, labels, phantom = study
    summary = export_result(result, tmp_path, ResultExport("markups"))
    assert summary.path == tmp_path / "vertebrae.mrk.json"
    doc = json.loads(summary.path.read_text())
    assert doc["@schema"].endswith("markups-schema-v1.0.3.json#")
    [points] = doc["markups"]                      # no screws in the result: no line markups
    assert points["type"] == "Fiducial" and points["coordinateSystem"] == "LPS"
    assert points["coordinateUnits"] == "mm"
    by_name = {name: i for i, name in labels.names.items()}
    labelled = [p["label"] for p in points["controlPoints"]]
    assert labelled == ["L2", "L3", "L4", "L5", "sacrum"]           # vertebrae, head to feet; no discs
    for point in points["controlPoints"]:
        assert point["positionStatus"] == "defined" and len(point["orientation"]) == 9
        error = np.linalg.norm(np.array(point["position"]) - phantom.centroids[by_name[point["label"]]])
        assert error < 0.5, point["label"]
        assert point["description"].startswith("confidence 0.90")


def test_markups_carry_screws_as_lines(study, tmp_path):
    from spine_core.exports.markups import label_centroids, markups_document

    _, _, labels, _ = study
    screws = [("L4 left", (10.0, 20.0, -300.0), (12.0, -20.0, -302.0)),
              ("L4 right", (-10.0, 20.0, -300.0), (-12.0, -20.0, -302.0))]
    doc = markups_document(label_centroids(labels), screws)
    lines = [m for m in doc["markups"] if m["type"] == "Line"]
    assert [m["name"] for m in lines] == ["L4 left", "L4 right"]
    first = lines[0]
    assert [p["label"] for p in first["controlPoints"]] == ["entry", "tip"]
    assert first["controlPoints"][1]["position"] == [12.0, -20.0, -302.0]
    assert first["measurements"][0]["value"] == pytest.approx(np.linalg.norm([2, -40, -2]), abs=0.01)
    summary = export_result(study[1], tmp_path / "plan.mrk.json", ResultExport("markups", screws=tuple(screws)))
    assert summary.items[-2:] == ["L4 left", "L4 right"]


def test_mesh_formats_delegate_to_the_mesh_export(study, tmp_path):
    from spine_core.export import read_manifest

    _, result, labels, _ = study
    summary = export_result(result, tmp_path / "meshes", ResultExport("obj"))
    manifest = read_manifest(summary.path)
    assert manifest["format"] == "obj" and manifest["coordinate_system"] == "LPS"
    assert {m["name"] for m in manifest["meshes"]} == set(labels.names.values())
    assert manifest["source_series_uid"] == json.loads((result / "metrics.json").read_text())["input"]["series_uid"]


def test_mesh_export_never_replaces_a_folder_of_other_files(study, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SpineError, match="holds other files"):
        export_result(study[1], tmp_path, ResultExport("stl"))           # -o ~/Desktop must not empty it
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_dicom_export_needs_its_source(study, tmp_path):
    _, result, _, _ = study
    for fmt, what in (("dicom-seg", "DICOM-SEG"), ("rtstruct", "RTSTRUCT")):
        with pytest.raises(SpineError, match=f"{what} needs the DICOM series the labels were made on: pass --source"):
            export_result(result, tmp_path / "x.dcm", ResultExport(fmt))
    assert not list(tmp_path.iterdir())


def test_the_source_recorded_in_the_result_is_used(study, tmp_path):
    dicom_dir, result, _, _ = study
    result = shutil.copytree(result, tmp_path / "result")
    set_recorded_source(result, dicom_dir)
    assert export_result(result, tmp_path / "seg.dcm", ResultExport("dicom-seg")).path.is_file()
    set_recorded_source(result, tmp_path / "moved-away")
    with pytest.raises(SpineError, match="pass --source"):
        export_result(result, tmp_path / "seg2.dcm", ResultExport("dicom-seg"))


def test_another_series_is_refused(study, tmp_path):
    from tests.conftest import make_volume

    _, result, _, _ = study
    other = tmp_path / "other"
    write_dicom_series(make_volume(shape=(20, 20, 6)), other)
    with pytest.raises(SeriesNotFound, match="The labels were made on series .* which is not in"):
        export_result(result, tmp_path / "x.dcm", ResultExport("dicom-seg", source=other))
    with pytest.raises(SpineError, match="The labels were made on series .*, not on series 1.2.3"):
        export_result(result, tmp_path / "x.dcm", ResultExport("dicom-seg", source=other, series_uid="1.2.3"))
    unrecorded = shutil.copytree(result, tmp_path / "result")
    metrics = json.loads((unrecorded / "metrics.json").read_text())
    metrics["input"]["series_uid"] = ""                       # e.g. analysed from a NIfTI copy
    (unrecorded / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(GridMismatch, match="not on the grid of series"):
        export_result(unrecorded, tmp_path / "x.dcm", ResultExport("rtstruct", source=other))
    assert not (tmp_path / "x.dcm").exists()


def test_a_series_without_uids_is_refused(study, tmp_path):
    dicom_dir, result, _, _ = study
    stripped = tmp_path / "anonymised"
    stripped.mkdir()
    for path in dicom_dir.iterdir():
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = ""
        ds.save_as(stripped / path.name)
    with pytest.raises(UnsupportedImage, match="has no StudyInstanceUID"):
        export_result(result, tmp_path / "x.dcm", ResultExport("dicom-seg", source=stripped))


def test_a_tilted_series_gets_the_labels_back_on_its_own_slices(tmp_path):
    """The loader resamples a gantry-tilted series; the export samples the labels back onto the
    original slices, says so, and the DICOM-SEG still matches the phantom there."""
    import highdicom as hd

    dicom_dir, result, _, phantom = export_study(tmp_path / "tilt", tilt_deg=12.0)
    summary = export_result(result, tmp_path / "seg.dcm", ResultExport("dicom-seg", source=dicom_dir))
    assert summary.notes and "original slices" in summary.notes[0]
    seg = hd.seg.segread(summary.path)
    numbers = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in source_slices(dicom_dir)],
                                                combine_segments=True)
    truth = phantom.labels.array.transpose(2, 1, 0)
    for item in seg.SegmentSequence:
        if item.SegmentLabel in ("L3", "L4", "L5"):
            label_id = {n: i for i, n in phantom.labels.names.items()}[item.SegmentLabel]
            assert dice(numbers == item.SegmentNumber, truth == label_id) > 0.9


@pytest.mark.shared_data
def test_real_series_round_trip(shared_data, tmp_path):
    """The TotalSegmentator example series: it was anonymised without study/series UIDs, so it is
    refused as it is; a copy carrying the UIDs (as PACS sends it) exports, reads back voxel for voxel
    (labels put on its grid first: they are stored flipped, LAS) and passes dciodvfy."""
    import highdicom as hd

    from spine_core.io import load_labels, save_labelmap
    from spine_core.workflows.analysis import labels_on_grid

    source = shared_data / "ct/ts_dicom/dicom"
    volume = load_scan(source)
    labels, note = labels_on_grid(load_labels(shared_data / "ct/ts_dicom/labels.nii.gz"), volume)
    assert labels.same_grid(volume, atol_mm=1e-2) and labels.ids() == [18, 19]
    result = tmp_path / "result"
    save_labelmap(labels, result / "labels.nii.gz")
    (result / "metrics.json").write_text(json.dumps({"input": {
        "shape": list(volume.shape), "spacing_mm": [float(s) for s in volume.spacing],
        "series_uid": volume.metadata.series_uid, "source": str(source)}}))
    with pytest.raises(UnsupportedImage, match="StudyInstanceUID, SeriesInstanceUID"):
        export_result(result, tmp_path / "x.dcm", ResultExport("dicom-seg"))

    copy = tmp_path / "dicom"
    copy.mkdir()
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for n, path in enumerate(sorted(source.iterdir())):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        meta = ds.file_meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.save_as(copy / f"IM{n:03d}.dcm")
    headers = source_slices(copy)
    seg_path = export_result(result, tmp_path / "seg.dcm", ResultExport("dicom-seg", source=copy)).path
    seg = hd.seg.segread(seg_path)
    numbers = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in headers], combine_segments=True)
    lut = np.zeros(3, np.int16)
    for item in seg.SegmentSequence:
        lut[item.SegmentNumber] = {"T11": 18, "T12": 19}[item.SegmentLabel]
    assert np.array_equal(lut[numbers], labels.array.transpose(2, 1, 0))
    rt_path = export_result(result, tmp_path / "rt.dcm", ResultExport("rtstruct", source=copy)).path
    masks = rasterise_rtstruct(rt_path, headers)
    frames = labels.array.transpose(2, 1, 0)
    assert min(dice(masks[i], frames == i) for i in (18, 19)) >= 0.95
    for path in (seg_path, rt_path):
        assert not [line for line in dciodvfy(path) if line.startswith("Error")]
