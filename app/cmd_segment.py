"""`spineplan segment INPUT -o OUTDIR` and `spineplan bench`: automatic CT analysis and its timing.

What OUTDIR holds and how it is written: spine_core.workflows.analysis, shared with the workstation
and batch runs.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.labels import count_structures
from spine_core.workflows.analysis import analyse_to_folder, peak_rss_mb


def tqdm_progress(enabled: bool = True):
    """A CallbackProgress drawing one tqdm bar on stderr (and returning it to close)."""
    from tqdm import tqdm

    from spine_core.progress import CallbackProgress

    bar = tqdm(total=100, file=sys.stderr, disable=not enabled, unit="%", leave=False,
               bar_format="{l_bar}{bar}| {elapsed} {postfix}")

    def show(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction, 1)
        bar.set_postfix_str(message[:40], refresh=False)
        bar.refresh()

    return CallbackProgress(show), bar


def run_segment(volume, out: Path, options, show_progress: bool = True, overwrite: bool = False):
    """Segment ``volume`` and write OUTDIR atomically (spine_core.workflows.analysis) with a progress
    bar on stderr; returns the SegmentResult, the review flags of each vertebra id and the case's QA
    review. An earlier SpinePlan result in OUTDIR is replaced only with ``overwrite``."""
    progress, bar = tqdm_progress(show_progress)
    try:
        return analyse_to_folder(volume, out, options, progress, overwrite=overwrite)
    finally:
        bar.close()


def _options(args):
    from spine_core.pipeline import registry
    from spine_core.pipeline.api import SegmentOptions

    options = SegmentOptions(device=args.device, pipeline=registry.resolve(args.pipeline),
                             fast=bool(getattr(args, "fast", False)),
                             modality=(getattr(args, "modality", None) or "").upper())
    if getattr(args, "models", None):
        from spine_core.models.site import site_folder

        options = replace(options, models_dir=site_folder() if args.models == "site" else Path(args.models))
    return options


def cmd_segment(args) -> int:
    from spine_core.io import load_scan
    from spine_core.workflows.result_folder import check_outdir

    options = _options(args)
    check_outdir(Path(args.out).expanduser().resolve(), args.overwrite)   # before the scan is read
    volume = load_scan(args.input, series=args.series)
    result, review, case = run_segment(volume, Path(args.out), options, overwrite=args.overwrite)
    for warning in result.warnings:
        print(f"Warning: {warning}")
    for v in result.vertebrae:
        flags = f"  [{', '.join(review.get(v.id, v.flags))}]" if review.get(v.id, v.flags) else ""
        print(f"  {v.name:7s} confidence {v.confidence:.2f}  {v.volume_mm3 / 1000:6.1f} ml{flags}")
    total = result.timings_s.get("total", 0.0)
    print(f"QA status: {case.status}" + "".join(f"\n  {flag}" for flag in case.flags))
    print(f"{count_structures(v.id for v in result.vertebrae)} in {total:.1f} s ({result.provider}); "
          f"results in {args.out}")
    return 0


def bench_cases():
    """(name, scan, reference labels): the demo study (written first if absent) and a 512 x 512 x 300
    phantom at 0.8 x 0.8 x 1 mm."""
    import argparse

    from app.cmd_demo import cmd_demo, default_demo_dir, study_is_complete
    from spine_core.io import load_labels, load_scan

    folder = default_demo_dir()
    if not study_is_complete(folder, False):
        cmd_demo(argparse.Namespace(out=None, quick=False, verbose=False))
    scan = load_scan(folder / "dicom")
    yield "demo", scan, load_labels(folder / "labels.nii.gz", grid=scan)
    yield ("phantom-512x512x300", *_bench_phantom())


def _bench_phantom():
    from spine_core.phantom import PhantomOptions, generate_phantom
    from spine_core.pipeline.preprocess import crop_volume
    from spine_core.volume import LabelMap

    phantom = generate_phantom(PhantomOptions(seed=4242, first_level="T7", spacing_mm=(0.8, 0.8, 1.0), fov_mm=409.6))
    k = phantom.image.shape[2]
    start = max((k - 300) // 2, 0)
    nx, ny, _ = phantom.image.shape
    box = (slice(0, nx), slice(0, ny), slice(start, start + 300))
    image = crop_volume(phantom.image, box)
    labels = LabelMap(phantom.labels.array[box], image.affine, names=dict(phantom.labels.names))
    return image, labels


def bench_row(name, volume, ref, options) -> dict:
    from spine_core.metrics import evaluate

    with tempfile.TemporaryDirectory(prefix="spineplan-bench-") as tmp:
        result, _, _ = run_segment(volume, Path(tmp) / "out", options)
    summary = evaluate(result.labels, ref).summary
    total = result.timings_s.get("total", 0.0)
    return {"case": name, "shape": list(volume.shape), "spacing_mm": [round(float(s), 3) for s in volume.spacing],
            "timings_s": result.timings_s, "total_s": total, "peak_rss_mb": peak_rss_mb(),
            "voxels_per_s": round(float(volume.array.size) / max(total, 1e-9)), "provider": result.provider,
            "n_vertebrae": len(result.vertebrae), "mean_dice": summary.mean_dice,
            "binary_dice": summary.binary_dice, "identification_rate": summary.identification_rate,
            "mean_centroid_error_mm": summary.mean_centroid_error_mm}


def cmd_bench(args) -> int:

    options = _options(args)
    rows = []
    for name, volume, ref in bench_cases():
        print(f"{name}: {' x '.join(map(str, volume.shape))} voxels ...", flush=True)
        row = bench_row(name, volume, ref, options)
        rows.append(row)
        err = row["mean_centroid_error_mm"]
        print(f"  {row['total_s']:.1f} s, {row['voxels_per_s'] / 1e6:.2f} Mvoxel/s, peak RSS {row['peak_rss_mb']:.0f} MB, "
              f"mean Dice {row['mean_dice']:.3f}, identification {row['identification_rate']:.1%}, "
              f"centroid error {'-' if err is None else f'{err:.1f} mm'}")
    if args.json:
        with atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps({"pipeline": options.pipeline, "cases": rows}, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return 0


def _add_common(p) -> None:
    from spine_core.pipeline.runtime import DEVICES

    p.add_argument("--device", choices=DEVICES, default="auto", help="where the models run (default auto)")
    from spine_core.pipeline import registry

    described = "; ".join(f"{q.name}: {q.description}" for q in (*registry.PIPELINES, *registry.MR_PIPELINES))
    p.add_argument("--pipeline", default=registry.DEFAULT, choices=registry.choices(), metavar="NAME",
                   help=f"analysis pipeline ({described}; the old names default, m3, m1-only still work)")
    p.add_argument("--models", metavar="DIR", help="folder of models, each shipped or registered with `spineplan "
                   "models register`; 'site': the site's registered models (default: the shipped ones, with "
                   "the site models made active by `spineplan models use`)")
    p.add_argument("--modality", choices=["ct", "mr"], type=str.lower,
                   help="the modality of scans whose header names none (NIfTI, NRRD, MHA); without it, "
                   "SpinePlan tells CT from MR by the values and says so in the log")


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="automatic CT analysis: vertebra labels, centroids, meshes")
    p.add_argument("input", help="DICOM folder, file or zip; NIfTI, NRRD or MHA file")
    p.add_argument("-o", "--out", required=True, help="output folder: new or empty (or, with --overwrite, an "
                   "earlier SpinePlan result holding nothing else)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier SpinePlan result in OUT; a "
                   "folder with files SpinePlan did not write is never replaced")
    p.add_argument("--series", help="series instance UID, where the input holds several")
    p.add_argument("--fast", action="store_true", help="quicker, coarser analysis for previews")
    _add_common(p)
    p.set_defaults(func=cmd_segment)


def add_bench(sub) -> None:
    p = sub.add_parser("bench", help="time and score the analysis on the demo study and a 512x512x300 phantom")
    p.add_argument("--json", metavar="OUT", help="write the measurements as JSON to OUT")
    p.add_argument("--fast", action="store_true", help="benchmark the --fast analysis")
    _add_common(p)
    p.set_defaults(func=cmd_bench)
