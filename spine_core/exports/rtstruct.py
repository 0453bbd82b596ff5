"""The vertebra labels as a DICOM RT Structure Set: one ROI per vertebra / disc, contours per slice.

Navigation and planning systems that read no DICOM-SEG read RTSTRUCT. Contours are traced on each
slice of the source series (skimage ``find_contours`` at half-way between pixel centres, so a
polygon fill of a contour gives back the pixels), converted to patient (LPS) mm, and written as
CLOSED_PLANAR polygons referencing the slice's image. A hole (e.g. the vertebral foramen where the arch
closes it on a slice) is its own contour inside the outer one: readers fill contours of one ROI on a
slice with the even-odd rule, as the standard's RT examples and every major planning system do.
Points in the middle of a straight run are left out, nothing else: the polygons are exact.

ROI numbers are the SpinePlan label ids; names, colours and SCT codes (RT ROI Identification Code
Sequence) as in the DICOM-SEG. Patient and study attributes are copied from the source images.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.exports.source import SourceSeries
from spine_core.exports.terms import craniocaudal, label_code
from spine_core.labels import label_color, label_name
from spine_core.plan import app_version
from spine_core.progress import NullProgress, Progress

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"   # the Referenced SOP Class of a study reference
SERIES_NUMBER = 902
SERIES_DESCRIPTION = "SpinePlan vertebrae (RTSTRUCT)"
STRAIGHT_TOLERANCE = 1e-6      # |cross product| (pixels^2) below which three points lie on a line
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."      # as spine_core.io.dicom_writer
_PATIENT_STUDY = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                  "OtherPatientIDsSequence", "PatientAge", "PatientWeight", "PatientSize",
                  "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                  "AccessionNumber", "StudyDescription")
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def slice_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed polygons, (N, 2) in (row, column) pixel coordinates, around the pixels of a 2D mask:
    outer boundaries and holes alike, without the repeated closing point."""
    from skimage.measure import find_contours

    polygons = []
    for contour in find_contours(np.pad(mask.astype(np.uint8), 1), 0.5):
        contour = _without_straight_runs(contour[:-1] if np.allclose(contour[0], contour[-1]) else contour)
        if len(contour) >= 3:
            polygons.append(contour - 1.0)
    return polygons


def _without_straight_runs(ring: np.ndarray) -> np.ndarray:
    """The corners of a closed polygon: points in the middle of a straight run add nothing."""
    before, after = ring - np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0) - ring
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return ring[np.abs(cross) > STRAIGHT_TOLERANCE]


def label_contours(frames: np.ndarray, progress: Progress) -> dict[int, list[tuple[int, np.ndarray]]]:
    """Per label id, its (slice index, (row, column) polygon) contours over all slices."""
    from scipy import ndimage

    contours: dict[int, list[tuple[int, np.ndarray]]] = {}
    for k, frame in enumerate(frames):
        if k % 10 == 0:
            progress.update(0.1 + 0.6 * k / len(frames), f"Tracing contours on slice {k + 1}/{len(frames)}")
        for index, box in enumerate(ndimage.find_objects(frame), start=1):
            if box is None:
                continue
            offset = np.array([box[0].start, box[1].start], dtype=np.float64)
            for polygon in slice_contours(frame[box] == index):
                contours.setdefault(index, []).append((k, polygon + offset))
    return contours


def _ds(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def _code_item(code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item


def _image_ref(ds: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return ref


def _base(source: SourceSeries) -> Dataset:
    """SOP common, patient, study, RT series, equipment and structure set header."""
    first, now = source.first, _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 100")
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = generate_uid(prefix=_UID_PREFIX)
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in _PATIENT_STUDY:
        if keyword in first:
            setattr(ds, keyword, first[keyword].value)
        elif keyword in _TYPE2:
            setattr(ds, keyword, "")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid(prefix=_UID_PREFIX)
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = SERIES_DESCRIPTION
    ds.SeriesDate, ds.SeriesTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = source.frame_of_reference_uid        # Frame of Reference module (DICOM 2021+)
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    ds.Manufacturer = ds.ManufacturerModelName = "SpinePlan"
    ds.SoftwareVersions = app_version()
    ds.StructureSetLabel = "SPINEPLAN"
    ds.StructureSetName = "Vertebrae"
    ds.StructureSetDescription = "Vertebrae and discs labelled by SpinePlan"
    ds.InstanceNumber = 1
    ds.StructureSetDate, ds.StructureSetTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.ReferencedFrameOfReferenceSequence = Sequence([_frame_of_reference(source)])
    return ds


def _frame_of_reference(source: SourceSeries) -> Dataset:
    series = Dataset()
    series.SeriesInstanceUID = source.uid
    series.ContourImageSequence = Sequence([_image_ref(ds) for ds in source.headers])
    study = Dataset()
    study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
    study.ReferencedSOPInstanceUID = source.first.StudyInstanceUID
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = source.frame_of_reference_uid
    frame.RTReferencedStudySequence = Sequence([study])
    return frame


def _roi(label_id: int, name: str, polygons, source: SourceSeries) -> tuple[Dataset, Dataset, Dataset]:
    """The StructureSetROI, ROIContour and RTROIObservations items of one label."""
    roi = Dataset()
    roi.ROINumber, roi.ReferencedFrameOfReferenceUID = label_id, source.frame_of_reference_uid
    roi.ROIName, roi.ROIGenerationAlgorithm = name[:64], "AUTOMATIC"
    roi.ROIGenerationDescription = f"SpinePlan {app_version()}"[:64]
    contours = []
    for number, (k, polygon) in enumerate(polygons, start=1):
        points = source.pixel_to_lps(k, polygon)
        contour = Dataset()
        contour.ContourImageSequence = Sequence([_image_ref(source.headers[k])])
        contour.ContourGeometricType = "CLOSED_PLANAR"
        contour.NumberOfContourPoints = len(points)
        contour.ContourNumber = number
        contour.ContourData = [_ds(v) for v in points.ravel()]
        contours.append(contour)
    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = list(label_color(label_id))
    roi_contour.ContourSequence = Sequence(contours)
    roi_contour.ReferencedROINumber = label_id
    observation = Dataset()
    observation.ObservationNumber = observation.ReferencedROINumber = label_id
    observation.ROIObservationLabel = name[:16]
    observation.RTROIIdentificationCodeSequence = Sequence([_code_item(label_code(label_id))])
    observation.RTROIInterpretedType = "ORGAN"
    observation.ROIInterpreter = ""
    return roi, roi_contour, observation


def build_rtstruct(frames: np.ndarray, source: SourceSeries, names: dict[int, str] | None = None,
                   progress: Progress | None = None) -> Dataset:
    """An RT Structure Set of ``frames`` (label ids, (slice, row, column) on ``source``'s slices)."""
    progress = progress or NullProgress()
    names = names or {}
    contours = label_contours(frames, progress)
    ids = craniocaudal(contours)
    if not ids:
        raise SpineError("The label map holds no vertebrae; there is nothing to export.")
    ds = _base(source)
    items = [_roi(i, names.get(i) or label_name(i), contours[i], source) for i in ids]
    ds.StructureSetROISequence = Sequence([roi for roi, _, _ in items])
    ds.ROIContourSequence = Sequence([contour for _, contour, _ in items])
    ds.RTROIObservationsSequence = Sequence([observation for _, _, observation in items])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _UID_PREFIX + "1"
    meta.ImplementationVersionName = "SPINEPLAN_01"
    ds.file_meta = meta
    progress.update(0.9, f"RT structure set built ({len(ids)} ROIs)")
    return ds


def write_rtstruct(frames: np.ndarray, source: SourceSeries, path, names: dict[int, str] | None = None,
                   progress: Progress | None = None):
    """Write the structure set to ``path`` atomically; returns (path, number of ROIs)."""
    import pydicom


    ds = build_rtstruct(frames, source, names, progress)
    with atomic_path(path) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path, len(ds.StructureSetROISequence)
