"""Accuracy of the CT pipeline on every real shared CT and on a held-out phantom set.

    .venv/bin/python -m benchmarks.eval_accuracy [--pipeline default] [--models DIR | --fold-models DIR] [--json OUT] [--only NAME ...]

Each case runs `segment()` on the scan exactly as `spineplan segment` does and scores the result
against the reference labels with `spine_core.metrics.evaluate` (what `spineplan eval` prints).
Phantom seeds here (7001+) are never used in training (training uses 1000-1039 and 9001-9002).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.calibration import calibration_table, judged_vertebrae
from benchmarks.fold_models import fold_model_set
from spine_core.io import load_labels, load_scan
from spine_core.metrics import evaluate
from spine_core.pipeline import segment
from spine_core.pipeline.api import SegmentOptions
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct"
REAL = {"verse006": "image.nii.gz", "verse007": "image.nii.gz", "tptbox_lumbar": "image.nii.gz",
        "ts_dicom": "dicom"}


def phantom_cases():
    from spine_core.phantom import PhantomOptions

    base = PhantomOptions(spacing_mm=(1.0, 1.0, 1.5), fov_mm=260.0, centre_on_spine=True)
    return {
        "ph-lumbar": replace(base, seed=7001, first_level="T10"),
        "ph-thoracolumbar-scoliosis": replace(base, seed=7002, first_level="T4", last_level="L3",
                                              curve=replace(base.curve, scoliosis_cobb_deg=35.0)),
        "ph-partial-fov": replace(base, seed=7003, first_level="L1", last_level="L4", margin_mm=-8.0),
        "ph-l6-variant": replace(base, seed=7004, first_level="T11", lumbar_count=6),
        "ph-hardware": replace(base, seed=7005, first_level="T12", hardware_levels=("L3", "L4", "L5")),
        "ph-osteoporotic-fracture": replace(base, seed=7006, first_level="T8", last_level="L4",
                                            bone_density=0.4, fractures=(("T12", 0.4),)),
        "ph-cervical": replace(base, seed=7007, first_level="C1", last_level="T3"),
    }


# phantoms above as if scanned with thick axial slices (clinical body CT): name -> (phantom, slab mm)
THICK_PHANTOMS = {"ph-lumbar-4.5mm": ("ph-lumbar", 4.5), "ph-cervical-4.5mm": ("ph-cervical", 4.5)}


def thick_slices(scan, ref: LabelMap, mm: float):
    """(scan, reference) as if scanned with ``mm`` thick axial slices: the image averaged over that
    thickness along the array axis nearest the patient's head-foot axis and kept every such slab (the
    reference at the slabs' centres). The thickness is a whole number of the scan's slices."""
    from scipy import ndimage

    axis = int(np.argmax(np.abs(scan.affine[2, :3]) / np.linalg.norm(scan.affine[:3, :3], axis=0)))
    spacing = float(np.linalg.norm(scan.affine[:3, axis]))
    k = max(1, int(round(mm / spacing)))
    keep = np.arange(k // 2, scan.shape[axis], k)
    image = ndimage.uniform_filter1d(np.asarray(scan.array, np.float32), size=k, axis=axis, mode="nearest")
    affine = scan.affine.copy()
    affine[:3, 3] += (k // 2) * affine[:3, axis]
    affine[:3, axis] *= k
    thick = replace(scan, array=np.take(np.round(image).astype(scan.array.dtype), keep, axis=axis), affine=affine)
    return thick, LabelMap(np.take(ref.array, keep, axis=axis), affine, names=ref.names)


def load_case(name):
    if name in REAL:
        scan = load_scan(SHARED / name / REAL[name])
        return scan, resample_to_grid(load_labels(SHARED / name / "labels.nii.gz"), scan)
    from spine_core.phantom import generate_phantom

    if name in THICK_PHANTOMS:
        phantom, mm = THICK_PHANTOMS[name]
        return thick_slices(*load_case(phantom), mm)
    phantom = generate_phantom(phantom_cases()[name])
    return phantom.image, phantom.labels


def run_case(name, options, models=None):
    scan, ref = load_case(name)
    start = time.perf_counter()
    try:
        result = segment(scan, options, models=models)
    except Exception as exc:  # noqa: BLE001 - a failed case is a row in the table, not a crash
        return {"case": name, "error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - start
    s = evaluate(result.labels, ref).summary
    return {"case": name, "seconds": round(seconds, 1), "mean_dice": round(s.mean_dice, 3),
            "binary_dice": round(s.binary_dice, 3), "identification_rate": round(s.identification_rate, 3),
            "mean_centroid_error_mm": None if s.mean_centroid_error_mm is None else round(s.mean_centroid_error_mm, 1),
            "localization_error_mm": None if s.mean_localization_error_mm is None else round(s.mean_localization_error_mm, 1),
            "level_shift": s.level_shift, "n_ref": s.n_ref, "n_pred": s.n_pred,
            "flags": sorted({f for v in result.vertebrae for f in v.flags}),
            "judged": judged_vertebrae(result.labels.array, ref.array, result.vertebrae)}


def evaluate_cases(names, pipeline: str = "per-vertebra", models=None, rib_anchor: bool = True,
                   bone_refine: bool = True, body_completion: bool = True, disc_gaps: bool = True,
                   chain_ends: bool = True, body_size: bool = True, disc_partition: bool = True,
                   fold_models=None) -> dict:
    """``fold_models``: a folder of freshly trained models (a fold's, a lever's), registered as a site's
    would be (benchmarks.fold_models); ``models``: a folder of shipped ones."""
    model_set = fold_model_set(fold_models) if fold_models else None
    options = SegmentOptions(pipeline=pipeline, device="cpu", models_dir=Path(models) if models else None,
                             rib_anchor=rib_anchor, bone_refine=bone_refine, body_completion=body_completion,
                             disc_gaps=disc_gaps, chain_ends=chain_ends, body_size=body_size,
                             disc_partition=disc_partition)
    rows = []
    for name in names:
        rows.append(run_case(name, options, model_set))
        print(json.dumps(rows[-1]), flush=True)
    return {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "pipeline": pipeline,
            "models": str(fold_models or models or "shipped"), "cases": rows,
            "calibration": calibration_table([p for r in rows for p in r.get("judged", [])])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", default="per-vertebra")
    parser.add_argument("--models", help="models folder (default: the shipped resources/models)")
    parser.add_argument("--fold-models", help="a folder of freshly trained models (registered for this run)")
    parser.add_argument("--json")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--no-rib-anchor", action="store_true", help="number with the labeler alone")
    parser.add_argument("--no-bone-refine", action="store_true", help="the networks' masks as they are")
    parser.add_argument("--no-body-completion", action="store_true", help="bone refinement without body completion")
    parser.add_argument("--no-disc-gaps", action="store_true", help="gap filling from the spacing alone, not the discs")
    parser.add_argument("--no-chain-ends", action="store_true", help="no gap filling past the chain's ends")
    parser.add_argument("--no-body-size", action="store_true", help="number without the vertebral bodies' sizes")
    parser.add_argument("--no-disc-partition", action="store_true", help="masks not re-divided at the discs")
    args = parser.parse_args()
    report = evaluate_cases(args.only or [*REAL, *phantom_cases(), *THICK_PHANTOMS], args.pipeline, args.models,
                            rib_anchor=not args.no_rib_anchor, bone_refine=not args.no_bone_refine,
                            body_completion=not args.no_body_completion, disc_gaps=not args.no_disc_gaps,
                            chain_ends=not args.no_chain_ends, body_size=not args.no_body_size,
                            disc_partition=not args.no_disc_partition, fold_models=args.fold_models)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
