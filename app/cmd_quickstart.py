"""`spineplan quickstart`: what `./run.sh` runs with no arguments, the best of the product today.

The demo study is written (or reused), then opened in the workstation where a display exists;
elsewhere a command-line summary of the scan and its vertebrae is printed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def cmd_quickstart(args) -> int:
    from app.cmd_demo import cmd_demo, default_demo_dir
    from app.gui import display_problem

    folder = default_demo_dir(args.quick)
    rc = cmd_demo(argparse.Namespace(out=str(folder), quick=args.quick, verbose=args.verbose))
    if rc:
        return rc
    if not args.no_gui and display_problem() is None:
        from app.gui import run_gui

        return run_gui(path=str(folder))
    _print_analysis(folder)
    return 0


def _print_analysis(folder: Path) -> None:
    from app.commands import _print_volume
    from spine_core.io import load_labels, load_scan

    scan = load_scan(folder / "dicom")
    labels = load_labels(folder / "labels.nii.gz", grid=scan)
    print("\nScan")
    _print_volume(scan)
    print("\nVertebrae (the demo study's reference labels)")
    print(f"  {'name':<7} {'volume mL':>9}   centroid L, P, S (mm)")
    voxel_ml = float(np.prod(scan.spacing)) / 1000.0
    ids = [i for i in labels.ids() if i < 100]
    counts = np.bincount(labels.array.ravel(), minlength=max(ids) + 1)
    from scipy import ndimage

    centres = ndimage.center_of_mass(labels.array > 0, labels.array, ids)
    for vid, centre in zip(ids, centres):
        lps = scan.index_to_lps(np.asarray(centre))
        print(f"  {labels.names[vid]:<7} {counts[vid] * voxel_ml:9.1f}   "
              f"{lps[0]:7.1f} {lps[1]:7.1f} {lps[2]:8.1f}")
    print("\nAutomatic segmentation (`spineplan segment`) is not shipped yet; the vertebrae above are "
          "the reference labels written with the demo study. With a display, ./run.sh opens them in "
          "the workstation.")


def add_quickstart(sub) -> None:
    p = sub.add_parser("quickstart", help="open the built-in demo study (what ./run.sh runs)")
    p.add_argument("--quick", action="store_true", help="a small, coarse demo study (for smoke tests)")
    p.add_argument("--no-gui", action="store_true", help="print the summary even where a display exists")
    p.set_defaults(func=cmd_quickstart)
