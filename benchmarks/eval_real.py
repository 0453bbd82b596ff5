"""The real-CT benchmark: every labelled real CT scored with the case's protocol stated, pooled figures,
one ablation row per lever, and the whole unlabelled real scans run and drawn for checking by eye.

    PYTHONPATH=. .venv/bin/python -m benchmarks.eval_real [--json OUT] [--pictures DIR] [--skip-unlabelled]

Protocol: a case is "held out" only if it shaped nothing the pipeline uses: no model's training or
validation (checkpoint choice) data names it (read from the model cards), and it was not used to
calibrate the phantoms (docs/PHANTOMS.md). Any other case is reported with what it shaped, and its
figures are not held-out figures.
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
from benchmarks.eval_accuracy import REAL, load_case, thick_slices
from benchmarks.fold_models import fold_model_set
from spine_core.errors import SpineError
from spine_core.io import load_scan
from spine_core.metrics import evaluate
from spine_core.pipeline import segment
from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.pipelines import PIPELINES
from spine_core.pipeline.registry import resolve
from spine_core.volume import LabelMap

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELLED = REAL        # the labelled real CTs, as benchmarks.eval_accuracy reads them
UNLABELLED = {"acrin_chest_to_pelvis": "acrin_flt_breast_001/chest_to_pelvis.nii.gz",
              "acrin_head_to_chest": "acrin_flt_breast_001/head_to_chest.nii.gz",
              "cptac_abdomen": "cptac_abdomen/image.nii.gz",
              "ricord_chest": "ricord_chest/dicom",
              "ricord_sagittal_reformat": "ricord_sagittal_reformat/dicom"}
# docs/PHANTOMS.md: bone HU and level dimensions were calibrated on these real CTs
PHANTOM_CALIBRATION = ("verse006", "verse007", "tptbox_lumbar")
# (name, the SegmentOptions that differ from the shipped defaults): one row per lever
ABLATION = (("per-vertebra (M1 -> M2) + bone refinement", {}),
            ("per-vertebra (M1 -> M2) + bone refinement, no body completion", {"body_completion": False}),
            ("per-vertebra (M1 -> M2) + bone refinement, no disc gaps", {"disc_gaps": False}),
            ("per-vertebra (M1 -> M2) + bone refinement, no chain ends", {"chain_ends": False}),
            ("per-vertebra (M1 -> M2) + bone refinement, no body size", {"body_size": False}),
            ("per-vertebra (M1 -> M2) + bone refinement, no disc partition", {"disc_partition": False}),
            ("per-vertebra (M1 -> M2), no bone refinement", {"bone_refine": False}),
            ("per-vertebra (M1 -> M2) + bone refinement, no rib anchor", {"rib_anchor": False}),
            ("joint (M1 -> M3) + bone refinement", {"pipeline": "joint"}),
            ("joint (M1 -> M3), no bone refinement", {"pipeline": "joint", "bone_refine": False}),
            ("localizer components (M1 only) + bone refinement", {"pipeline": "localizer-components"}))


def case_roles(case: str, pipeline: str, models: ModelSet) -> list[str]:
    """How ``case`` shaped the ``pipeline``: 'trained: <model>', 'checkpoint choice: <model>', ..."""
    roles = []
    stages = PIPELINES[resolve(pipeline)]()
    optional = {m for stage in stages for m in stage.optional_model_ids if models.has(m)}
    for model_id in sorted({m for stage in stages for m in stage.model_ids} | optional):
        data = models.get(model_id).card.training.get("data", {})
        if case in data.get("train", {}).get("cases", []):
            roles.append(f"trained: {model_id}")
        if case in data.get("validation", {}).get("cases", []):
            roles.append(f"checkpoint choice: {model_id}")
    if case in PHANTOM_CALIBRATION:
        roles.append("phantom calibration")
    return roles


def any_level_dice(predicted: np.ndarray, reference: np.ndarray) -> list[float]:
    """Per reference vertebra, the Dice of the predicted label that overlaps it best, whatever its name:
    how well the masks fit, apart from the numbering."""
    out = []
    for vid in [int(v) for v in np.unique(reference) if 0 < v < 100]:
        ref = reference == vid
        labels, overlap = np.unique(predicted[ref], return_counts=True)
        best = 0.0
        for label, n in zip(labels, overlap):
            if label > 0:
                best = max(best, 2.0 * n / (ref.sum() + (predicted == label).sum()))
        out.append(round(float(best), 3))
    return out


def score_case(case: str, options: SegmentOptions, models: ModelSet, thick_mm: float = 0.0) -> dict:
    scan, ref = load_case(case)
    if thick_mm:
        scan, ref = thick_slices(scan, ref, thick_mm)
    start = time.perf_counter()
    try:
        result = segment(scan, options, models=models)
        labels, vertebrae, refused = result.labels, result.vertebrae, None
    except SpineError as exc:     # the product refused the scan (e.g. no spine found): it scores as nothing found
        labels, vertebrae, refused = LabelMap.on_grid(scan, np.zeros(scan.shape, np.int16)), [], str(exc)
    seconds = time.perf_counter() - start
    report = evaluate(labels, ref)
    s = report.summary
    roles = case_roles(case, options.pipeline, models)
    return {"case": case, "protocol": "held out" if not roles else "shaped the pipeline", "roles": roles,
            "judged": judged_vertebrae(labels.array, ref.array, vertebrae), "refused": refused,
            "seconds": round(seconds, 1), "vertebra_dice": [round(r.dice, 3) for r in report.vertebrae],
            "any_level_dice": any_level_dice(labels.array, ref.array),
            "identified": [bool(r.identified) for r in report.vertebrae],
            "centroid_errors_mm": [r.centroid_error_mm for r in report.vertebrae if r.centroid_error_mm is not None],
            "mean_dice": round(s.mean_dice, 3), "binary_dice": round(s.binary_dice, 3),
            "identification_rate": round(s.identification_rate, 3), "level_shift": s.level_shift,
            "found": s.n_pred, "expected": s.n_ref,
            "names": [v.name for v in vertebrae]}


def pooled(rows: list[dict]) -> dict:
    """Pooled over reference vertebrae (per-vertebra Dice, identification, centroid error) and over
    cases (binary Dice)."""
    dice = [d for r in rows for d in r["vertebra_dice"]]
    any_level = [d for r in rows for d in r.get("any_level_dice", [])]
    ident = [i for r in rows for i in r["identified"]]
    errors = [e for r in rows for e in r["centroid_errors_mm"]]
    return {"vertebra_dice": round(float(np.mean(dice)), 3) if dice else None,
            "any_level_dice": round(float(np.mean(any_level)), 3) if any_level else None,
            "identification_rate": round(float(np.mean(ident)), 3) if ident else None,
            "centroid_error_mm": round(float(np.mean(errors)), 1) if errors else None,
            "binary_dice": round(float(np.mean([r["binary_dice"] for r in rows])), 3),
            "found": sum(r["found"] for r in rows), "expected": sum(r["expected"] for r in rows),
            "held_out_cases": [r["case"] for r in rows if r["protocol"] == "held out"],
            "calibration": calibration_table([p for r in rows for p in r.get("judged", [])])}


def run_unlabelled(name: str, options: SegmentOptions, models: ModelSet, pictures: Path | None) -> dict:
    start = time.perf_counter()
    try:
        scan = load_scan(DATA / "ct_unlabelled" / UNLABELLED[name])
        result = segment(scan, options, models=models)
    except Exception as exc:  # noqa: BLE001 - a scan the product refuses is a row, not a crash
        return {"scan": name, "error": f"{type(exc).__name__}: {exc}"}
    row = {"scan": name, "seconds": round(time.perf_counter() - start, 1), "found": len(result.vertebrae),
           "vertebrae": [{"name": v.name, "volume_ml": round(v.volume_mm3 / 1000, 1),
                          "confidence": v.confidence, "flags": list(v.flags)} for v in result.vertebrae]}
    if pictures is not None:
        from spine_core.pictures import save_sagittal_coronal

        path = pictures / f"{name}.png"
        save_sagittal_coronal(scan, result.labels, path, title=name)
        row["picture"] = str(path)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--pictures", default="docs/images/real", help="where the unlabelled scans' pictures go")
    parser.add_argument("--skip-unlabelled", action="store_true")
    parser.add_argument("--skip-labelled", action="store_true")
    parser.add_argument("--only-ablation", nargs="*", help="ablation row names to run (default all)")
    parser.add_argument("--cases", nargs="+", choices=list(LABELLED), help="score only these labelled cases")
    parser.add_argument("--fold-models", metavar="DIR", help="score each labelled case with the models of its "
                        "leave-one-case-out fold, DIR/<case>/models (python -m training.loco)")
    parser.add_argument("--unlabelled-models", metavar="DIR", help="run the unlabelled scans with the models "
                        "exported in DIR (e.g. a fold's) instead of the shipped ones")
    parser.add_argument("--scans", nargs="+", choices=list(UNLABELLED), help="run only these unlabelled scans")
    parser.add_argument("--unlabelled-row", choices=[title for title, _ in ABLATION], default=ABLATION[0][0],
                        help="run the unlabelled scans with this ablation row's options (default: as shipped)")
    parser.add_argument("--thick-slices", type=float, default=0.0, metavar="MM",
                        help="score the labelled cases as if scanned with MM thick axial slices (averaged)")
    args = parser.parse_args()
    models = ModelSet(None, "cpu")

    folds: dict[str, ModelSet] = {}

    def models_for(case: str) -> ModelSet:
        if not args.fold_models:
            return models
        if case not in folds:
            folds[case] = fold_model_set(Path(args.fold_models) / case / "models")
        return folds[case]

    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {_cpus()} CPUs",
              "ablation": [], "unlabelled": []}
    for title, changed in ABLATION:
        if args.skip_labelled or (args.only_ablation and title not in args.only_ablation):
            continue
        options = replace(SegmentOptions(device="cpu"), **changed)
        rows = [score_case(case, options, models_for(case), args.thick_slices) for case in LABELLED
                if not args.cases or case in args.cases]
        report["ablation"].append({"name": title, "pipeline": options.pipeline, "bone_refine": options.bone_refine,
                                   "options": changed,
                                   "cases": rows, "pooled": pooled(rows)})
        print(json.dumps(report["ablation"][-1]["pooled"] | {"name": title}), flush=True)
    if not args.skip_unlabelled:
        pictures = Path(args.pictures)
        pictures.mkdir(parents=True, exist_ok=True)
        options = replace(SegmentOptions(device="cpu"), **dict(ABLATION)[args.unlabelled_row])
        unlabelled_models = fold_model_set(args.unlabelled_models) if args.unlabelled_models else models
        for name in [n for n in UNLABELLED if not args.scans or n in args.scans]:
            report["unlabelled"].append(run_unlabelled(name, options, unlabelled_models, pictures))
            row = report["unlabelled"][-1]
            print(name, row.get("error") or " ".join(v["name"] for v in row["vertebrae"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
