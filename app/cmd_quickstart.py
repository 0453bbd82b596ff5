"""`spineplan quickstart`: what `./run.sh` runs with no arguments, the best of the product today.

The demo study is written (or reused), then opened in the workstation where a display exists;
elsewhere the automatic analysis runs and is printed with its accuracy against the reference labels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    """The automatic analysis of the demo study, scored against the labels it was generated with."""
    from app.scan_summary import print_volume
    from spine_core.io import load_labels, load_scan
    from spine_core.metrics import evaluate
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.workflows.analysis import analyse, review

    scan = load_scan(folder / "dicom")
    print("\nScan")
    print_volume(scan)
    print("\nAutomatic analysis (spineplan segment) ...", flush=True)
    result = analyse(scan, SegmentOptions())
    print(f"\n  {'name':<7} {'volume mL':>9} {'confidence':>10}   centroid L, P, S (mm)   flags")
    flags, case = review(result, scan)
    for v in result.vertebrae:
        p = v.position
        print(f"  {v.name:<7} {v.volume_mm3 / 1000:9.1f} {v.confidence:10.2f}   "
              f"{p[0]:7.1f} {p[1]:7.1f} {p[2]:8.1f}   {', '.join(flags.get(v.id, v.flags))}")
    print(f"\nQA status: {case.status}" + "".join(f"\n  {flag}" for flag in case.flags))
    if result.warnings:
        print()
    for warning in result.warnings:
        print(f"Warning: {warning}")
    s = evaluate(result.labels, load_labels(folder / "labels.nii.gz", grid=scan)).summary
    print(f"\n{len(result.vertebrae)} vertebrae in {result.timings_s.get('total', 0):.1f} s on "
          f"{result.provider}. Against the demo's reference labels: identification "
          f"{s.identification_rate * 100:.0f} %, mean vertebra Dice {s.mean_dice:.2f}.")
    opener = "spineplan gui" if getattr(sys, "frozen", False) else "./run.sh"     # the installed bundle has no run.sh
    print(f"Review flagged vertebrae before planning; with a display, {opener} opens the workstation.")


def add_quickstart(sub) -> None:
    p = sub.add_parser("quickstart", help="open the built-in demo study (what ./run.sh runs)")
    p.add_argument("--quick", action="store_true", help="a small, coarse demo study (for smoke tests)")
    p.add_argument("--no-gui", action="store_true", help="print the summary even where a display exists")
    p.set_defaults(func=cmd_quickstart)
