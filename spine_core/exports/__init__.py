"""Exports of a `spineplan segment` result for surgical planning and navigation.

| format    | what                                                       | module        |
|-----------|------------------------------------------------------------|---------------|
| dicom-seg | DICOM Segmentation, one segment per vertebra / disc        | dicom_seg.py  |
| rtstruct  | DICOM RT Structure Set, one ROI per vertebra / disc        | rtstruct.py   |
| markups   | 3D Slicer markups: vertebra centroids (+ screws as lines)  | markups.py    |
| stl/ply/obj | one mesh per vertebra + manifest (spine_core.export)     | spine_core.export |

The DICOM objects reference the scan's own series (source.py), found from ``--source`` or the scan
recorded in the result (result.py), and carry the patient's identifiers copied from it; nothing else
(file names, manifests, logs, messages) does. Every file is written atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.progress import NullProgress, Progress, SubProgress

log = logging.getLogger(__name__)

FORMATS = ("dicom-seg", "rtstruct", "markups", "stl", "ply", "obj")
DICOM_FORMATS = {"dicom-seg": "DICOM-SEG", "rtstruct": "RTSTRUCT"}
MESH_FORMATS = ("stl", "ply", "obj")
# File names chosen here, never from the scan: they must not carry patient identifiers.
FILE_NAMES = {"dicom-seg": "segmentation.dcm", "rtstruct": "rtstruct.dcm", "markups": "vertebrae.mrk.json"}

Point = tuple[float, float, float]


@dataclass(frozen=True)
class ResultExport:
    format: str
    source: str | Path | None = None      # DICOM folder of the scan; default: the one the result records
    series_uid: str | None = None         # where the source folder holds several series
    screws: tuple[tuple[str, Point, Point], ...] = ()   # (name, entry, tip) in LPS mm, for markups

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise SpineError(f"Unknown export format '{self.format}'; choose one of {', '.join(FORMATS)}.")


@dataclass
class ExportSummary:
    path: Path
    format: str
    items: list[str] = field(default_factory=list)     # what was exported: segment / ROI / point names
    notes: list[str] = field(default_factory=list)     # what the user should know (e.g. a resampling)


def export_result(result_dir, out, options: ResultExport, progress: Progress | None = None) -> ExportSummary:
    """Export the result folder ``result_dir`` to ``out`` (a file, or a folder for meshes; an existing
    folder gets a file of a fixed name for the single-file formats)."""
    from spine_core.exports.result import read_result

    progress = progress or NullProgress()
    result = read_result(result_dir)
    log.info("exporting %s as %s", result.folder, options.format)
    if options.format in MESH_FORMATS:
        return _export_meshes(result, Path(out).expanduser(), options.format, progress)
    target = _file_target(Path(out).expanduser(), options.format)
    if options.format == "markups":
        return _export_markups(result, target, options)
    return _export_dicom(result, target, options, progress)


def _file_target(out: Path, fmt: str) -> Path:
    if out.is_dir():
        return out / FILE_NAMES[fmt]
    if out.exists() and not out.is_file():
        raise SpineError(f"'{out}' is not a file or folder SpinePlan can write to; choose another output.")
    return out


def _export_dicom(result, target: Path, options: ResultExport, progress: Progress) -> ExportSummary:
    from spine_core.exports.result import source_series
    from spine_core.exports.source import labels_on_slices

    what = DICOM_FORMATS[options.format]
    source = source_series(result, what, options.source, options.series_uid, SubProgress(progress, 0.0, 0.1))
    frames, note = labels_on_slices(result.labels, source, SubProgress(progress, 0.1, 0.3))
    if options.format == "dicom-seg":
        from spine_core.exports.dicom_seg import write_dicom_seg as write
    else:
        from spine_core.exports.rtstruct import write_rtstruct as write
    path, count = write(frames, source, target, dict(result.labels.names), SubProgress(progress, 0.3, 1.0))
    log.info("wrote %s: %d structures on series %s", what, count, source.uid)
    names = [result.labels.names.get(i, str(i)) for i in _ids(frames)]
    return ExportSummary(Path(path), options.format, names, [note] if note else [])


def _ids(frames) -> list[int]:
    import numpy as np

    from spine_core.exports.terms import craniocaudal

    return craniocaudal(np.unique(frames))


def _export_markups(result, target: Path, options: ResultExport) -> ExportSummary:
    from spine_core.exports.markups import label_centroids, markups_document, write_markups

    centroids = label_centroids(result.labels)
    if not centroids:
        raise SpineError("The label map holds no vertebrae; there is nothing to export.")
    write_markups(target, markups_document(centroids, options.screws, result.vertebra_notes()))
    items = [name for _, name, _ in centroids] + [name for name, _, _ in options.screws]
    return ExportSummary(target, "markups", items)


def _export_meshes(result, folder: Path, fmt: str, progress: Progress) -> ExportSummary:
    from spine_core.export import ExportOptions, export_meshes
    from spine_core.meshes import MeshOptions, mesh_labels

    _check_mesh_folder(folder)
    meshes = mesh_labels(result.labels, options=MeshOptions(), progress=SubProgress(progress, 0.0, 0.5))
    export_meshes(meshes, folder, ExportOptions(format=fmt, source_series_uid=result.series_uid),
                  SubProgress(progress, 0.5, 1.0))
    return ExportSummary(folder, fmt, [m.name for _, m in sorted(meshes.items())])


def _check_mesh_folder(folder: Path) -> None:
    """A mesh export replaces its folder: only an earlier mesh export may be replaced, never a folder of
    other files (``-o ~/Desktop`` must not empty the desktop)."""
    from spine_core.export import MANIFEST

    if not folder.exists():
        return
    if not folder.is_dir():
        raise SpineError(f"'{folder}' is a file; meshes are written into a folder. Choose a new folder.")
    names = list(folder.iterdir())
    if names and not ((folder / MANIFEST).is_file()
                      and all(p.name == MANIFEST or p.suffix.lower() in (".stl", ".ply", ".obj") for p in names)):
        raise SpineError(f"'{folder}' holds other files; meshes replace their folder. Choose a new or empty "
                         "folder (or an earlier mesh export).")
