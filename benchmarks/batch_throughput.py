"""Batch throughput: the mixed test batch (tests/e2e/batch_inputs.py: phantoms with variants, real
shared CTs, two series in a folder, a zip, a corrupt file, an empty series, an MR) analysed by
`spineplan batch --fast` with 1 and 2 local workers, each from an empty batch folder.

    PYTHONPATH=. .venv/bin/python -m benchmarks.batch_throughput [--workers 1 2] [--json OUT]

Prints cases per hour, the model load time per worker (and what loading per case would cost),
the median analysis time per case and the peak memory of the largest process.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(workers: int, inputs: Path, out: Path) -> dict:
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.workflows.batch import BatchOptions, run_batch
    from spine_core.workflows.batch_folder import BatchFolder

    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    summary = run_batch(inputs, out, BatchOptions(SegmentOptions(fast=True)), workers=workers)
    wall = time.perf_counter() - began
    done = [e for e in BatchFolder(out).entries() if e["state"] in ("done", "failed", "refused")]
    analysed = [e["seconds"] for e in done if e["state"] == "done"]
    loads = summary.model_load_s
    return {"workers": workers, "cases": summary.cases, "wall_s": round(wall, 1),
            "cases_per_hour": round(summary.cases / wall * 3600.0),
            "median_case_s": round(statistics.median(analysed), 2) if analysed else None,
            "model_load_s_per_worker": loads,
            "model_load_s_if_per_case": round(statistics.mean(loads) * len(analysed), 2) if loads else None,
            "counts": summary.counts,
            "peak_rss_mb_largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0),
            "peak_rss_mb_parent": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    from tests.e2e.batch_inputs import build_inputs

    with tempfile.TemporaryDirectory(prefix="spineplan-batch-bench-") as tmp:
        inputs = build_inputs(Path(tmp) / "in")
        rows = []
        for workers in args.workers:
            row = run(workers, inputs, Path(tmp) / f"out{workers}")
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
