"""A `spineplan segment` result folder as the exports read it, and the DICOM series it was made on.

The folder (spine_core.workflows.analysis) holds labels.nii.gz on the input's grid, centroids.json
(LPS mm) and metrics.json, whose "input" block records the series UID, shape and spacing of the scan
and, in newer results, where it was read from ("source").
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spine_core.errors import InputNotFound, SeriesNotFound, SpineError
from spine_core.volume import LabelMap

log = logging.getLogger(__name__)
LABELS, CENTROIDS, METRICS = "labels.nii.gz", "centroids.json", "metrics.json"


@dataclass(frozen=True)
class ResultFolder:
    folder: Path | None                  # None: labels that live in the workstation, not in a folder
    labels: LabelMap
    metrics: dict = field(default_factory=dict, repr=False)
    centroids: dict = field(default_factory=dict, repr=False)

    @property
    def scan(self) -> dict:
        """metrics.json's record of the scan the labels were made on ({} when absent)."""
        return self.metrics.get("input") or {}

    @property
    def series_uid(self) -> str:
        return str(self.scan.get("series_uid") or "")

    @property
    def frame_of_reference_uid(self) -> str:
        """The DICOM frame of reference of the scan ("" where not DICOM, or a result from before it was kept)."""
        return str(self.scan.get("frame_of_reference_uid") or "")

    @property
    def recorded_source(self) -> Path | None:
        """Where the scan was read from, if the result records it and it is still a folder here."""
        source = self.scan.get("source")
        path = Path(source).expanduser() if source else None
        return path if path is not None and path.is_dir() else None

    def vertebra_notes(self) -> dict[int, str]:
        """Per label id, the analysis' confidence and flags from centroids.json (for descriptions)."""
        notes = {}
        for row in self.centroids.get("vertebrae", []):
            parts = [f"confidence {float(row['confidence']):.2f}"] if row.get("confidence") is not None else []
            if row.get("flags"):
                parts.append("flags: " + ", ".join(map(str, row["flags"])))
            notes[int(row["id"])] = "; ".join(parts)
        return notes


def read_result(folder) -> ResultFolder:
    from spine_core.io import load_labels

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputNotFound(f"'{folder}' is not a folder. Pass the result folder `spineplan segment` wrote.")
    if not (folder / LABELS).is_file():
        raise SpineError(f"'{folder}' is not a SpinePlan result folder (it has no {LABELS}). Pass the result "
                         "folder `spineplan segment` wrote.")
    labels = load_labels(folder / LABELS)
    result = ResultFolder(folder, labels, _read_json(folder / METRICS), _read_json(folder / CENTROIDS))
    _check_scan_record(result)
    return result


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpineError(f"'{path}' could not be read ({exc}); run `spineplan segment` again.") from exc
    return doc if isinstance(doc, dict) else {}


def _check_scan_record(result: ResultFolder) -> None:
    """labels.nii.gz must still be the labels metrics.json describes (same shape and spacing)."""
    shape, spacing = result.scan.get("shape"), result.scan.get("spacing_mm")
    if shape and tuple(int(v) for v in shape) != result.labels.shape:
        raise SpineError(f"{LABELS} in '{result.folder}' ({' x '.join(map(str, result.labels.shape))} voxels) "
                         f"is not the label map {METRICS} describes ({' x '.join(map(str, shape))}); the folder "
                         "was changed after the analysis. Run `spineplan segment` again.")
    if spacing and not np.allclose(result.labels.spacing, [float(v) for v in spacing], atol=1e-3):
        raise SpineError(f"{LABELS} in '{result.folder}' does not have the voxel spacing {METRICS} records; the "
                         "folder was changed after the analysis. Run `spineplan segment` again.")


def source_series(result: ResultFolder, what: str, source=None, series: str | None = None, progress=None):
    """The DICOM series the labels were made on: ``source`` (a folder), else the one metrics.json records.
    ``series`` chooses among several; it must be the series the labels were made on where that is known."""
    from spine_core.exports.source import read_source

    expected = result.series_uid
    if series and expected and series != expected:
        raise SpineError(f"The labels were made on series {expected}, not on series {series}. Pass the series "
                         "the labels were made on (or leave out --series).")
    folder = Path(source).expanduser() if source else result.recorded_source
    if folder is None:
        raise SpineError(f"{what} needs the DICOM series the labels were made on: pass --source with its folder.")
    try:
        found = read_source(folder, series or expected or None, progress)
    except SeriesNotFound as exc:
        raise SeriesNotFound(f"The labels were made on series {series or expected}, which is not in "
                             f"'{folder}'. Pass the folder of that series with --source. {exc}") from exc
    log.info("DICOM source: series %s, %d slices", found.uid, found.n_slices)
    return found
