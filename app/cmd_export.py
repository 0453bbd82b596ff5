"""`spineplan export RESULT_DIR --format ... -o OUT`: a segment result for planning and navigation systems.

One workflow for the CLI and the workstation: spine_core.workflows.plan_export (what each format holds:
spine_core.exports; the report: spine_core.workflows.plan_report, printed to PDF by ui/report_pdf.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from spine_core.exports import FORMATS, MESH_FORMATS


def cmd_export(args) -> int:
    from app.cmd_segment import tqdm_progress
    from spine_core.exports import REPORT, ResultExport
    from spine_core.workflows.plan_export import export_plan, open_result

    report = args.format == REPORT
    source = open_result(Path(args.result), scan=args.source if report else None, series=args.series)
    request = ResultExport(args.format, source=None if report else args.source, series_uid=args.series)
    progress, bar = tqdm_progress(sys.stderr.isatty())
    try:
        summary = export_plan(source, Path(args.out), request, progress, pdf=_pdf_printer() if report else None)
    finally:
        bar.close()
    for note in summary.notes:
        print(f"Note: {note}")
    if report:
        print(f"Wrote {summary.path} (report: {', '.join(summary.items)})")
        return 0
    what = "meshes" if args.format in MESH_FORMATS else "structures"
    print(f"Wrote {summary.path} ({args.format}: {len(summary.items)} {what}: {', '.join(summary.items)})")
    return 0


def _pdf_printer():
    """Qt's PDF printer for the report (None where Qt is not installed: HTML only)."""
    try:
        from ui.report_pdf import print_pdf
    except ImportError:
        return None
    return print_pdf


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a segment result: DICOM-SEG, RTSTRUCT, 3D Slicer markups, meshes "
                       "(STL/PLY/OBJ, with the planned screws) in the scan's patient coordinates, or a planning "
                       "report (HTML + PDF)")
    p.add_argument("result", metavar="RESULT_DIR", help="a result folder written by `spineplan segment`")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="dicom-seg / rtstruct: DICOM objects on the scan's series (need its DICOM files); "
                        "markups: vertebra centroids (+ the screws of `spineplan screws`) as a 3D Slicer "
                        ".mrk.json; stl / ply / obj: one mesh per vertebra (+ one per screw of `spineplan "
                        "screws`) + manifest.json; report: report.html + report.pdf + manifest.json (measures, "
                        "alignment, screws, pictures)")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file (a folder for meshes and the report); an existing folder gets "
                        "segmentation.dcm, rtstruct.dcm or vertebrae.mrk.json")
    p.add_argument("--source", "--scan", dest="source", metavar="SCAN",
                   help="the scan the labels were made on: its DICOM folder for dicom-seg / rtstruct (default: "
                        "the scan the result records, if it is still there); any scan for the report (pictures "
                        "over the scan, bone density)")
    p.add_argument("--series", metavar="UID", help="series instance UID, where the source holds several")
    p.set_defaults(func=cmd_export)
