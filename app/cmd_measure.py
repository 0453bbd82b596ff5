"""`spineplan measure RESULT_DIR [--scan INPUT]`: the measures of a result folder's labels
(spine_core.measure) into measurements.json and measurements.csv beside them."""
from __future__ import annotations

from pathlib import Path


def cmd_measure(args) -> int:
    from spine_core.errors import SpineError
    from spine_core.io import load_labels, load_scan
    from spine_core.measure import measure, write_measurements
    from spine_core.workflows.result_folder import record_in_marker

    folder = Path(args.result)
    labels_path = folder / "labels.nii.gz"
    if not labels_path.is_file():
        raise SpineError(f"'{folder}' is not a SpinePlan result folder (no labels.nii.gz); give the folder "
                         "`spineplan segment` wrote.")
    scan = load_scan(args.scan, series=args.series) if args.scan else None
    labels = load_labels(labels_path, grid=scan)
    doc = measure(labels, scan)
    if scan is None:
        doc["notes"] = ["no --scan given: bone density (core HU) not measured"]
    json_path, csv_path = write_measurements(folder, doc)
    record_in_marker(folder.resolve(), [json_path.resolve(), csv_path.resolve()])   # --overwrite may replace them
    for row in doc["vertebrae"]:
        heights = [row[k] for k in ("anterior_height_mm", "middle_height_mm", "posterior_height_mm")]
        shown = " / ".join("-" if h is None else f"{h:.1f}" for h in heights)
        extra = f"  [{', '.join(row['flags'])}]" if row["flags"] else ""
        note = f"  ({row['notes'][0]})" if row["notes"] and not row["body_found"] else ""
        print(f"  {row['name']:7s} heights a/m/p {shown} mm{extra}{note}")
    for key in ("lumbar_lordosis", "thoracic_kyphosis", "coronal_cobb"):
        angle = doc["alignment"].get(key)
        if angle:
            print(f"  {angle['name']}: {angle['degrees']:.1f} degrees ({angle['upper']} {angle['upper_plane']} to "
                  f"{angle['lower']} {angle['lower_plane']}){'; ' + angle['note'] if angle['note'] else ''}")
    print(f"Wrote {json_path} and {csv_path}")
    return 0


def add_measure(sub) -> None:
    p = sub.add_parser("measure", help="body heights, endplates, Genant grade, bone density and alignment "
                                       "of a result folder's labels")
    p.add_argument("result", help="a result folder written by `spineplan segment` (labels.nii.gz)")
    p.add_argument("--scan", help="the scan the labels were made on (for bone density in HU)")
    p.add_argument("--series", help="series instance UID, where the scan input holds several")
    p.set_defaults(func=cmd_measure)
