"""Input fuzzing: seeded mutations of a DICOM series, NIfTI, MHA/MHD, NRRD and zip
(benchmarks/fuzz_cases.py) run through `spineplan info` and `spineplan convert` in-process
(app.cli.main) in worker processes, each input under a timeout, and classified.

    .venv/bin/python benchmarks/fuzz_inputs.py --n 10000 --seed 1 [--workers 2] [--timeout 60] [--json OUT]

Outcomes (convert decides; info must not do worse):
  ok             loaded exactly as the mutation implies (unchanged for a harmless one)
  refused        exit 2 with a message, for a damaged input
  warned         loaded with a warning (the geometry or values may differ: the user is told)
  no effect      a damaged field SpinePlan does not use: loaded unchanged
  changed voxels random bytes changed voxels, no warning (not judged: flipped pixel bytes are other pixels)
  changed grid   random bytes changed size or geometry, no warning (not judged: a flipped digit is a number)
  false refusal  exit 2 for a harmless change
  silent wrong   exit 0, no warning, geometry or voxels differ from what the mutation implies
  exit 3 | crash | hang | traceback | exit N   failures of SpinePlan itself
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAILURES = ("exit 3", "crash", "hang", "traceback", "silent wrong", "false refusal", "harness error")


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:                # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - main must never raise; record that it did
            import traceback

            traceback.print_exc(file=err)
            code = f"raised {type(exc).__name__}"
    return code, out.getvalue(), err.getvalue()


def _loaded(path: Path):
    """What convert wrote, read with SimpleITK alone: (affine LPS, array i, j, k)."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return affine, sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def _matches(got, expected) -> bool:
    import numpy as np

    (a, x), (b, y) = got, expected
    return (x.shape == y.shape and np.allclose(a, b, atol=1e-3)
            and np.allclose(x.astype(np.float64), y.astype(np.float64), atol=1e-3))


def classify(case, info, convert, out: Path, reference) -> str:
    codes = (info[0], convert[0])
    text = "".join(info[1:] + convert[1:])
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if 3 in codes:
        return "exit 3"
    odd = [c for c in codes if c not in (0, 2)]
    if odd:
        return f"exit {odd[0]}"
    if convert[0] == 2:
        return "false refusal" if case.expect == "same" else "refused"
    warned = "Warning:" in convert[1]
    got = _loaded(out)
    expected = case.expected if case.expect == "implied" else reference
    if _matches(got, expected):
        return "no effect" if case.expect == "bad" else "ok"
    if warned and case.expect != "same":
        return "warned"
    if case.expect == "random":
        import numpy as np

        same_grid = got[1].shape == reference[1].shape and np.allclose(got[0], reference[0], atol=1e-3)
        return "changed voxels" if same_grid else "changed grid"
    return "silent wrong"


def run_case(index: int, seed: int, bases: dict, root: Path, reference) -> dict:
    from benchmarks.fuzz_cases import make_case

    work = root / f"case{index}"
    started = time.perf_counter()
    try:
        case = make_case(index, seed, bases, work)
    except Exception as exc:  # noqa: BLE001 - a broken mutation is the harness's fault, reported as such
        shutil.rmtree(work, ignore_errors=True)
        return {"index": index, "fmt": "?", "mutation": "?", "expect": "?", "outcome": "harness error",
                "message": f"{type(exc).__name__}: {exc}"}
    out = work / "out.nii.gz"
    info = _run_cli(["info", str(case.path)])
    convert = _run_cli(["convert", str(case.path), str(out)])
    outcome = classify(case, info, convert, out, reference)
    message = (convert[2] or info[2] or convert[1]).strip().splitlines()
    shutil.rmtree(work, ignore_errors=True)
    return {"index": index, "fmt": case.fmt, "mutation": case.mutation, "expect": case.expect, "outcome": outcome,
            "codes": [info[0], convert[0]], "message": (message[-1] if message else "")[:300],
            "seconds": round(time.perf_counter() - started, 3)}


def _worker(conn, seed: int) -> None:
    """A spawned process: writes the base inputs once, then runs the cases it is sent."""
    sys.path.insert(0, str(ROOT))
    root = Path(tempfile.mkdtemp(prefix="spineplan-fuzz-"))
    os.environ["SPINEPLAN_LOG_DIR"] = str(root / "logs")
    # ITK and GDCM print on the C-level stderr; keep the console for the summary.
    sink = os.open(str(root / "native-output.log"), os.O_WRONLY | os.O_CREAT)
    os.dup2(sink, 2)
    from benchmarks.fuzz_cases import reference, write_bases

    bases = write_bases(root / "bases")
    ref = reference()
    conn.send("ready")
    try:
        while (index := conn.recv()) is not None:
            conn.send(run_case(index, seed, bases, root, ref))
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Pool:
    """Worker processes, each with one case at a time; a case past its timeout kills its worker."""

    def __init__(self, workers: int, seed: int):
        self.seed, self.context = seed, mp.get_context("spawn")
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> dict:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(child, self.seed), daemon=True)
        process.start()
        parent.recv()
        return {"process": process, "conn": parent, "index": None, "since": 0.0}

    def _restart(self, slot: dict) -> None:
        slot["process"].kill()
        slot["process"].join()
        slot.update(self._start())

    def run(self, indices, timeout: float, report=None) -> list[dict]:
        pending, results = list(indices)[::-1], []
        while pending or any(s["index"] is not None for s in self.slots):
            for slot in self.slots:
                if slot["index"] is None and pending:
                    slot["index"], slot["since"] = pending.pop(), time.monotonic()
                    slot["conn"].send(slot["index"])
            busy = [s for s in self.slots if s["index"] is not None]
            ready = wait([s["conn"] for s in busy], timeout=1.0)
            for slot in busy:
                result = None
                if slot["conn"] in ready:
                    try:
                        result = slot["conn"].recv()
                    except (EOFError, OSError):
                        result = {"index": slot["index"], "outcome": "crash",
                                  "message": f"worker died (exit {slot['process'].exitcode})"}
                        self._restart(slot)
                elif time.monotonic() - slot["since"] > timeout:
                    result = {"index": slot["index"], "outcome": "hang", "message": f"over {timeout:.0f} s"}
                    self._restart(slot)
                if result is not None:
                    slot["index"] = None
                    results.append(result)
                    if report:
                        report(result)
        return sorted(results, key=lambda r: r["index"])

    def close(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError):
                slot["conn"].send(None)
            slot["process"].join(timeout=10)
            if slot["process"].is_alive():
                slot["process"].kill()


def run_fuzz(n: int, seed: int, workers: int = 2, timeout: float = 60.0, start: int = 0, report=None) -> list[dict]:
    pool = _Pool(max(workers, 1), seed)
    try:
        return pool.run(range(start, start + n), timeout, report)
    finally:
        pool.close()


def summary_table(results: list[dict]) -> str:
    outcomes = Counter(r["outcome"] for r in results)
    formats = sorted({r.get("fmt", "?") for r in results})
    names = sorted(outcomes, key=lambda o: (o in FAILURES, -outcomes[o]))
    lines = [f"{'outcome':15s}{'total':>7s}" + "".join(f"{f:>8s}" for f in formats)]
    for name in names:
        per = Counter(r.get("fmt", "?") for r in results if r["outcome"] == name)
        lines.append(f"{name:15s}{outcomes[name]:7d}" + "".join(f"{per[f]:8d}" for f in formats))
    lines.append(f"{'all':15s}{len(results):7d}" + "".join(
        f"{sum(r.get('fmt', '?') == f for r in results):8d}" for f in formats))
    failures = [r for r in results if r["outcome"] in FAILURES]
    for r in failures[:20]:
        lines.append(f"  #{r['index']} {r.get('fmt', '?')} / {r.get('mutation', '?')}: {r['outcome']}: "
                     f"{r.get('message', '')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="number of mutated inputs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first case index (to resume or split a run)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input (info + convert)")
    parser.add_argument("--json", help="write every case's outcome here")
    args = parser.parse_args(argv)
    started = time.time()
    done = []

    def report(result):
        done.append(result)
        if len(done) % 250 == 0:
            print(f"  {len(done)}/{args.n} inputs, {time.time() - started:.0f} s", flush=True)

    results = run_fuzz(args.n, args.seed, args.workers, args.timeout, args.start, report)
    elapsed = time.time() - started
    print(f"Input fuzzing: {args.n} inputs, seed {args.seed}, {args.workers} workers, {elapsed:.0f} s "
          f"({1000 * elapsed / max(args.n, 1):.0f} ms per input) on {platform.node()} ({platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    print(summary_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "seed": args.seed, "seconds": round(elapsed, 1),
                                               "results": results}, indent=1) + "\n")
    return 1 if any(r["outcome"] in FAILURES for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
