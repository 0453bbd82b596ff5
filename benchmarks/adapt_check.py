"""The site-adaptation check (training.retrain: reference phantoms, scored as `spineplan retrain` scores
them) of a parent and a candidate model folder, outside a retrain run: for re-checking a candidate
after the reference set changed, and for candidates a run refused.

    PYTHONPATH=. .venv/bin/python -m benchmarks.adapt_check --modality mr --parent DIR --candidate DIR

DIR: a folder of exported models (``<id>.onnx`` + ``<id>.json``); the parent folder's model is the
"before", the candidate's the "after", everything else shipped."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.retrain import (MODEL_IDS, Reporter, RetrainOptions, check, model_set, reference_cases,
                              reference_set_name, table_text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=["ct", "mr"], default="mr")
    parser.add_argument("--parent", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)
    modality = args.modality.upper()
    model_id = MODEL_IDS[modality]
    options = RetrainOptions(scans=Path("."), out=Path("."), device="cpu")
    references = reference_cases(options, modality)
    accepted, rows, reason = check({reference_set_name(modality, len(references)): references},
                                   model_set(Path(args.parent), "cpu", model_id=model_id),
                                   model_set(Path(args.candidate), "cpu", model_id=model_id),
                                   options, Reporter(), modality)
    print(table_text(rows))
    print(("not worse: " if accepted else "refused: ") + reason)
    if args.json:
        Path(args.json).write_text(json.dumps({"accepted": accepted, "comparison": rows, "reason": reason}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
