"""M4 with and without skipping the stage-2 windows where stage 1 found nothing: seconds and agreement.

    PYTHONPATH=. .venv/bin/python -m benchmarks.m4_windows --folds runs/mr_cv_sshs fold0:VB2_05 fold1:VB3_11 ...

Each case runs twice with its cross-validation fold's models (python -m training.mr_cv --method sshs):
every window (stage-2 threshold 0) and as shipped (``spine_core.pipeline.mr_sshs.NOTHING_BELOW``); the
share of voxels given the same label and the levels identified by each are printed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.eval_mr import score
from benchmarks.fold_models import fold_model_set
from spine_core.pipeline import mr_sshs, segment
from spine_core.pipeline.api import SegmentOptions
from training.mr_data import load_scan_and_labels, shared_mr_root


def timed(scan, models, threshold: float):
    shipped = mr_sshs.NOTHING_BELOW
    mr_sshs.NOTHING_BELOW = threshold
    try:
        began = time.perf_counter()
        result = segment(scan, SegmentOptions(device="cpu", modality="MR", pipeline="mr-sshs"), models=models)
        return result, time.perf_counter() - began
    finally:
        mr_sshs.NOTHING_BELOW = shipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="runs/mr_cv_sshs")
    parser.add_argument("cases", nargs="+", help="FOLD:CASE, e.g. fold0:VB2_05")
    args = parser.parse_args(argv)
    for item in args.cases:
        fold, case = item.split(":")
        scan, ref = load_scan_and_labels(shared_mr_root(), case)
        models = fold_model_set(Path(args.folds) / fold / "models")
        every, every_s = timed(scan, models, 0.0)
        skipped, skipped_s = timed(scan, models, mr_sshs.NOTHING_BELOW)
        print(json.dumps({"case": case, "fold": fold, "every_window_s": round(every_s, 1),
                          "skipping_s": round(skipped_s, 1),
                          "same_label": round(float(np.mean(every.labels.array == skipped.labels.array)), 6),
                          "levels_every": score(every.labels.array, ref.array)["identification"],
                          "levels_skipping": score(skipped.labels.array, ref.array)["identification"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
