"""Exports of a `spineplan segment` result for surgical planning and navigation.

| format    | what                                                       | module        |
|-----------|------------------------------------------------------------|---------------|
| dicom-seg | DICOM Segmentation, one segment per vertebra / disc        | dicom_seg.py  |
| rtstruct  | DICOM RT Structure Set, one ROI per vertebra / disc        | rtstruct.py   |
| markups   | 3D Slicer markups: vertebra centroids (+ screws as lines)  | markups.py    |
| stl/ply/obj | one mesh per vertebra (+ one per planned screw) + manifest | spine_core.export |
| report    | planning report (HTML + PDF): the page in report.py; gathered and drawn a layer above, in spine_core.workflows.plan_report |

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

FORMATS = ("dicom-seg", "rtstruct", "markups", "stl", "ply", "obj", "report")
REPORT = "report"
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
    # planned screws: spine_core.planning.Screw (markups lines, meshes), or (name, entry, tip) in LPS mm (lines)
    screws: tuple = ()

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
    """Export the result folder ``result_dir`` (or a ``ResultFolder``, e.g. the workstation's current labels)
    to ``out`` (a file, or a folder for meshes; an existing folder gets a file of a fixed name for the
    single-file formats). The report draws pictures, a layer above: spine_core.workflows.plan_export."""
    from spine_core.exports.result import ResultFolder, read_result

    if options.format == REPORT:
        raise SpineError("The planning report is written by spine_core.workflows.plan_export.export_plan.")
    progress = progress or NullProgress()
    result = result_dir if isinstance(result_dir, ResultFolder) else read_result(result_dir)
    log.info("exporting %s as %s", result.folder or "the workstation's labels", options.format)
    if options.format in MESH_FORMATS:
        return _export_meshes(result, Path(out).expanduser(), options.format, progress, options.screws)
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
    lines = [_line(s) for s in options.screws]
    write_markups(target, markups_document(centroids, lines, result.vertebra_notes()))
    items = [name for _, name, _ in centroids] + [name for name, _, _ in lines]
    return ExportSummary(target, "markups", items)


def _line(screw) -> tuple[str, Point, Point]:
    """A markups line (name, entry, tip) of a Screw or of a (name, entry, tip) tuple."""
    return (screw.name, tuple(screw.entry_lps), tuple(screw.tip_lps)) if hasattr(screw, "entry_lps") else screw


def _export_meshes(result, folder: Path, fmt: str, progress: Progress, screws=()) -> ExportSummary:
    from spine_core.export import ExportOptions, export_meshes
    from spine_core.meshes import MeshOptions, mesh_labels

    check_export_folder(folder)
    meshes = mesh_labels(result.labels, options=MeshOptions(), progress=SubProgress(progress, 0.0, 0.5))
    implants = screw_meshes([s for s in screws if hasattr(s, "entry_lps")])
    export_meshes(meshes, folder, ExportOptions(fmt, result.series_uid, result.frame_of_reference_uid),
                  SubProgress(progress, 0.5, 1.0), implants)
    return ExportSummary(folder, fmt, [m.name for _, m in sorted(meshes.items())] + [m.name for m, _ in implants])


def screw_meshes(screws) -> list[tuple]:
    """(closed cylinder mesh, manifest record) per planned screw (spine_core.planning.Screw), LPS mm."""
    from spine_core.meshes.implants import cylinder_mesh

    out = []
    for n, s in enumerate(screws, start=1):
        mesh = cylinder_mesh(s.entry_lps, s.tip_lps, s.diameter_mm, f"{s.vertebra} {s.side}", n)
        out.append((mesh, {"vertebra": s.vertebra, "side": s.side, "diameter_mm": s.diameter_mm,
                           "length_mm": s.length_mm, "entry_lps": [round(float(v), 3) for v in s.entry_lps],
                           "tip_lps": [round(float(v), 3) for v in s.tip_lps], "source": s.source}))
    return out


def check_export_folder(folder: Path, suffixes=(".stl", ".ply", ".obj"), what: str = "meshes") -> None:
    """An export that fills a folder replaces it: only an earlier export of that kind (its manifest and
    files ending in ``suffixes``) may be replaced, never a folder of other files (``-o ~/Desktop`` must not
    empty the desktop)."""
    from spine_core.export import MANIFEST

    if not folder.exists():
        return
    if not folder.is_dir():
        raise SpineError(f"'{folder}' is a file; {what} are written into a folder. Choose a new folder.")
    names = list(folder.iterdir())
    if names and not ((folder / MANIFEST).is_file()
                      and all(p.name == MANIFEST or p.suffix.lower() in suffixes for p in names)):
        raise SpineError(f"'{folder}' holds other files; {what} replace their folder. Choose a new or empty "
                         f"folder (or an earlier export of {what}).")
