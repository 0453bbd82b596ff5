"""The MR benchmark: every shared MR case segmented by the model of the cross-validation fold that never
saw it (python -m training.mr_cv), scored per structure, per set and pooled.

    PYTHONPATH=. .venv/bin/python -m benchmarks.eval_mr --folds runs/mr_cv [--json OUT] [--pictures DIR]
                                                        [--pipeline mr-scar|mr-sshs] [--cache DIR] [--rules R]

Per case only what its reference holds is scored (VB2 / VB3: bodies, IVD: discs, cervical: both).
Dice per structure uses the level names (a body labelled one level off scores 0 there); "bodies
(any level)" and "discs (any level)" score the masks regardless of numbering, so segmentation and
numbering can be told apart. A level is identified when the predicted label overlapping its
reference structure most carries its id. Cervical crops cannot be numbered from the sacrum: their
level figures are reported, not hidden.

``--cache DIR`` keeps each case's network output (float32: float16 moved M5's key-point peaks), so a change to the shared post-processing
(bodies, discs, numbering) is rescored in seconds; the time reported for a cached case is the
network's stored time plus the post-processing's. ``--rules`` numbers under other counting rules
than the shipped ones (spine_core.pipeline.mr.CountingRules), to measure each on its own.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np

from benchmarks.fold_models import fold_model_set
from spine_core.metrics.overlap import mask_dice
from spine_core.pipeline import segment
from spine_core.pipeline.api import SegmentOptions
from spine_core.progress import NullProgress
from spine_core.pipeline.mr import RULES, CountingRules, mr_probabilities, mr_structures
from spine_core.pipeline.mr_input import mr_grid, normalise
from spine_core.pipeline.registry import mr_pipeline
from training.mr_data import DISC, load_scan_and_labels, shared_mr_root

PAPERS = {"M4 SSHSNet (MRSpineSeg, 19 structures)": "mean Dice ~0.87-0.90",
          "M5 SCAR-Net (T2, L1-L5 bodies / 5 discs)": "body Dice 0.961, disc Dice 0.951"}


def score(pred: np.ndarray, ref: np.ndarray) -> dict:
    ref_ids = [int(i) for i in np.unique(ref) if i]
    bodies = [i for i in ref_ids if i < DISC]
    discs = [i for i in ref_ids if i >= DISC]
    structures, identified = {}, {}
    for i in ref_ids:
        structures[i] = round(mask_dice(pred == i, ref == i), 4)
        overlap = pred[ref == i]
        overlap = overlap[overlap > 0]
        identified[i] = bool(overlap.size) and int(np.bincount(overlap).argmax()) == i
    out = {"structures": structures, "identified": identified}
    if bodies:
        out["body_dice"] = round(float(np.mean([structures[i] for i in bodies])), 4)
        out["bodies_any_level"] = round(mask_dice((pred > 0) & (pred < DISC), (ref > 0) & (ref < DISC)), 4)
    if discs:
        out["disc_dice"] = round(float(np.mean([structures[i] for i in discs])), 4)
        out["discs_any_level"] = round(mask_dice(pred >= DISC, ref >= DISC), 4)
    out["identification"] = round(float(np.mean(list(identified.values()))), 4) if identified else None
    return out


def judged(pred: np.ndarray, ref: np.ndarray, confidence: dict[int, float]) -> list[tuple[float, bool]]:
    """(confidence, right) of each predicted structure of a kind the reference labels (bodies, discs):
    right when the reference label it covers most carries its id; one over no reference is not judged."""
    kinds = {"body"} if np.any((ref > 0) & (ref < DISC)) else set()
    kinds |= {"disc"} if np.any(ref >= DISC) else set()
    out = []
    for vid, conf in confidence.items():
        if ("disc" if vid >= DISC else "body") not in kinds:
            continue
        under = ref[pred == vid]
        under = under[under > 0]
        if under.size:
            out.append((round(float(conf), 4), int(np.bincount(under).argmax()) == vid))
    return out


def calibration(rows: list[dict]) -> dict:
    """Right / shown per confidence bin, pooled over the cases."""
    pairs = [p for r in rows for p in r.get("judged", [])]
    bins = {">= 0.9": (0.9, 2.0), "0.5-0.9": (0.5, 0.9), "< 0.5": (-1.0, 0.5)}
    return {name: {"shown": sum(lo <= c < hi for c, _ in pairs), "right": sum(lo <= c < hi and ok for c, ok in pairs)}
            for name, (lo, hi) in bins.items()}


def wilson_lower(right: int, shown: int, z: float = 1.96) -> float | None:
    """The 95 % Wilson score lower bound of the share right."""
    if not shown:
        return None
    p = right / shown
    centre = p + z * z / (2 * shown)
    spread = z * np.sqrt(p * (1 - p) / shown + z * z / (4 * shown * shown))
    return round(float((centre - spread) / (1 + z * z / shown)), 3)


def trust_by_anchor(rows: list[dict], caps: Mapping[str, float]) -> dict:
    """Per anchor: structures and cases judged, right, and the Wilson lower bounds the method's
    ``level_trust`` caps are set from (per structure for the sacrum, per case where one wrong guess
    shifts every level)."""
    out = {}
    for anchor in sorted({r["anchor"] for r in rows}):
        mine = [r for r in rows if r["anchor"] == anchor and r.get("judged")]
        pairs = [ok for r in mine for _, ok in r["judged"]]
        whole = [all(ok for _, ok in r["judged"]) for r in mine]
        out[anchor] = {"structures": len(pairs), "right": int(sum(pairs)), "cases": len(whole),
                       "cases_all_right": int(sum(whole)), "lower_by_structure": wilson_lower(sum(pairs), len(pairs)),
                       "lower_by_case": wilson_lower(sum(whole), len(whole)), "cap": caps[anchor]}
    return out


def pooled(rows: list[dict]) -> dict:
    def mean(key):
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(values)), 4) if values else None

    levels = [v for r in rows for v in r["identified"].values()]
    return {"cases": len(rows), "body_dice": mean("body_dice"), "bodies_any_level": mean("bodies_any_level"),
            "disc_dice": mean("disc_dice"), "discs_any_level": mean("discs_any_level"),
            "levels_identified": round(float(np.mean(levels)), 4) if levels else None,
            "seconds_median": round(float(np.median([r["seconds"] for r in rows])), 2)}


def per_structure(rows: list[dict]) -> dict:
    """Per reference structure (T11 ... L5, the discs, C5 ...), over the held-out cases that hold it:
    its named Dice and how often its level was identified, in label order."""
    from spine_core.labels import label_name

    # a report read back from JSON has its ids as strings
    dice = [{int(i): v for i, v in r["structures"].items()} for r in rows]
    right = [{int(i): v for i, v in r["identified"].items()} for r in rows]
    out = {}
    for i in sorted({i for case in dice for i in case}):
        held = [(d[i], ok[i]) for d, ok in zip(dice, right) if i in d]
        out[label_name(i)] = {"cases": len(held), "dice": round(float(np.mean([d for d, _ in held])), 4),
                              "identified": round(float(np.mean([ok for _, ok in held])), 4)}
    return out


def picture(scan, labels, path: Path, title: str) -> None:
    from spine_core.pictures import save_sagittal_coronal

    # the pictures use a CT bone window: put the MR's own percentile range into it
    shown = replace(scan, array=(normalise(scan.array) * 1500.0 - 250.0).astype(np.float32))
    save_sagittal_coronal(shown, labels, path, title)


def segment_cached(scan, options: SegmentOptions, models, cache: Path | None, rules: CountingRules = RULES):
    """The MR result of ``scan`` and its seconds, the network's output read from ``cache`` when there;
    numbered under the counting ``rules``."""
    if cache is None and rules == RULES:
        began = time.perf_counter()
        result = segment(scan, options, models=models)
        return result, time.perf_counter() - began
    if cache is not None and cache.with_suffix(".npy").exists():
        prob = np.load(cache.with_suffix(".npy")).astype(np.float32)
        network_s = json.loads(cache.with_suffix(".json").read_text())["seconds"]
        grid = mr_grid(scan)
    else:
        began = time.perf_counter()
        prob, grid, _ = mr_probabilities(scan, options, NullProgress(), models)
        network_s = time.perf_counter() - began
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache.with_suffix(".npy"), prob)
            cache.with_suffix(".json").write_text(json.dumps({"seconds": network_s}))
    began = time.perf_counter()
    result = mr_structures(scan, prob, grid, rules=rules, trust=mr_pipeline(options.pipeline).level_trust)
    return result, network_s + time.perf_counter() - began


def check_cache(folder: Path, models_dir: Path) -> None:
    """Tie a fold's cache folder to the models whose output it holds: the cache is keyed by case, so a
    retrained fold scored against an old cache would silently report the old model."""
    import hashlib

    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(models_dir.glob("*.onnx"))}
    key = folder / "models.json"
    if key.exists():
        if json.loads(key.read_text()) != digests:
            raise SystemExit(f"{folder} holds the output of other models than {models_dir}; "
                             "pass another --cache folder (or delete this one)")
        return
    folder.mkdir(parents=True, exist_ok=True)
    key.write_text(json.dumps(digests, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="runs/mr_cv", help="the folder of python -m training.mr_cv")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--pictures", help="folder for sagittal / coronal pictures of a few cases")
    parser.add_argument("--picture-cases", nargs="*", default=["VB2_05", "VB3_03", "IVD_20"])
    parser.add_argument("--pipeline", choices=["mr-scar", "mr-sshs"], default="mr-scar",
                        help="the MR method the folds were trained for (python -m training.mr_cv --method)")
    parser.add_argument("--cache", help="keep the networks' output per case here and reuse it")
    parser.add_argument("--rules", default=RULES.named(),
                        help="counting rules past missed and merged bodies: none, all, or names joined by "
                             f"commas ({CountingRules.parse('all').named()}); default: as shipped")
    args = parser.parse_args(argv)
    if args.json:       # made before the run, so a long run cannot end on a missing folder
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    try:
        rules = CountingRules.parse(args.rules)
    except ValueError as error:
        parser.error(str(error))
    folds = json.loads((Path(args.folds) / "folds.json").read_text())
    root = shared_mr_root()
    rows = []
    for fold, cases in folds.items():
        models_dir = Path(args.folds) / fold / "models"
        if not models_dir.is_dir():
            print(f"{fold}: not trained, skipped")
            continue
        models = fold_model_set(models_dir)
        if args.cache:
            check_cache(Path(args.cache) / args.pipeline / fold, models_dir)
        for case in cases:
            scan, ref = load_scan_and_labels(root, case)
            options = SegmentOptions(device="cpu", modality="MR", pipeline=args.pipeline)
            cache = Path(args.cache) / args.pipeline / fold / case if args.cache else None
            result, seconds = segment_cached(scan, options, models, cache, rules)
            row = {"case": case, "set": case.split("_")[0], "fold": fold, "seconds": round(seconds, 2),
                   "protocol": f"held out ({fold}: trained on the other folds' cases, last checkpoint)",
                   "found": result.labels.ids(), "anchor": result.anchor,
                   **score(result.labels.array, ref.array),
                   "judged": judged(result.labels.array, ref.array, {v.id: v.confidence for v in result.vertebrae})}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("case", "fold", "found", "identification", "seconds")}
                             | {k: row.get(k) for k in ("body_dice", "disc_dice")}), flush=True)
            if args.pictures and case in args.picture_cases:
                suffix = "" if args.pipeline == "mr-scar" else f"_{args.pipeline}"     # M5's names as before
                picture(scan, result.labels, Path(args.pictures) / f"mr_{case}{suffix}.png",
                        f"{case} (held out, {fold}, {args.pipeline})")
    sets = sorted({r["set"] for r in rows})
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}",
              "protocol": "cross-validation by case: each case scored by the fold model that never saw it",
              "pipeline": args.pipeline, "counting_rules": rules.named(),
              "per_set": {s: pooled([r for r in rows if r["set"] == s]) for s in sets},
              "pooled": pooled(rows) if rows else {}, "per_structure": per_structure(rows),
              "calibration": calibration(rows),
              "trust_by_anchor": trust_by_anchor(rows, mr_pipeline(args.pipeline).level_trust), "papers": PAPERS,
              "cases": rows}
    shown = ("per_set", "pooled", "per_structure", "calibration", "trust_by_anchor")
    print(json.dumps({k: report[k] for k in shown}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
