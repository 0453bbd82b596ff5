"""`spineplan screws RESULT_DIR [--scan INPUT] [-o screws.json]`: pedicle screw suggestions for the thoracic
and lumbar vertebrae of a result folder's labels (spine_core.planning), each checked against the cortex
with its expected Gertzbein-Robbins grade, into screws.json beside the labels (or OUT)."""
from __future__ import annotations

from pathlib import Path


def cmd_screws(args) -> int:
    from spine_core.exports.result import LABELS, read_result
    from spine_core.io import load_labels, load_scan
    from spine_core.planning.files import SCREWS_JSON, plan_screws, write_screws

    result = read_result(args.result)
    folder, labels_path = result.folder, result.folder / LABELS
    scan = load_scan(args.scan, series=args.series) if args.scan else None
    labels = load_labels(labels_path, grid=scan) if scan is not None else result.labels
    plan = plan_screws(labels)
    out = Path(args.out) if args.out else folder / SCREWS_JSON
    write_screws(out, plan.screws, plan.not_planned, labels=str(labels_path.resolve()),
                 scan=str(Path(args.scan).resolve()) if args.scan else None)
    for s in plan.screws:
        print(f"  {s.vertebra:4s} {s.side:5s} {s.diameter_mm:g} x {s.length_mm:g} mm  "
              f"{s.min_cortex_distance_mm:+.1f} mm to the cortex, grade {s.grade}")
    for n in plan.not_planned:
        print(f"  {n.vertebra:4s} {n.side:5s} no screw: {n.reason}")
    print(f"Wrote {out} ({len(plan.screws)} screws)")
    return 0


def add_screws(sub) -> None:
    p = sub.add_parser("screws", help="suggest pedicle screws (entry, trajectory, diameter, length, expected "
                                      "Gertzbein-Robbins grade) for a result folder's thoracic and lumbar vertebrae")
    p.add_argument("result", metavar="RESULT_DIR", help="a result folder written by `spineplan segment` "
                                                        "(labels.nii.gz)")
    p.add_argument("--scan", metavar="INPUT", help="the scan the labels were made on (the labels are read on its "
                                                   "grid, and screws.json records it)")
    p.add_argument("--series", help="series instance UID, where the scan input holds several")
    p.add_argument("-o", "--out", metavar="OUT", help="where to write the screws (default: RESULT_DIR/screws.json; "
                                                      "`spineplan export --format markups` reads it from there)")
    p.set_defaults(func=cmd_screws)
