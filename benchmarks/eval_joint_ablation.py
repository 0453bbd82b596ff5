"""The M3 ablation scored as the product runs it: each training run's best checkpoint exported to
ONNX beside the shipped localizer, then the joint pipeline on the held-out real case and phantoms.

    PYTHONPATH=. .venv/bin/python -m benchmarks.eval_joint_ablation runs/joint_cpu_ssm runs/joint_cpu_transformer ... \\
        [--cases verse007 ph-lumbar ...] [--json OUT]

Prints one markdown row per run: mean over cases of binary Dice, mean vertebra Dice, identification,
centroid error, plus the checkpoint's own validation metrics and steps.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.eval_accuracy import evaluate_cases
from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.pipeline.api import JOINT_ID, LOCALIZER_ID

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ["verse007", "ph-lumbar", "ph-thoracolumbar-scoliosis", "ph-cervical", "ph-l6-variant"]


def _mean(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else float("nan")


def score_run(run: Path, cases, work: Path) -> dict:
    from training.export import export_checkpoint
    from training.trainer import load_checkpoint

    models = work / run.name
    models.mkdir(parents=True)
    for suffix in (".onnx", ".json"):
        shutil.copy(ROOT / "resources" / "models" / f"{LOCALIZER_ID}{suffix}", models)
    export_checkpoint(run / "best.pt", models, JOINT_ID)
    # only shipped or registered models run: register it in this benchmark's own site folder
    os.environ[SITE_ENV] = str(work / "site")
    SiteModels().register(models / f"{JOINT_ID}.onnx", models / f"{JOINT_ID}.json")
    ckpt = load_checkpoint(run / "best.pt")
    rows = evaluate_cases(cases, "joint", models)["cases"]
    ok = [r for r in rows if "error" not in r]
    return {"run": run.name, "net": {k: ckpt["net_config"].get(k) for k in ("long_range", "cbam")},
            "best_step": ckpt["step"], "validation": ckpt["metrics"],
            "binary_dice": _mean(ok, "binary_dice"), "mean_dice": _mean(ok, "mean_dice"),
            "identification_rate": _mean(ok, "identification_rate"),
            "centroid_error_mm": _mean(ok, "mean_centroid_error_mm"), "cases": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [score_run(run, args.cases, Path(tmp)) for run in args.runs]
    print("| run | long-range | CBAM | best step | val patch Dice / ID | binary Dice | mean vertebra Dice "
          "| identification | centroid error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        v = r["validation"]
        print(f"| {r['run']} | {r['net']['long_range']} | {'on' if r['net']['cbam'] else 'off'} | {r['best_step']} "
              f"| {v.get('dice', 0):.3f} / {v.get('id_rate', 0):.3f} | {r['binary_dice']:.3f} | {r['mean_dice']:.3f} "
              f"| {100 * r['identification_rate']:.0f} % | {r['centroid_error_mm']:.1f} mm |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
