"""CLI sub-commands. Each ``add_*`` registers one; only commands that work are listed."""
from __future__ import annotations

from pathlib import Path

from app.cmd_batch import add_batch
from app.cmd_demo import add_demo
from app.cmd_eval import add_eval
from app.cmd_export import add_export
from app.cmd_gui import add_gui
from app.cmd_measure import add_measure
from app.cmd_models import add_models
from app.cmd_plan_screws import add_screws
from app.cmd_quickstart import add_quickstart
from app.cmd_retrain import add_retrain
from app.cmd_segment import add_bench, add_segment
from app.cmd_train import add_export_onnx, add_train
from app.scan_summary import print_volume


def _print_series_listing(listing) -> None:
    if len(listing) > 1:
        print(f"{len(listing)} series:")
        for s in listing:
            print("  " + s.summary())


def cmd_info(args) -> int:
    from spine_core.io import load_scan, scan_listing

    listing = scan_listing(args.path)
    _print_series_listing(listing)
    if len(listing) > 1 and not args.series:
        from spine_core.io.dicom import choose_series

        try:
            chosen = choose_series(listing, None, Path(args.path))
        except Exception:  # noqa: BLE001 - a tie: the listing above is the answer
            print("Several series are equally likely; pass --series UID for details of one.")
            return 0
        args.series = chosen.uid
        print(f"Details of the default series (the largest CT axial one), {chosen.uid}:")
    volume = load_scan(args.path, series=args.series)
    print_volume(volume)
    return 0


def add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a scan: series, size, spacing, orientation, value range")
    p.add_argument("path", help="DICOM folder, file or zip; NIfTI, NRRD or MHA file")
    p.add_argument("--series", help="series instance UID, where the input holds several")
    p.set_defaults(func=cmd_info)


def cmd_convert(args) -> int:
    from spine_core.errors import MultipleSeries
    from spine_core.io import load_scan, save_volume, scan_listing
    from spine_core.io.readers import check_modality

    out = Path(args.out)
    if not out.name.lower().endswith((".nii.gz", ".nii", ".nrrd", ".mha")):
        from spine_core.errors import SpineError

        raise SpineError(f"'{out.name}': choose an output ending in .nii.gz, .nii, .nrrd or .mha.")
    listing = scan_listing(args.path)
    if len(listing) > 1 and not args.series:
        lines = "\n".join("  " + s.summary() for s in listing)
        raise MultipleSeries(f"'{args.path}' holds {len(listing)} series; choose one with "
                             f"--series UID:\n{lines}", listing)
    volume = load_scan(args.path, series=args.series)
    if args.expect_modality:
        volume = check_modality(volume, args.expect_modality, strict=True)
    for warning in volume.metadata.warnings:
        print(f"Warning: {warning}")
    save_volume(volume, out)
    print(f"Wrote {out} ({' x '.join(map(str, volume.shape))} voxels, "
          f"{' x '.join(f'{s:.4g}' for s in volume.spacing)} mm)")
    return 0


def add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert a scan (e.g. a DICOM series) to NIfTI/NRRD/MHA")
    p.add_argument("path", help="DICOM folder, file or zip; NIfTI, NRRD or MHA file")
    p.add_argument("out", help="output file (.nii.gz, .nii, .nrrd, .mha)")
    p.add_argument("--series", help="series instance UID, where the input holds several")
    p.add_argument("--expect-modality", choices=["CT", "MR"],
                   help="refuse scans of another modality (exit 2)")
    p.set_defaults(func=cmd_convert)


REGISTRY = [add_quickstart, add_info, add_convert, add_eval, add_gui, add_demo, add_train, add_export_onnx,
            add_segment, add_batch, add_measure, add_bench, add_export, add_models, add_screws,
            add_retrain]
