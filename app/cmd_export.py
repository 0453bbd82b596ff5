"""`spineplan export RESULT_DIR --format ... -o OUT`: a segment result for planning and navigation systems.

What each format holds and how it is written: spine_core.exports.
"""
from __future__ import annotations

import sys
from pathlib import Path

from spine_core.exports import FORMATS, MESH_FORMATS


def cmd_export(args) -> int:
    from app.cmd_segment import tqdm_progress
    from spine_core.exports import ResultExport, export_result

    request = ResultExport(args.format, source=args.source, series_uid=args.series, screws=_screws(args))
    progress, bar = tqdm_progress(sys.stderr.isatty())
    try:
        summary = export_result(Path(args.result), Path(args.out), request, progress)
    finally:
        bar.close()
    for note in summary.notes:
        print(f"Note: {note}")
    what = "meshes" if args.format in MESH_FORMATS else "structures"
    print(f"Wrote {summary.path} ({args.format}: {len(summary.items)} {what}: {', '.join(summary.items)})")
    return 0


def _screws(args) -> tuple:
    """The screws `spineplan screws` wrote into the result folder, as markups lines (none: no file)."""
    from spine_core.planning.files import SCREWS_JSON, read_screws

    path = Path(args.result) / SCREWS_JSON
    if args.format != "markups" or not path.is_file():
        return ()
    return tuple((s.name, s.entry_lps, s.tip_lps) for s in read_screws(path))


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a segment result: DICOM-SEG, RTSTRUCT, 3D Slicer markups, "
                       "or meshes (STL/PLY/OBJ), in the scan's patient coordinates")
    p.add_argument("result", metavar="RESULT_DIR", help="a result folder written by `spineplan segment`")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="dicom-seg / rtstruct: DICOM objects on the scan's series (need its DICOM files); "
                        "markups: vertebra centroids (+ the screws of `spineplan screws`) as a 3D Slicer "
                        ".mrk.json; stl / ply / obj: one mesh per vertebra + manifest.json")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file (a folder for meshes); an existing folder gets segmentation.dcm, "
                        "rtstruct.dcm or vertebrae.mrk.json")
    p.add_argument("--source", metavar="DICOM_FOLDER",
                   help="the DICOM series the labels were made on (dicom-seg, rtstruct); default: the scan "
                        "the result records, if it is still there")
    p.add_argument("--series", metavar="UID", help="series instance UID, where the source holds several")
    p.set_defaults(func=cmd_export)
