"""A folder of studies like a QA technician receives: phantoms with variants, real shared CTs, a
folder holding two DICOM series, a zipped series, a corrupt file, an empty series and an MR. Used by the batch tests
and by benchmarks/batch_throughput.py.

``EXPECTED`` maps a case id's prefix to the journal state it must end in.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

PHANTOMS = {   # name -> PhantomOptions overrides (small lumbar scans keep the batch quick)
    "phantom_plain": {},
    "phantom_fracture_L1": {"fractures": (("L1", 0.45),)},
    "phantom_hardware": {"hardware_levels": ("L3", "L4")},
    "phantom_L6": {"lumbar_count": 6},
    "phantom_osteoporotic": {"bone_density": 0.4},
}

EXPECTED = {
    "phantom_plain": "done", "phantom_fracture_L1": "done", "phantom_hardware": "done", "phantom_L6": "done",
    "phantom_osteoporotic": "done",
    "two_series-": "done",            # two cases from one folder
    "zipped_study-": "done",
    "ct_verse006": "done", "ct_tptbox_lumbar": "done", "ct_ts_dicom-": "done",
    "corrupt": "refused", "empty_series-": "refused",
    "mr_lumbar-": "done",             # through the shipped MR model
}


def _phantom(seed: int, **overrides):
    from spine_core.phantom import PhantomOptions, generate_phantom

    options = PhantomOptions(seed=seed, first_level="T11", last_level="sacrum", spacing_mm=(1.2, 1.2, 2.0),
                             fov_mm=200.0, centre_on_spine=True, **overrides)
    return generate_phantom(options).image


def build_inputs(root: Path, real: bool = True) -> Path:
    """Write the studies into ``root`` (created) and return it."""
    from spine_core.io import load_scan, save_volume
    from spine_core.io.dicom_writer import DicomOptions, write_dicom_series

    root.mkdir(parents=True, exist_ok=True)
    for n, (name, overrides) in enumerate(PHANTOMS.items()):
        save_volume(_phantom(100 + n, **overrides), root / f"{name}.nii.gz")
    two = root / "two_series"
    write_dicom_series(_phantom(200), two, DicomOptions(series_number=1, series_description="bone"))
    write_dicom_series(_phantom(201), two / "second", DicomOptions(series_number=2, series_description="soft"))
    # a second series in the same folder, not a subfolder: move its files up
    for path in (two / "second").iterdir():
        path.rename(two / f"s2_{path.name}")
    (two / "second").rmdir()
    zipped = root / "zip_src"
    write_dicom_series(_phantom(300, fractures=(("L2", 0.3),)), zipped, DicomOptions(series_description="zipped"))
    with zipfile.ZipFile(root / "zipped_study.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(zipped.iterdir()):
            archive.write(path, f"DICOM/{path.name}")
    shutil.rmtree(zipped)
    (root / "corrupt.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)
    _empty_series(root / "empty_series")
    if real and SHARED.is_dir():
        ct = root / "ct"
        ct.mkdir()
        for case in ("verse006", "tptbox_lumbar"):
            shutil.copy(SHARED / "ct" / case / "image.nii.gz", ct / f"{case}.nii.gz")
        shutil.copytree(SHARED / "ct" / "ts_dicom" / "dicom", ct / "ts_dicom")
        mr = load_scan(SHARED / "mr" / "VB3_18" / "image.nii.gz")      # 224 x 224 x 77: seconds per analysis
        mr_array = np.clip(mr.array.astype(np.float32), 0, None)
        from dataclasses import replace

        mr = replace(mr, array=mr_array.astype(np.int16),
                     metadata=replace(mr.metadata, modality="MR"))
        write_dicom_series(mr, root / "mr_lumbar", DicomOptions(modality="MR", rescale_intercept=0.0,
                                                                series_description="T2 sag"))
    return root


def _empty_series(folder: Path) -> None:
    """DICOM files of one series that hold no image: no pixels, no position."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series = generate_uid()
    for n in range(3):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.StudyInstanceUID = generate_uid()
        ds.Modality = "CT"
        ds.PatientID = "EMPTY"
        ds.save_as(folder / f"IM{n:04d}.dcm", enforce_file_format=True)


def expected_state(case_id: str) -> str | None:
    for prefix, state in EXPECTED.items():
        if case_id.startswith(prefix):
            return state
    return None
