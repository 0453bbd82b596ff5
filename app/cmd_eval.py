"""`spineplan eval PRED REF [--json OUT]`: score a vertebra label map against a reference one."""
from __future__ import annotations

import json
import time
from pathlib import Path

from spine_core.atomic import atomic_path


def cmd_eval(args) -> int:
    from spine_core.io import load_labels
    from spine_core.metrics import evaluate, format_report

    pred = load_labels(args.pred)
    ref = load_labels(args.ref)
    started = time.perf_counter()
    report = evaluate(pred, ref)
    elapsed = time.perf_counter() - started
    print(f"Prediction: {args.pred}")
    print(f"Reference:  {args.ref}")
    print()
    print(format_report(report))
    print(f"\nScored in {elapsed:.1f} s.")
    if args.json:
        out = Path(args.json)
        payload = {"prediction": str(args.pred), "reference": str(args.ref), **report.to_dict()}
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"Wrote {out}")
    return 0


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="score a predicted vertebra label map against a reference: Dice, "
                       "surface distances, identification rate, level shift")
    p.add_argument("pred", help="predicted label map (NIfTI, NRRD, MHA or DICOM)")
    p.add_argument("ref", help="reference (ground-truth) label map; PRED is resampled onto its grid")
    p.add_argument("--json", metavar="OUT", help="also write the full report as JSON to OUT")
    p.set_defaults(func=cmd_eval)
