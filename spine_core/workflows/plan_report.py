"""The planning report of a ``PlanSource`` (spine_core.workflows.plan_export): measures, screws and pictures
gathered here, the page laid out by spine_core.exports.report, written into a folder atomically:

    <folder>/report.html    self-contained: pictures inlined, no script, no network
    <folder>/report.pdf     the same page printed by the app (Qt), where a printer is given
    <folder>/manifest.json  each file's sha256, the coordinate system, units, series and frame of reference

Measures come from the result's measurements.json where `spineplan measure` wrote it, else they are
measured here (with the scan: bone density too). Screws are the plan's (screws.json, or the workstation's
plan, checked again against the labels shown), else suggested here and marked as such. No patient
identifier is read: not the name, ID or birth date, nor the scan's file name or description.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.exports import ExportSummary, check_export_folder
from spine_core.exports.report import REPORT_HTML, REPORT_PDF, ReportContent, report_html
from spine_core.io.writers import staged_folder
from spine_core.labels import CRANIOCAUDAL, NAME_TO_ID
from spine_core.plan import app_version
from spine_core.planning.files import METHOD as SCREW_METHOD
from spine_core.progress import Progress, SubProgress
from spine_core.volume import Volume
from spine_core.workflows.plan_export import PlanSource

log = logging.getLogger(__name__)
_ORDER = {vid: n for n, vid in enumerate(CRANIOCAUDAL)}


def write_report(source: PlanSource, folder: Path, progress: Progress, pdf=None) -> ExportSummary:
    """report.html (+ report.pdf through ``pdf(html_text, path)``) and manifest.json into ``folder``."""
    from spine_core.export import MANIFEST

    check_export_folder(folder, (".html", ".pdf"), "reports")
    content = build_report(source, SubProgress(progress, 0.0, 0.9))
    text = report_html(content)
    notes = list(content.notes)
    try:
        with staged_folder(folder) as staging:
            with atomic_path(staging / REPORT_HTML) as tmp:
                tmp.write_text(text, encoding="utf-8")
            if pdf is not None:
                progress.update(0.92, "Printing the report to PDF")
                notes += _print_pdf(pdf, text, staging / REPORT_PDF)
            files = sorted(p for p in staging.iterdir() if p.suffix in (".html", ".pdf"))
            with atomic_path(staging / MANIFEST) as tmp:
                tmp.write_text(json.dumps(_manifest(source, files), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SpineError(f"Could not write the report to '{folder}': {exc.strerror or exc}. Check free disk "
                         "space and permissions; nothing was changed.") from exc
    progress.update(1.0, "Report written")
    return ExportSummary(folder, "report", [p.name for p in files], notes)


def _print_pdf(pdf, text: str, path: Path) -> list[str]:
    try:
        pdf(text, path)
    except (SpineError, OSError, RuntimeError) as exc:
        log.warning("report.pdf not written: %s", exc)
        path.unlink(missing_ok=True)
        return [f"report.pdf was not written ({exc}); report.html holds the whole report"]
    return []


def _manifest(source: PlanSource, files: list[Path]) -> dict:
    result = source.result
    return {"format": "report", "coordinate_system": "LPS", "units": "mm", "source_series_uid": result.series_uid,
            "frame_of_reference_uid": result.frame_of_reference_uid,
            "files": [{"file": p.name, "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                      for p in files]}


# -- the content -------------------------------------------------------------------------------------
def build_report(source: PlanSource, progress: Progress) -> ReportContent:
    """Everything the page shows (see the module's text); the slow parts (measures, screws) report progress."""
    from spine_core.pictures import sagittal_coronal_png
    from spine_core.windowing import display_modality

    progress.update(0.0, "Measuring the vertebrae")
    doc, screws, not_planned, screw_origin = _measures_and_screws(source)
    progress.update(0.8, "Drawing the pictures")
    labels, scan = source.result.labels, source.scan
    shown = scan if scan is not None else _labels_as_scan(labels)
    png = sagittal_coronal_png(shown, labels, [(s.entry_lps, s.tip_lps) for s in screws])
    window = "bone window" if display_modality(shown) == "CT" else "window from the MR's own intensities"
    caption = (f"Sagittal and coronal slices through the middle of the labelled spine ({window}), vertebrae "
               "coloured and named" + ("; screws (yellow) projected onto each plane" if screws else "") +
               ("" if scan is not None else "; no scan at hand: the labels alone"))
    metrics = source.result.metrics
    case = metrics.get("case") or source.result.centroids.get("case") or {}
    notes = list(source.notes) + list(doc.get("notes") or [])
    if scan is None:
        notes.append("The scan was not at hand: bone density (core HU) not measured, pictures show the labels alone.")
    methods = dict(doc.get("method") or {})
    methods.update({f"screw {k}": v for k, v in SCREW_METHOD.items()})
    progress.update(1.0, "Report laid out")
    return ReportContent(facts=_facts(source), case_status=str(case.get("status") or ""),
                         case_flags=[str(f) for f in case.get("flags") or []], models=list(metrics.get("models") or []),
                         pictures=[(caption, png)], vertebrae=list(doc.get("vertebrae") or []),
                         alignment=dict(doc.get("alignment") or {}), screws=screws, not_planned=not_planned,
                         screw_origin=screw_origin, notes=notes, methods=methods)


def _facts(source: PlanSource) -> list[tuple[str, str]]:
    result, scan = source.result, source.scan
    record = result.scan
    facts = [("SpinePlan version", app_version()),
             ("Report written", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
             ("Labels", source.origin or "result folder")]
    shape, spacing = record.get("shape"), record.get("spacing_mm")
    if shape and spacing:
        grid = f"{' x '.join(str(int(v)) for v in shape)} voxels of {' x '.join(f'{float(v):g}' for v in spacing)} mm"
        modality = scan.metadata.modality if scan is not None else ""
        facts.append(("Scan", f"{modality + ', ' if modality else ''}{grid}"))
    facts.append(("Series instance UID", result.series_uid or "none (the scan was not read from DICOM)"))
    facts.append(("Frame of reference UID", result.frame_of_reference_uid or "not recorded"))
    if result.metrics.get("pipeline"):
        where = f" on {result.metrics['provider']}" if result.metrics.get("provider") else ""
        facts.append(("Analysis", f"pipeline {result.metrics['pipeline']}{where}"))
    return facts


def _labels_as_scan(labels) -> Volume:
    """A stand-in scan where none is at hand: labelled voxels as bone, the rest as air."""
    array = np.where(labels.array > 0, 700, -1000).astype(np.int16)
    return Volume(array, labels.affine, labels.metadata)


def _measures_and_screws(source: PlanSource):
    """(measurements document, screws, sides not planned, where the screws come from)."""
    from spine_core.measure import measure
    from spine_core.measure.pedicles import measure_pedicles
    from spine_core.measure.vertebra import measure_vertebrae
    from spine_core.planning import VertebraBones, suggest_screws

    labels, scan, doc = source.result.labels, source.scan, source.measurements
    in_folder = source.result.folder is not None
    if source.screws is not None and in_folder:          # `spineplan screws` checked them on these labels
        doc = doc if doc is not None else measure(labels, scan)
        return doc, _ordered(source.screws), list(source.not_planned), \
            "The plan's screws (screws.json in the result folder), checked against these labels when planned."
    vertebrae = measure_vertebrae(labels, scan)
    bones = VertebraBones(labels)
    pedicles = measure_pedicles(labels, vertebrae, bones.grids)
    if doc is None or not in_folder:
        doc = measure(labels, scan, vertebrae=vertebrae, found=pedicles)
    if source.screws is None:
        screws, skipped = suggest_screws(bones, pedicles)
        return doc, _ordered(screws), skipped, ("No screws were planned: these are SpinePlan's suggestions for "
                                                "this report, not reviewed by a surgeon.")
    checked = [_checked(bones, pedicles, s) for s in source.screws]
    return doc, _ordered(checked), list(source.not_planned), \
        "The plan's screws, each checked again against the labels shown in this report."


def _checked(bones, pedicles, screw):
    from dataclasses import replace

    from spine_core.planning import check_screw

    pedicle = next((p for p in pedicles if p.name == screw.vertebra and p.side == screw.side), None)
    try:
        return check_screw(bones, screw, pedicle)
    except ValueError as exc:           # its vertebra is no longer labelled
        return replace(screw, min_cortex_distance_mm=None, grade=None, notes=[*screw.notes, f"not checked: {exc}"])


def _ordered(screws):
    return sorted(screws, key=lambda s: (_ORDER.get(NAME_TO_ID.get(s.vertebra, 0), 999), s.side != "left"))
