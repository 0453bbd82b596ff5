"""`spineplan batch INPUT_FOLDER -o OUT_FOLDER`: every study below a folder, analysed as `segment`
analyses one, with a journal (reruns resume), QA flags per case and a report for the morning.

The work itself: spine_core.workflows.batch (discovery, workers, journal) and batch_report.
"""
from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path


class _BatchBar:
    """Whole-batch progress on the terminal: cases done / failed / left, rate and time left."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.done = self.failed = 0
        self.began = time.perf_counter()

    def start(self, todo, total: int) -> None:
        from tqdm import tqdm

        print(f"{total} studies found; {len(todo)} to analyse ({total - len(todo)} finished in an earlier run).",
              flush=True)
        self.bar = tqdm(total=len(todo), file=sys.stderr, unit="case", disable=not self.enabled or not todo,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {elapsed}<{remaining} {postfix}")
        self._postfix(len(todo))

    def _postfix(self, left: int) -> None:
        hours = (time.perf_counter() - self.began) / 3600.0
        rate = (self.done + self.failed) / hours if hours > 0 and self.done + self.failed else 0.0
        self.bar.set_postfix_str(f"done {self.done}, failed {self.failed}, left {left}, {rate:.0f} cases/h")

    def case(self, study, entry: dict) -> None:
        if entry["state"] == "done":
            self.done += 1
            what = f"{entry.get('status', '')}: {entry.get('levels') or 'no vertebrae'}"
        else:
            self.failed += 1
            what = f"{entry['state']}: {entry.get('reason', '')}"
        self.bar.write(f"  {study.case_id}  {what}  ({entry.get('seconds', 0):.1f} s)", file=sys.stderr)
        self.bar.update(1)
        self._postfix(self.bar.total - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_batch(args) -> int:
    from app.cmd_segment import _options
    from spine_core.workflows.batch import BatchOptions, run_batch
    from spine_core.workflows.batch_folder import BatchFolder
    from spine_core.workflows.batch_report import write_reports

    options = BatchOptions(segment=_options(args), threads=args.threads, retry_failed=args.retry_failed)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    bar = _BatchBar(enabled=True)
    try:
        summary = run_batch(args.input, args.out, options, workers=args.workers, dask_address=args.dask,
                            on_case=bar.case, on_start=bar.start)
    finally:
        bar.close()
    folder = BatchFolder(args.out)
    from spine_core.plan import app_version

    meta = {"input": str(Path(args.input).expanduser().resolve()), "pipeline": options.segment.pipeline,
            "device": options.segment.device, "workers": args.workers, "dask": args.dask or "",
            "started": started, "finished": datetime.datetime.now().isoformat(timespec="seconds"),
            "spineplan": app_version(), "seconds_this_run": summary.seconds, "cases_this_run": summary.ran,
            "model_load_s": summary.model_load_s}
    paths = write_reports(folder, meta)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
    rate = summary.ran / (summary.seconds / 3600.0) if summary.seconds and summary.ran else 0.0
    print(f"{summary.cases} cases: {counts}. This run analysed {summary.ran} in {summary.seconds:.0f} s"
          + (f" ({rate:.0f} cases/h)." if summary.ran else "."))
    print(f"Report: {paths['report.html']}")
    return 0


def add_batch(sub) -> None:
    from app.cmd_segment import _add_common

    p = sub.add_parser("batch", help="analyse every study below a folder, with a journal, QA flags and a report")
    p.add_argument("input", help="folder holding the studies (DICOM series, zips, NIfTI / NRRD / MHA files)")
    p.add_argument("-o", "--out", required=True,
                   help="batch folder: a case folder per study, journal, report.html (a rerun resumes)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--threads", type=int, help="onnxruntime threads per worker (default: cores / workers)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the cases on this Dask distributed scheduler")
    p.add_argument("--retry-failed", action="store_true", help="also redo cases that failed or were refused")
    p.add_argument("--fast", action="store_true", help="quicker, coarser analysis")
    _add_common(p)
    p.set_defaults(func=cmd_batch)
