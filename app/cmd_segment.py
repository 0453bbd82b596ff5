"""`spineplan segment INPUT -o OUTDIR` and `spineplan bench`: automatic CT analysis and its timing.

OUTDIR gets labels.nii.gz (the input's grid), centroids.json (LPS mm), meshes/ (+ manifest.json),
metrics.json and segment.log. Everything is written into a hidden folder beside OUTDIR and renamed
into place at the end, so a crash or a cancel never leaves half a result.
"""
from __future__ import annotations

import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.io.writers import replace_folder

log = logging.getLogger("spineplan.segment")
RESULT_FILES = ("labels.nii.gz", "centroids.json", "metrics.json", "segment.log", "meshes")


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


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


def review_flags(result) -> dict[int, list[str]]:
    """Every vertebra's flags as the workstation shows them (spine_core.review: the analysis' own and
    those read from the label map, e.g. "small", "gap above")."""
    from spine_core.review import vertebra_rows

    rows = vertebra_rows(result.labels, {v.id: v for v in result.vertebrae})
    return {row.label_id: list(row.flags) for row in rows}


def vertebra_dicts(result, flags: dict[int, list[str]] | None = None) -> list[dict]:
    flags = review_flags(result) if flags is None else flags
    return [{"id": v.id, "name": v.name, "position": [round(float(x), 3) for x in v.position],
             "confidence": v.confidence, "flags": flags.get(v.id, list(v.flags))} for v in result.vertebrae]


def metrics_dict(result, volume, pipeline: str) -> dict:
    flags = review_flags(result)
    return {"pipeline": pipeline, "provider": result.provider,
            "input": {"shape": list(volume.shape), "spacing_mm": [round(float(s), 4) for s in volume.spacing],
                      "orientation": volume.orientation, "series_uid": volume.metadata.series_uid},
            "vertebrae": [{"id": v.id, "name": v.name, "volume_mm3": round(v.volume_mm3, 1),
                           "centroid": [round(float(x), 3) for x in v.position], "confidence": v.confidence,
                           "flags": flags.get(v.id, list(v.flags))} for v in result.vertebrae],
            "timings_s": result.timings_s, "peak_rss_mb": peak_rss_mb(), "warnings": result.warnings}


def _check_outdir(out: Path) -> None:
    """Replace an earlier result or fill an empty folder; never wipe a folder of other files."""
    if out.exists() and (not out.is_dir() or any(p.name not in RESULT_FILES for p in out.iterdir())):
        raise SpineError(f"'{out}' exists and holds other files; choose a new or empty output folder.")


def write_results(result, volume, staging: Path, pipeline: str, fast: bool) -> None:
    from spine_core.export import ExportOptions, export_meshes
    from spine_core.io.writers import atomic_path, save_labelmap
    from spine_core.meshes import MeshOptions, mesh_labels

    save_labelmap(result.labels, staging / "labels.nii.gz")
    doc = {"coordinate_system": "LPS", "units": "mm", "vertebrae": vertebra_dicts(result)}
    with atomic_path(staging / "centroids.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    began = time.perf_counter()
    options = MeshOptions(smoothing_iterations=10, target_reduction=0.8) if fast else MeshOptions()
    meshes = mesh_labels(result.labels, options=options)
    if meshes:
        export_meshes(meshes, staging / "meshes", ExportOptions(source_series_uid=volume.metadata.series_uid))
    result.timings_s["meshes"] = round(time.perf_counter() - began, 3)
    with atomic_path(staging / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics_dict(result, volume, pipeline), indent=2) + "\n", encoding="utf-8")


def _file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def run_segment(volume, out: Path, options, show_progress: bool = True):
    """Segment ``volume`` and write OUTDIR atomically; returns the SegmentResult."""
    from spine_core.pipeline.api import segment

    out = out.expanduser().resolve()
    _check_outdir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    handler = _file_log(staging / "segment.log")
    progress, bar = tqdm_progress(show_progress)
    try:
        log.info("segmenting %s, pipeline %s, device %s%s", volume, options.pipeline, options.device,
                 ", fast" if options.fast else "")
        result = segment(volume, options, progress)
        write_results(result, volume, staging, options.pipeline, options.fast)
        log.info("done: %d vertebrae, %s", len(result.vertebrae), result.timings_s)
        handler.close()
        replace_folder(staging, out)
        return result
    finally:
        bar.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
        shutil.rmtree(staging, ignore_errors=True)


def _options(args):
    from spine_core.pipeline import registry
    from spine_core.pipeline.api import SegmentOptions

    options = SegmentOptions(device=args.device, pipeline=registry.resolve(args.pipeline),
                             fast=bool(getattr(args, "fast", False)))
    if getattr(args, "models", None):
        options = replace(options, models_dir=Path(args.models))
    return options


def cmd_segment(args) -> int:
    from spine_core.io import load_scan

    volume = load_scan(args.input, series=args.series)
    result = run_segment(volume, Path(args.out), _options(args))
    for warning in result.warnings:
        print(f"Warning: {warning}")
    review = review_flags(result)
    for v in result.vertebrae:
        flags = f"  [{', '.join(review.get(v.id, v.flags))}]" if review.get(v.id, v.flags) else ""
        print(f"  {v.name:7s} confidence {v.confidence:.2f}  {v.volume_mm3 / 1000:6.1f} ml{flags}")
    total = result.timings_s.get("total", 0.0)
    print(f"{len(result.vertebrae)} vertebrae in {total:.1f} s ({result.provider}); results in {args.out}")
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
        result = run_segment(volume, Path(tmp) / "out", options)
    summary = evaluate(result.labels, ref).summary
    total = result.timings_s.get("total", 0.0)
    return {"case": name, "shape": list(volume.shape), "spacing_mm": [round(float(s), 3) for s in volume.spacing],
            "timings_s": result.timings_s, "total_s": total, "peak_rss_mb": peak_rss_mb(),
            "voxels_per_s": round(float(volume.array.size) / max(total, 1e-9)), "provider": result.provider,
            "n_vertebrae": len(result.vertebrae), "mean_dice": summary.mean_dice,
            "binary_dice": summary.binary_dice, "identification_rate": summary.identification_rate,
            "mean_centroid_error_mm": summary.mean_centroid_error_mm}


def cmd_bench(args) -> int:
    from spine_core.io.writers import atomic_path

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

    described = "; ".join(f"{q.name}: {q.description}" for q in registry.PIPELINES)
    p.add_argument("--pipeline", default=registry.DEFAULT, choices=registry.choices(), metavar="NAME",
                   help=f"analysis pipeline ({described}; the old names default, m3, m1-only still work)")
    p.add_argument("--models", metavar="DIR", help="folder of models (default: the installed ones)")


def add_segment(sub) -> None:
    p = sub.add_parser("segment", help="automatic CT analysis: vertebra labels, centroids, meshes")
    p.add_argument("input", help="DICOM folder, file or zip; NIfTI, NRRD or MHA file")
    p.add_argument("-o", "--out", required=True, help="output folder (created; an earlier result is replaced)")
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
