"""Train the default CT pipeline's networks on a GPU host in one command, to a time budget: the shipped
recipe on all labelled real CTs, and every leave-one-case-out fold (training/loco.py) beside it.

    # here, once (the GPU host has neither the shared data nor SimpleITK):
    python -m training.pack --out .ctpack/real
    # there, through the device tool with carry [".ctpack"]:
    python3 -m training.device_ct --pack .ctpack/real --out runs/device_ct --minutes 6 \
        --set optim.validate_every=200 --set optim.checkpoint_every=200 --bundle $OUT
    # back here: unpack each OUT/ct_<fold>.tar.gz under runs/device_ct, then
    PYTHONPATH=. .venv/bin/python -m benchmarks.eval_real --fold-models runs/device_ct ...

Every network of the recipe is one chain (the segmentation fine-tune resumes its first run, as the
shipped model did); all chains of all folds run at once as processes sharing the GPU, one torch thread
each. A run stops at its share of the budget (the fine-tune's first run at the recipe's share of
steps, 1,245 of 1,992) and its last checkpoint is exported, ONNX + card under the shipped ids, into
OUT/<fold>/models; fold "all" is the shipped recipe (verse007 trains too, no real case chooses a
checkpoint). Phantoms are generated once by a process pool into a shared cache before training.
--bundle writes one .tar.gz per fold (models, metrics, logs): the device returns at most 8 files.
Nothing here runs in the test suite (tests/training/test_device_ct.py checks the plan).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from training.loco import REAL_CASES, RECIPE, train_cases

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training" / "configs"
FOLDS = ("all",) + REAL_CASES
AFTER_MINUTES = 1.5           # each chain's data loading (not in a run's budget), exports and bundling
FIRST_RUN_SHARE = RECIPE[2][4] / RECIPE[3][4]    # the segmentation network's first run: 1,245 of 1,992 steps


def chains() -> dict[str, list[tuple]]:
    """Recipe entries grouped into chains, in recipe order: each chain ends in one export and is named by
    its first run's config (a run that exports nothing feeds the next: the segmentation fine-tune)."""
    grouped: dict[str, list[tuple]] = {}
    pending: list[tuple] = []
    for entry in RECIPE:
        pending.append(entry)
        if entry[2]:
            grouped[Path(pending[0][1]).stem.removesuffix("_cpu")] = pending
            pending = []
    return grouped


def run_config(config_name: str, fold: str, args, minutes: float) -> dict:
    """The recipe config for one run of one fold on this host."""
    from training.config import apply_overrides

    config = json.loads((CONFIGS / config_name).read_text())
    held_out = "" if fold == "all" else fold
    optim = {"max_minutes": minutes, "max_steps": args.max_steps or 10**7, "device": args.device,
             "threads": 1}
    if args.batch_scale != 1:
        optim["batch_size"] = max(1, round(config["optim"]["batch_size"] * args.batch_scale))
    sets = [f"data.train_cases={json.dumps(train_cases(config_name, held_out))}", "data.val_cases=[]",
            f"data.real_pack={json.dumps(str(Path(args.pack).resolve()))}",
            f"data.phantom_cache={json.dumps(str(Path(args.out).resolve() / 'phantom_cache'))}"]
    sets += [f"optim.{k}={json.dumps(v)}" for k, v in optim.items()]
    sets += list(args.set or [])
    if args.max_phantoms is not None:
        data = config["data"]
        sets += [f"data.phantom_train_seeds={json.dumps(data['phantom_train_seeds'][:args.max_phantoms])}",
                 f"data.phantom_val_seeds={json.dumps(data['phantom_val_seeds'][:args.max_phantoms])}"]
    return apply_overrides(config, sets)


def plan(args, minutes: float) -> list[dict]:
    """Every run, per fold and chain: config, output folder, what it resumes, what it exports."""
    runs = []
    for fold in args.folds:
        for network, entries in chains().items():
            for i, (_, config_name, model_id, after, _) in enumerate(entries):
                share = FIRST_RUN_SHARE if len(entries) > 1 and i < len(entries) - 1 else 1.0
                runs.append({"fold": fold, "chain": network, "config_name": config_name,
                             "config": run_config(config_name, fold, args, round(minutes * share, 3)),
                             "dir": str(Path(args.out) / fold / Path(config_name).stem),
                             "after": str(Path(args.out) / fold / Path(after).stem) if after else None,
                             "model_id": model_id, "models": str(Path(args.out) / fold / "models")})
    return runs


def _warm(job: tuple) -> str:
    from training.data import prepared_phantom
    from training.tasks import data_config

    config, seed, partial = job
    prepared_phantom(seed, data_config(config), partial)
    return f"{seed}"


def warm_phantoms(runs: list[dict], workers: int) -> int:
    """Generate every run's phantoms once into the shared cache (same seed, options, grid: one file)."""
    from training.data import _phantom_key, prepared_path
    from training.tasks import data_config

    jobs, seen = [], set()
    for run in runs:
        data = data_config(run["config"])
        for seeds, partial in ((data.phantom_train_seeds, data.phantom_partial_fov), (data.phantom_val_seeds, 0.0)):
            for seed in seeds:
                key = prepared_path(data.phantom_cache, _phantom_key(seed, data, partial), data)
                if key not in seen:
                    seen.add(key)
                    jobs.append((run["config"], seed, partial))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_warm, jobs))
    return len(jobs)


def run_chain(runs: list[dict], command: str) -> None:
    """One chain's runs in order, each exported when it names a shipped id."""
    from training.export import export_checkpoint
    from training.trainer import run_training

    for run in runs:
        run_dir = Path(run["dir"])
        resume = run_dir / "last.pt"
        if not resume.exists():
            resume = Path(run["after"]) / "last.pt" if run["after"] else None
        last = run_training(run["config"], run_dir, resume=resume, command=command, progress_bar=False)
        if run["model_id"]:
            export_checkpoint(last, run["models"], run["model_id"])


def export_left_over(runs: list[dict]) -> list[str]:
    """Export the last periodic checkpoint of a run whose chain was stopped before its own export."""
    from training.export import export_checkpoint

    done = []
    for run in runs:
        last = Path(run["dir"]) / "last.pt"
        if run["model_id"] and last.exists() and not (Path(run["models"]) / f"{run['model_id']}.onnx").exists():
            try:
                export_checkpoint(last, run["models"], run["model_id"])
                done.append(f"{run['fold']}/{run['model_id']}")
            except Exception as exc:  # noqa: BLE001 - the other folds' models still go back
                print(f"could not export {last}: {exc}", flush=True)
    return done


def bundle(out: Path, folds, dest: Path) -> list[Path]:
    """One .tar.gz per fold: its models (ONNX + cards), each run's metrics and the chains' logs."""
    written = []
    dest.mkdir(parents=True, exist_ok=True)
    for fold in folds:
        folder = out / fold
        if not folder.is_dir():
            continue
        path = dest / f"ct_{fold}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for item in sorted(folder.rglob("*")):
                if item.is_file() and (item.parent.name == "models" or item.name in ("metrics.jsonl", "chain.log")):
                    tar.add(item, arcname=str(item.relative_to(out)))
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", required=True, help="real cases on the networks' grids (training.pack)")
    parser.add_argument("--out", default="runs/device_ct")
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS)
    parser.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget of each chain")
    parser.add_argument("--deadline-minutes", type=float, default=9.3,
                        help="the whole command's limit: the budget shrinks to fit after the phantoms")
    parser.add_argument("--batch-scale", type=float, default=1.0, help="batch sizes times this")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--max-steps", type=int, help="cap the steps (smoke runs)")
    parser.add_argument("--max-phantoms", type=int, help="use only the first N phantom seeds (smoke runs)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="one more config setting for every run (JSON value), e.g. optim.validate_every=200")
    parser.add_argument("--bundle", help="folder for one .tar.gz per fold")
    parser.add_argument("--dry-run", action="store_true", help="print the runs only")
    parser.add_argument("--chain", help=argparse.SUPPRESS)     # internal: fold/network of one child process
    args = parser.parse_args(argv)
    began = time.monotonic()
    out = Path(args.out)
    if args.chain:
        fold, network = args.chain.split("/")
        saved = json.loads((out / "plan.json").read_text())
        run_chain([r for r in saved["runs"] if r["fold"] == fold and r["chain"] == network], saved["command"])
        return 0
    if args.dry_run:
        for run in plan(args, args.minutes):
            print(run["fold"], run["chain"], run["config_name"], run["config"]["optim"]["max_minutes"],
                  json.dumps(run["config"]["data"]["train_cases"]), run["model_id"] or "-")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    phantoms = warm_phantoms(plan(args, args.minutes), args.workers)
    warm_min = (time.monotonic() - began) / 60
    minutes = max(0.2, min(args.minutes, args.deadline_minutes - warm_min - AFTER_MINUTES))
    runs = plan(args, minutes)
    command = " ".join(["python -m training.device_ct"] + list(sys.argv[1:] if argv is None else argv))
    (out / "plan.json").write_text(json.dumps({"command": command, "runs": runs}, indent=1))
    print(f"{phantoms} phantoms ready in {warm_min:.1f} min; {len(runs)} runs, {minutes:.2f} min a chain", flush=True)
    children = []
    for fold in args.folds:
        for network in chains():
            (out / fold / network).mkdir(parents=True, exist_ok=True)
            log = open(out / fold / network / "chain.log", "w", encoding="utf-8")
            argv_child = [sys.executable, "-m", "training.device_ct", "--pack", args.pack, "--out", args.out,
                          "--chain", f"{fold}/{network}"]
            children.append((fold, network, subprocess.Popen(argv_child, cwd=ROOT, stdout=log,
                                                             stderr=subprocess.STDOUT), log))
    limit = began + 60 * (args.deadline_minutes - 0.4)
    results = {}
    for fold, network, child, log in children:
        try:
            code = child.wait(timeout=max(1.0, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            code = "killed at the deadline"
        log.close()
        results[f"{fold}/{network}"] = code
    salvaged = export_left_over(runs)
    summary = {"minutes_per_chain": minutes, "phantoms": phantoms, "results": results, "salvaged": salvaged,
               "seconds": round(time.monotonic() - began, 1)}
    (out / "device_ct.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)
    if args.bundle:
        Path(args.bundle).mkdir(parents=True, exist_ok=True)
        (Path(args.bundle) / "device_ct.json").write_text(json.dumps(summary, indent=1))
        for path in bundle(out, args.folds, Path(args.bundle)):
            print(f"Wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0 if all(c == 0 for c in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
