"""Batch analysis of whole folders: every study below a folder, one case per series, each analysed
exactly as `spineplan segment` analyses it (spine_core.workflows.analysis), in worker processes that
load the models once, locally or on a Dask distributed cluster; a journal makes reruns resume.

Finding the studies: spine_core.workflows.batch_discovery; the batch folder's layout and journal:
spine_core.workflows.batch_folder; the report: batch_report.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.labels import is_disc
from spine_core.progress import NullProgress
from spine_core.review import CASE_FAILED, CASE_REFUSED
from spine_core.workflows.batch_discovery import Study, discover, load_study
from spine_core.workflows.batch_folder import FINISHED, BatchFolder
from spine_core.workflows.crash import write_crash_report

log = logging.getLogger("spineplan.batch")


@dataclass(frozen=True)
class BatchOptions:
    segment: object                   # SegmentOptions (pipeline, device, models_dir, fast)
    threads: int | None = None        # onnxruntime threads per worker (default: cores / workers)
    retry_failed: bool = False


@dataclass
class BatchSummary:
    cases: int = 0
    ran: int = 0
    skipped: int = 0                  # finished in an earlier run
    counts: dict = field(default_factory=dict)     # QA status -> cases (this run and earlier)
    seconds: float = 0.0
    model_load_s: list = field(default_factory=list)   # one per worker process


# -- one case, in a worker -----------------------------------------------------------------------
_WORKER: dict = {}
_WORKER_LOCK = threading.Lock()


def _worker_segment(options: BatchOptions):
    """The pipeline's segment function with this process' models bound, loaded on first use and
    kept for every later case (a site pipeline without a ``models`` argument runs as it is)."""
    from spine_core.workflows.analysis import find_segment

    segment_options = options.segment
    key = (str(segment_options.models_dir), segment_options.device, options.threads, segment_options.pipeline,
           os.environ.get("SPINEPLAN_PIPELINE", ""))
    with _WORKER_LOCK:
        if _WORKER.get("key") != key:
            segment, why = find_segment()
            if segment is None:
                raise SpineError(f"Analysis is unavailable: {why}.")
            began = time.perf_counter()
            if "models" in inspect.signature(segment).parameters:
                from spine_core.pipeline.models import ModelSet
                from spine_core.pipeline.pipelines import required_models

                models = ModelSet(segment_options.models_dir, segment_options.device, options.threads)
                models.require(*required_models(segment_options))
                # optional models (the thick-slice detector) load too where installed, so no case pays for them
                for model_id in required_models(segment_options, optional=True):
                    if models.has(model_id):
                        models.get(model_id)
                segment = partial(segment, models=models)
            _WORKER.update(key=key, segment=segment, load_s=round(time.perf_counter() - began, 3),
                           pid=os.getpid(), reported=False)
        first = not _WORKER["reported"]
        _WORKER["reported"] = True
        return _WORKER["segment"], (_WORKER["load_s"] if first else None)


def levels_text(names: list[str]) -> str:
    """'C1-C2, C4-T4, sacrum' from vertebra names in cranio-caudal order (L6 / T13 may be skipped)."""
    from spine_core.labels import CRANIOCAUDAL, L6, NAME_TO_ID, T13

    def adjacent(a: str, b: str) -> bool:
        if a not in NAME_TO_ID or b not in NAME_TO_ID:
            return False
        i, j = CRANIOCAUDAL.index(NAME_TO_ID[a]), CRANIOCAUDAL.index(NAME_TO_ID[b])
        return j > i and all(v in (L6, T13) for v in CRANIOCAUDAL[i + 1:j])

    runs: list[list[str]] = []
    for name in names:
        if runs and adjacent(runs[-1][-1], name):
            runs[-1].append(name)
        else:
            runs.append([name])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def run_case(study: Study, out_root: str, options: BatchOptions) -> dict:
    """Analyse one case into OUT/cases/<id> (atomically) and its thumbnail; returns the journal entry
    of its outcome. Never raises: a bad input is "refused", anything else "failed"."""
    from spine_core.workflows.analysis import analyse_to_folder

    folder = BatchFolder(out_root)
    began = time.perf_counter()
    outcome: dict = {"worker": f"{os.uname().nodename}:{os.getpid()}"}
    try:
        volume = load_study(study)
        segment, load_s = _worker_segment(options)
        if load_s is not None:
            outcome["model_load_s"] = load_s
        result, _, case = analyse_to_folder(volume, folder.case_dir(study.case_id), options.segment,
                                            NullProgress(), segment, overwrite=True)
        names = [v.name for v in result.vertebrae]
        outcome.update(state="done", status=case.status, flags=list(case.flags), levels=levels_text(names),
                       n_vertebrae=sum(not is_disc(v.id) for v in result.vertebrae))
        try:
            from spine_core.pictures import save_sagittal_thumbnail

            save_sagittal_thumbnail(volume, result.labels, folder.thumbnail(study.case_id))
        except Exception as exc:  # noqa: BLE001 - a missing picture must not fail an analysed case
            log.warning("no thumbnail for %s: %s", study.case_id, exc)
    except SpineError as exc:
        outcome.update(state="refused", status="failed", reason=str(exc), flags=[f"{CASE_REFUSED}: {exc}"])
    except Exception as exc:  # noqa: BLE001 - one case's failure is a finding, never the batch's end
        reason = f"{type(exc).__name__}: {exc}"
        outcome.update(state="failed", status="failed", reason=reason, flags=[f"{CASE_FAILED}: {reason}"])
        with contextlib.suppress(OSError):
            write_crash_report(exc, folder.root / "failures", f"{study.case_id}.log")
    outcome["seconds"] = round(time.perf_counter() - began, 2)
    return outcome


# -- the runner ----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: a pool worker gets SIGKILL when the batch process dies (kill -9 included), so no
    orphan goes on writing into the batch folder."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _init_pool_worker(options: BatchOptions) -> None:
    _die_with_parent()
    logging.getLogger().setLevel(logging.WARNING)


@contextlib.contextmanager
def _batch_lock(folder: BatchFolder):
    import fcntl

    folder.root.mkdir(parents=True, exist_ok=True)
    with open(folder.root / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SpineError(f"Another batch run is writing to '{folder.root}'. Wait for it to finish, "
                             "or choose another output folder.") from None
        yield


def _clean_stale(folder: BatchFolder) -> None:
    """Staging folders and temporary files a killed run left behind (under the lock: none is live)."""
    for sub in ("cases", "thumbnails", "reviews"):
        base = folder.root / sub
        if not base.is_dir():
            continue
        for path in base.iterdir():
            if path.name.startswith(".") and (path.name.endswith((".partial", ".old")) or path.is_file()):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _check_output(out: Path, input_root: Path) -> None:
    if out == input_root or input_root in out.parents:
        raise SpineError("Choose an output folder outside the input folder (results would be found as studies).")
    if out.exists() and not out.is_dir():
        raise SpineError(f"'{out}' is a file; choose a folder for the batch results.")
    if out.is_dir() and any(p.name != ".lock" for p in out.iterdir()) and not BatchFolder(out).is_batch():
        raise SpineError(f"'{out}' holds other files and is not a SpinePlan batch folder; choose a new or "
                         "empty folder, or the folder of the batch you want to resume.")


def to_run(studies: list[Study], folder: BatchFolder, retry_failed: bool = False) -> list[Study]:
    """The studies a run must (re)do: never finished, or done but its result folder gone."""
    records = folder.records()
    todo = []
    for study in studies:
        record = records.get(study.case_id)
        if record is None or record.state not in FINISHED:
            todo.append(study)
        elif record.state == "done" and not (folder.case_dir(study.case_id) / "labels.nii.gz").exists():
            todo.append(study)
        elif record.state in ("failed", "refused") and retry_failed:
            todo.append(study)
    return todo


def run_batch(input_root, out, options: BatchOptions, workers: int = 1, dask_address: str | None = None,
              on_case=None, on_start=None) -> BatchSummary:
    """Analyse every study below ``input_root`` into the batch folder ``out``, resuming what an
    earlier run of it left undone. ``on_start(studies_to_run, total)`` and ``on_case(study, entry)``
    report progress (the CLI draws a bar)."""
    input_root = Path(input_root).expanduser().resolve()
    if not input_root.is_dir():
        raise SpineError(f"'{input_root}' is not a folder. Give the folder that holds the studies.")
    folder = BatchFolder(out)
    _check_output(folder.root, input_root)
    began = time.perf_counter()
    with _batch_lock(folder):
        _clean_stale(folder)
        studies = discover(input_root)
        if not studies:
            raise SpineError(f"No studies were found below '{input_root}' (DICOM series, zips, NIfTI, NRRD or "
                             "MHA files). Check the folder.")
        known = folder.records()
        for study in studies:
            if study.case_id not in known:
                folder.append(study.case_id, "queued", **study.journal_fields())
        todo = to_run(studies, folder, options.retry_failed)
        for study in todo:
            if study.case_id in known:
                folder.append(study.case_id, "queued", **study.journal_fields())
        summary = BatchSummary(cases=len(studies), ran=len(todo), skipped=len(studies) - len(todo))
        if on_start:
            on_start(todo, len(studies))

        def finished(study: Study, entry: dict) -> None:
            entry = dict(entry)
            state = entry.pop("state")
            if "model_load_s" in entry:
                summary.model_load_s.append(entry["model_load_s"])
            folder.append(study.case_id, state, **study.journal_fields(), **entry)
            if on_case:
                on_case(study, {"state": state, **entry})

        if todo:
            threads = options.threads
            if threads is None and not dask_address:
                threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
            options = replace(options, threads=threads)
            if dask_address:
                _run_dask(todo, folder, options, dask_address, finished)
            else:
                _run_pool(todo, folder, options, workers, finished)
        summary.seconds = round(time.perf_counter() - began, 1)
        counts: dict[str, int] = {}
        for record in folder.records().values():
            if record.case_id in {s.case_id for s in studies}:
                counts[record.status or record.state] = counts.get(record.status or record.state, 0) + 1
        summary.counts = counts
        return summary


def _run_pool(todo: list[Study], folder: BatchFolder, options: BatchOptions, workers: int, finished) -> None:
    """A local process pool. A worker that dies (out of memory, a crash in a native library) breaks
    the pool: the cases it held are rerun one at a time in a fresh pool, so the one that kills its
    worker is found and failed, and the others are not blamed."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending, suspects = list(todo), []
    context = multiprocessing.get_context("spawn")
    while pending or suspects:
        alone = bool(suspects)
        queue = suspects if alone else pending
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context,
                                 initializer=_init_pool_worker, initargs=(options,)) as pool:
            running: dict = {}
            broken = False
            while (queue or running) and not broken:
                while queue and len(running) < (1 if alone else max(1, workers)):
                    study = queue.pop(0)
                    folder.append(study.case_id, "running", **study.journal_fields())
                    running[pool.submit(run_case, study, str(folder.root), options)] = study
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    study = running.pop(future)
                    try:
                        finished(study, future.result())
                    except BrokenProcessPool:
                        broken = True
                        if alone:
                            _worker_died(study, finished)
                        else:
                            suspects.append(study)
            if broken:
                suspects.extend(running.values())
                pool.shutdown(wait=False, cancel_futures=True)


def _worker_died(study: Study, finished) -> None:
    reason = "the worker process died while analysing it (out of memory, or a crash)"
    finished(study, {"state": "failed", "status": "failed", "reason": reason,
                     "flags": [f"{CASE_FAILED}: {reason}"]})


def _run_dask(todo: list[Study], folder: BatchFolder, options: BatchOptions, address: str, finished) -> None:
    """One task per case on an existing Dask distributed scheduler; each worker process keeps its
    models between cases (the module-level cache in _worker_segment)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SpineError("--dask needs the 'distributed' package; reinstall SpinePlan.") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise SpineError(f"Could not reach the Dask scheduler at {address} ({exc}). Check the address and "
                         "that the scheduler is running.") from None
    with client:
        futures = {}
        for study in todo:
            folder.append(study.case_id, "running", **study.journal_fields())
            future = client.submit(run_case, study, str(folder.root), options, pure=False,
                                   key=f"spineplan-{study.case_id}-{os.getpid()}-{time.time_ns()}")
            futures[future] = study
        for future in as_completed(futures):
            study = futures[future]
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails the case, not the batch
                reason = f"the Dask worker failed: {type(exc).__name__}: {exc}"
                entry = {"state": "failed", "status": "failed", "reason": reason,
                         "flags": [f"{CASE_FAILED}: {reason}"]}
            finished(study, entry)
