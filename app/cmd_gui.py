"""`spineplan gui`: the workstation window. Qt is imported only when the command runs."""
from __future__ import annotations

from pathlib import Path


def cmd_gui(args) -> int:
    from app.gui import run_gui
    from spine_core.errors import InputNotFound

    for given in (args.path, args.labels):
        if given and not Path(given).expanduser().exists():
            raise InputNotFound(f"'{given}' does not exist. Check the path, or that the drive is mounted.")
    if args.analyze and not args.path:
        raise InputNotFound("--analyze needs a scan to analyse: give its PATH.")
    return run_gui(args.path, args.labels, args.screenshot, args.quit, args.analyze, args.series)


def add_gui(sub) -> None:
    p = sub.add_parser("gui", help="open the workstation window (optionally with a scan and its labels)")
    p.add_argument("path", nargs="?", help="scan to open: DICOM folder, file or zip; NIfTI, NRRD or MHA; "
                   "a study folder holding dicom/ and labels.nii.gz; or a .spineplan plan")
    p.add_argument("--labels", help="label map of the scan (NIfTI, NRRD or MHA)")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="once the scan is loaded and meshed, save a picture of the window")
    p.add_argument("--series", metavar="UID", help="the DICOM series to open when the folder holds several")
    p.add_argument("--analyze", action="store_true",
                   help="analyse the scan once loaded (segment and number the vertebrae)")
    p.add_argument("--quit", action="store_true", help="exit once loaded (and the screenshot saved)")
    p.set_defaults(func=cmd_gui)
