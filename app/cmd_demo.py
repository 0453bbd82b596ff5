"""`spineplan demo`: writes (or reuses) a synthetic full-spine CT study with exact labels."""
from __future__ import annotations

import json
import time
from pathlib import Path

DEMO_SEED = 2024


def demo_options(quick: bool = False):
    """The fixed demo patient: C1-sacrum, 0.8 mm pixels, 1 mm slices, 400 mm field of view."""
    from spine_core.phantom import PhantomOptions
    from spine_core.phantom.layout import CurveShape

    curve = CurveShape(lumbar_lordosis_deg=48.0, thoracic_kyphosis_deg=36.0, scoliosis_cobb_deg=8.0,
                       scoliosis_apex="T9")
    options = PhantomOptions(seed=DEMO_SEED, curve=curve, osteophytes=0.25, disc_degeneration=0.2,
                             contrast=True, noise_hu=16.0, fov_mm=409.6)
    if quick:
        from dataclasses import replace

        options = replace(options, first_level="T11", spacing_mm=(2.0, 2.0, 2.5), fov_mm=360.0)
    return options


def default_demo_dir(quick: bool = False) -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("spineplan")) / ("demo-quick" if quick else "demo")


def study_is_complete(folder: Path, quick: bool) -> bool:
    from spine_core.phantom.writer import FORMAT_VERSION, STAMP

    stamp = folder / STAMP
    if not stamp.is_file() or not (folder / "labels.nii.gz").is_file() or not (folder / "dicom").is_dir():
        return False
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data.get("format") == FORMAT_VERSION and data.get("options", {}).get("seed") == DEMO_SEED \
        and data.get("quick", False) == quick


def cmd_demo(args) -> int:
    from spine_core.phantom import generate_phantom, write_phantom
    from spine_core.phantom.writer import STAMP

    out = Path(args.out).expanduser() if args.out else default_demo_dir(args.quick)
    if study_is_complete(out, args.quick):
        print(f"Demo study already present in {out} (reused).")
        _print_summary(out)
        return 0
    start = time.perf_counter()
    progress = _printer(args.verbose)
    print("Generating the demo study (synthetic CT, C1-sacrum)...")
    phantom = generate_phantom(demo_options(args.quick), progress)
    write_phantom(phantom, out, progress=progress)
    stamp = out / STAMP
    data = json.loads(stamp.read_text())
    data["quick"] = bool(args.quick)
    stamp.write_text(json.dumps(data, indent=2) + "\n")
    print(f"Wrote the demo study in {time.perf_counter() - start:.1f} s to {out}")
    _print_summary(out)
    return 0


def _printer(verbose: bool):
    from spine_core.progress import CallbackProgress

    state = {"last": ""}

    def show(fraction: float, message: str) -> None:
        if verbose and message != state["last"]:
            print(f"  [{fraction * 100:3.0f}%] {message}")
            state["last"] = message

    return CallbackProgress(show)


def _print_summary(folder: Path) -> None:
    centroids = json.loads((folder / "centroids.json").read_text())
    names = [v["name"] for v in centroids["vertebrae"]]
    n_slices = sum(1 for _ in (folder / "dicom").glob("*.dcm"))
    print(f"  DICOM series:  {folder / 'dicom'} ({n_slices} slices, patient PHANTOM)")
    print(f"  Labels:        {folder / 'labels.nii.gz'} (VerSe ids, same grid as the DICOM series)")
    print(f"  Centroids:     {folder / 'centroids.json'} (LPS mm)")
    if names:
        print(f"  Vertebrae:     {len(names)}, {names[0]} to {names[-1]}")
    print(f"Open it with:  spineplan info {folder / 'dicom'}")


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="write a synthetic spine CT study (DICOM + labels) to try SpinePlan")
    p.add_argument("--out", help="folder for the study (default: the per-user data folder)")
    p.add_argument("--quick", action="store_true",
                   help="a small, coarse study (T11-sacrum, 2 mm) for smoke tests")
    p.set_defaults(func=cmd_demo)
