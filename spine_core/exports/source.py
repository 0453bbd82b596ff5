"""The DICOM series a result's labels were made on: its slice headers, and the labels on its slices.

DICOM-SEG and RTSTRUCT objects reference the scan's own images (SOP instance UIDs, frame of
reference), so they are built from the original series, never from a converted volume. The labels
are put on the series' slices exactly (voxel for voxel) when their grid is the series' own grid, the
usual case. When the loader resampled the series (uneven slice steps, gantry tilt), the labels sit on
the resampled grid; they are then sampled back (nearest) onto the original slices and a note says so.
Anything else is another scan and is refused.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from spine_core.errors import GridMismatch, InputNotFound, NoScanFound, UnsupportedImage
from spine_core.io.dicom import SeriesInfo, choose_series, list_series, load_series
from spine_core.progress import NullProgress, Progress
from spine_core.volume import LabelMap

log = logging.getLogger(__name__)

# Grids closer than this (mm, on every affine entry) are the same grid; DICOM positions carry ~1e-4 mm.
GRID_TOLERANCE_MM = 1e-2


@dataclass(frozen=True)
class SourceSeries:
    """One classic DICOM series (one file per slice), its headers sorted along the slice normal as
    the loader stacks them (array index k = position in ``headers``)."""

    folder: Path
    uid: str
    headers: tuple[Dataset, ...] = field(repr=False)
    info: SeriesInfo = field(repr=False)

    @property
    def first(self) -> Dataset:
        return self.headers[0]

    @property
    def rows(self) -> int:
        return int(self.first.Rows)

    @property
    def columns(self) -> int:
        return int(self.first.Columns)

    @property
    def n_slices(self) -> int:
        return len(self.headers)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.first.FrameOfReferenceUID)

    @cached_property
    def positions(self) -> np.ndarray:
        """ImagePositionPatient of every slice, (n, 3) LPS mm."""
        return np.array([[float(v) for v in ds.ImagePositionPatient] for ds in self.headers])

    @cached_property
    def pixel_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS mm per column step and per row step (direction times spacing)."""
        iop = [float(v) for v in self.first.ImageOrientationPatient]
        row_spacing, col_spacing = (float(v) for v in self.first.PixelSpacing)
        return np.array(iop[:3]) * col_spacing, np.array(iop[3:]) * row_spacing

    def native_affine(self) -> np.ndarray:
        """The index (column, row, slice) -> LPS affine of the series as stored."""
        per_column, per_row = self.pixel_axes
        positions = self.positions
        affine = np.eye(4)
        affine[:3, 0], affine[:3, 1] = per_column, per_row
        affine[:3, 2] = (positions[-1] - positions[0]) / max(len(positions) - 1, 1)
        affine[:3, 3] = positions[0]
        return affine

    def pixel_to_lps(self, k: int, row_col: np.ndarray) -> np.ndarray:
        """LPS mm of (row, column) pixel coordinates (floats allowed) on slice ``k``; (N, 2) -> (N, 3)."""
        per_column, per_row = self.pixel_axes
        row_col = np.asarray(row_col, dtype=np.float64)
        return self.positions[k] + np.outer(row_col[:, 1], per_column) + np.outer(row_col[:, 0], per_row)


def read_source(folder, series_uid: str | None = None, progress: Progress | None = None) -> SourceSeries:
    """The headers (no pixels) of the series ``series_uid`` (or the one series) in ``folder``."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise InputNotFound(f"The DICOM source '{folder}' does not exist. Check the path, or that the "
                            "drive is mounted.")
    listing = list_series(folder, progress)
    if not listing:
        raise NoScanFound(f"No DICOM images were found in '{folder}'. DICOM-SEG and RTSTRUCT need the DICOM "
                          "series the labels were made on: pass its folder with --source.")
    info = choose_series(listing, series_uid, folder)
    if len(info.slices) == 1 and info.n_slices > 1:
        raise UnsupportedImage(f"Series {info.uid} is one enhanced (multi-frame) DICOM object; DICOM-SEG and "
                               "RTSTRUCT export needs a classic series (one file per slice). Export the series "
                               "from PACS as classic CT images.")
    normal = info.normal
    slices = sorted(info.slices, key=lambda s: float(s.position @ normal))
    headers = tuple(_with_sop_uids(pydicom.dcmread(s.path, stop_before_pixels=True)) for s in slices)
    _check_references(info.uid, headers, folder)
    return SourceSeries(folder, info.uid, headers, info)


def _with_sop_uids(ds: Dataset) -> Dataset:
    """SOP class / instance UIDs emptied in the data set (some anonymisers) are those of the file meta
    (PS3.10: they are the same), which the loader accepted too."""
    meta = getattr(ds, "file_meta", None)
    for keyword, meta_keyword in (("SOPClassUID", "MediaStorageSOPClassUID"),
                                  ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
        if not ds.get(keyword) and meta is not None and meta.get(meta_keyword):
            setattr(ds, keyword, meta.get(meta_keyword))
    return ds


def _check_references(uid: str, headers: tuple[Dataset, ...], folder: Path) -> None:
    """What a DICOM-SEG / RTSTRUCT must reference: study, series, images, frame of reference."""
    required = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "FrameOfReferenceUID",
                "PixelSpacing")
    missing = [kw for kw in required if any(not ds.get(kw) for ds in headers)]
    if missing:
        raise UnsupportedImage(
            f"The series in '{folder}' has no {', '.join(missing)} (it may have been anonymised without its "
            "UIDs), so a DICOM-SEG or RTSTRUCT could not be linked to its images. Export the series from PACS "
            "with its UIDs; meshes and markups need no DICOM source.")
    if len({str(ds.FrameOfReferenceUID) for ds in headers}) > 1:
        raise UnsupportedImage(f"The slices of series {uid} lie in different frames of reference; "
                               "DICOM-SEG and RTSTRUCT need one. Re-export the series from PACS.")


def labels_on_slices(labels: LabelMap, source: SourceSeries,
                     progress: Progress | None = None) -> tuple[np.ndarray, str]:
    """The label ids on the series' slices, shaped (slice, row, column) like DICOM frames, and a note
    ("" when the labels are on the series' own grid and copied voxel for voxel)."""
    progress = progress or NullProgress()
    shape = (source.columns, source.rows, source.n_slices)
    if labels.shape == shape and np.allclose(labels.affine, source.native_affine(), atol=GRID_TOLERANCE_MM):
        return np.ascontiguousarray(labels.array.transpose(2, 1, 0)), ""
    progress.update(0.0, "Reading the source series to match its grid")
    loaded = load_series(source.info)           # the grid `segment` saw: resampled if the slices were
    if not labels.same_grid(loaded, atol_mm=GRID_TOLERANCE_MM):
        raise GridMismatch(
            f"The labels ({' x '.join(map(str, labels.shape))} voxels) are not on the grid of series "
            f"{source.uid} ({source.columns} x {source.rows} x {source.n_slices}): they were made on another "
            "scan. Pass the DICOM series the labels were made on with --source.")
    note = (f"the scan was resampled when it was loaded ({'; '.join(loaded.metadata.warnings) or 'uneven'}); "
            f"the labels were sampled back onto its {source.n_slices} original slices")
    log.info(note)
    return _sample_on_slices(labels, source, progress), note


def _sample_on_slices(labels: LabelMap, source: SourceSeries, progress: Progress) -> np.ndarray:
    """Nearest-neighbour samples of ``labels`` at every pixel centre of every source slice."""
    rows, cols = np.mgrid[0:source.rows, 0:source.columns]
    row_col = np.column_stack([rows.ravel(), cols.ravel()])
    out = np.zeros((source.n_slices, source.rows, source.columns), dtype=labels.array.dtype)
    for k in range(source.n_slices):
        if k % 20 == 0:
            progress.update(k / source.n_slices, "Putting the labels on the source slices")
        ijk = np.rint(labels.lps_to_index(source.pixel_to_lps(k, row_col))).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < np.array(labels.shape)), axis=1)
        values = np.zeros(len(ijk), dtype=labels.array.dtype)
        values[inside] = labels.array[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
        out[k] = values.reshape(source.rows, source.columns)
    return out
