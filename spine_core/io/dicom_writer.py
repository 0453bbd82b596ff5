"""Writing a Volume as a DICOM CT/MR image series (one file per slice).

Used for phantoms and the demo study; output is checked with dciodvfy and dcmtk in tests.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spine_core.progress import NullProgress, Progress
from spine_core.volume import Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# Our own root would be registered for a product; pydicom's prefix keeps generated UIDs valid.
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."


@dataclass(frozen=True)
class DicomOptions:
    patient_name: str = "PHANTOM^SPINEPLAN"
    patient_id: str = "PHANTOM"
    modality: str = "CT"
    series_description: str = "SpinePlan phantom"
    study_description: str = "SpinePlan synthetic spine"
    series_number: int = 1
    study_uid: str | None = None
    series_uid: str | None = None
    rescale_intercept: float = -1024.0
    rescale_slope: float = 1.0


def _fmt(value: float) -> str:
    """DICOM DS values: at most 16 characters."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def _base_dataset(opts: DicomOptions, study_uid: str, series_uid: str, frame_uid: str) -> Dataset:
    now = _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"] if opts.modality == "CT" else ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = CT_IMAGE_STORAGE if opts.modality == "CT" else MR_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = opts.modality
    ds.Manufacturer = "SpinePlan"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = opts.study_description
    ds.SeriesDescription = opts.series_description
    ds.PatientName = opts.patient_name
    ds.PatientID = opts.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "SPINE"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = opts.series_number
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if opts.modality == "CT":
        ds.KVP = "120"
        ds.AcquisitionNumber = 1
        ds.RescaleIntercept = _fmt(opts.rescale_intercept)
        ds.RescaleSlope = _fmt(opts.rescale_slope)
        ds.RescaleType = "HU"
        ds.WindowCenter = "400"
        ds.WindowWidth = "1800"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.EchoTime = "90"
        ds.RepetitionTime = "3000"
        ds.EchoTrainLength = "1"
        ds.MagneticFieldStrength = "1.5"
    return ds


def write_dicom_series(volume: Volume, folder, options: DicomOptions | None = None,
                       progress: Progress | None = None) -> list[Path]:
    """One file per k-slice. In-plane axes must be orthogonal; slices may be sheared (tilt)."""
    opts = options or DicomOptions(modality=volume.metadata.modality or "CT")
    progress = progress or NullProgress()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = opts.study_uid or generate_uid(prefix=_UID_PREFIX)
    series_uid = opts.series_uid or generate_uid(prefix=_UID_PREFIX)
    frame_uid = generate_uid(prefix=_UID_PREFIX)
    base = _base_dataset(opts, study_uid, series_uid, frame_uid)
    spacing = volume.spacing
    row_dir, col_dir = volume.direction[:, 0], volume.direction[:, 1]
    base.ImageOrientationPatient = [_fmt(v) for v in (*row_dir, *col_dir)]
    base.PixelSpacing = [_fmt(spacing[1]), _fmt(spacing[0])]
    base.SliceThickness = _fmt(spacing[2])
    base.Rows, base.Columns = int(volume.shape[1]), int(volume.shape[0])
    stored = _to_stored(volume.array, opts)
    paths = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        ds.update(base)
        sop_uid = generate_uid(prefix=_UID_PREFIX)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        position = volume.index_to_lps([0, 0, k])
        ds.ImagePositionPatient = [_fmt(v) for v in position]
        ds.SliceLocation = _fmt(float(position @ np.cross(row_dir, col_dir)))
        pixels = np.ascontiguousarray(stored[:, :, k].T)  # DICOM rows run along j
        ds.SmallestImagePixelValue = int(pixels.min())
        ds.LargestImagePixelValue = int(pixels.max())
        ds["SmallestImagePixelValue"].VR = ds["LargestImagePixelValue"].VR = "SS"
        ds.PixelData = pixels.tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = _UID_PREFIX + "1"
        meta.ImplementationVersionName = "SPINEPLAN_01"
        ds.file_meta = meta
        path = folder / f"IM{k + 1:05d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
        if k % 20 == 0:
            progress.update(k / volume.shape[2], f"Writing DICOM slice {k + 1}/{volume.shape[2]}")
    progress.update(1.0, "DICOM series written")
    return paths


def _to_stored(array: np.ndarray, opts: DicomOptions) -> np.ndarray:
    if opts.modality != "CT":
        return np.clip(np.rint(array), -32768, 32767).astype(np.int16)
    stored = (array.astype(np.float32) - opts.rescale_intercept) / opts.rescale_slope
    return np.clip(np.rint(stored), -32768, 32767).astype(np.int16)
