"""Export a plan for navigation, PACS and the patient's file: the one workflow `spineplan export` and the
workstation's File > Export plan call.

A ``PlanSource`` is what is exported: the labels with what the analysis recorded of them (a
``ResultFolder``: read from a result folder, or made in memory from the workstation's current, possibly
edited and unsaved labels), the scan they were made on where it is at hand, and the plan's screws.
``export_plan`` writes it in one format: the planning report here (spine_core.workflows.plan_report: it
draws pictures, a layer above the exports), every other format through ``spine_core.exports``, the screws
going into the markups and meshes. Every file is written atomically.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.exports import DICOM_FORMATS, REPORT, ExportSummary, ResultExport, export_result
from spine_core.exports.result import ResultFolder, read_result
from spine_core.planning import NotPlanned, Screw
from spine_core.progress import NullProgress, Progress, SubProgress
from spine_core.volume import LabelMap, Volume

log = logging.getLogger(__name__)
MEASUREMENTS_JSON = "measurements.json"


@dataclass
class PlanSource:
    result: ResultFolder                          # the labels and what the analysis recorded of them
    scan: Volume | None = None                    # the scan they were made on (pictures, bone density)
    screws: list[Screw] | None = None            # the plan's screws; None: none planned yet
    not_planned: list[NotPlanned] = field(default_factory=list)
    measurements: dict | None = None              # measurements.json; None: measured when needed
    origin: str = ""                              # where the labels come from, in the report's words
    notes: list[str] = field(default_factory=list)


def open_result(result_dir, scan=None, series: str | None = None) -> PlanSource:
    """A result folder with its screws.json and measurements.json where `spineplan screws` / `measure`
    wrote them, and ``scan`` (any input SpinePlan reads) loaded with the labels put on its grid."""
    from spine_core.io import load_scan
    from spine_core.planning.files import SCREWS_JSON, read_screw_plan
    from spine_core.workflows.analysis import labels_on_grid

    result = read_result(result_dir)
    source = PlanSource(result, origin="the result folder written by the analysis")
    if scan is not None:
        source.scan = load_scan(scan, series=series)
        labels, note = labels_on_grid(result.labels, source.scan)
        source.result = replace(result, labels=labels)
        source.notes += [note] if note else []
    if (result.folder / SCREWS_JSON).is_file():
        source.screws, source.not_planned = read_screw_plan(result.folder / SCREWS_JSON)
    if (result.folder / MEASUREMENTS_JSON).is_file():
        source.measurements = _read_measurements(result.folder / MEASUREMENTS_JSON)
    return source


def _read_measurements(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("measurements not read (%s): measured again", exc)
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("vertebrae"), list) else None


def session_source(labels: LabelMap, scan: Volume | None, analysis: dict | None = None,
                   screws: list[Screw] | None = None, edits: int = 0) -> PlanSource:
    """What the workstation shows: its current labels (edited or not, saved or not) on ``scan``, with
    ``analysis`` = what the analysis recorded ({"case": {"status", "flags"}, "models": [...],
    "pipeline", "provider"}; {} for labels opened from a file) and the plan's ``screws``."""
    meta = scan.metadata if scan is not None else labels.metadata
    record = {"shape": list(labels.shape), "spacing_mm": [round(float(s), 4) for s in labels.spacing],
              "orientation": labels.orientation, "series_uid": meta.series_uid,
              "frame_of_reference_uid": meta.frame_of_reference_uid}
    metrics = {**(analysis or {}), "input": record}
    origin = "the workstation's labels" + (f" ({edits} edit{'s' if edits != 1 else ''} since they were "
                                           "opened or analysed)" if edits else "")
    return PlanSource(ResultFolder(None, labels, metrics), scan, screws, origin=origin)


def dicom_source(scan: Volume | None) -> tuple[str, str]:
    """(the DICOM folder of ``scan``, "") where DICOM-SEG and RTSTRUCT can reference it, else ("", why not)."""
    if scan is None:
        return "", "no scan is open"
    meta = scan.metadata
    folder = Path(meta.source) if meta.source else None
    if not meta.series_uid:
        return "", ("the scan was not read from DICOM; DICOM-SEG and RTSTRUCT reference the images of a "
                    "DICOM series (open the scan's DICOM folder)")
    if folder is None or not folder.is_dir():
        return "", "the scan's DICOM folder is no longer there (moved or unmounted)"
    return str(folder), ""


def export_plan(source: PlanSource, out, request: ResultExport, progress: Progress | None = None,
                pdf=None) -> ExportSummary:
    """Write ``source`` to ``out`` in ``request.format``. ``pdf(html_text, path)``: prints the report to PDF
    (the app's Qt printer; None: HTML only). The plan's screws go into the markups and meshes unless the
    request names its own."""
    progress = progress or NullProgress()
    if request.format == REPORT:
        from spine_core.workflows.plan_report import write_report

        return write_report(source, Path(out).expanduser(), progress, pdf)
    if not request.screws and source.screws:
        request = replace(request, screws=tuple(source.screws))
    if request.format in DICOM_FORMATS and source.result.folder is None and not request.source:
        raise SpineError(f"{request.format.upper()} needs the scan's DICOM series: "
                         f"{dicom_source(source.scan)[1] or 'open the scan from its DICOM folder'}.")
    return export_result(source.result, out, request, progress)


# Where each format goes inside the folder the workstation's File > Export plan writes into.
TARGETS = {"dicom-seg": "segmentation.dcm", "rtstruct": "rtstruct.dcm", "markups": "vertebrae.mrk.json",
           "stl": "meshes-stl", "ply": "meshes-ply", "obj": "meshes-obj", "report": "report"}


def export_formats(source: PlanSource, folder, formats, dicom_folder: str = "", progress: Progress | None = None,
                   pdf=None) -> list[ExportSummary]:
    """Each of ``formats`` into ``folder`` under its name in TARGETS, one after the other (the first failure
    stops the rest; what was written before it stays, each file complete). ``dicom_folder``: the scan's
    DICOM series, for DICOM-SEG and RTSTRUCT."""
    progress = progress or NullProgress()
    folder = Path(folder).expanduser()
    if not formats:
        raise SpineError("Choose at least one format to export.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpineError(f"Cannot write to '{folder}': {exc.strerror or exc}. Choose a folder you can write "
                         "to.") from exc
    series = source.result.series_uid or None
    written = []
    for n, fmt in enumerate(formats):
        request = ResultExport(fmt, source=dicom_folder or None, series_uid=series) if fmt in DICOM_FORMATS \
            else ResultExport(fmt)
        part = SubProgress(progress, n / len(formats), (n + 1) / len(formats))
        written.append(export_plan(source, folder / TARGETS[fmt], request, part, pdf))
    return written
