"""Leave-one-real-case-out training of the default (per-vertebra) pipeline's networks, so every
labelled real CT can be scored by models that never saw it (benchmarks/eval_real.py --fold-models).

    python -m training.loco --out runs/loco [--cases verse006 ...] [--minutes 3 | --scale 0.8 | --shipped-steps]
                            [--threads N] [--parallel 4] [--max-steps N] [--device auto]

For each held-out case, every network of the shipped recipe (training/train_cpu.sh: localizer,
detector2d, vertebra_seg + its fine-tune, labeler, the thick-slice detector) is trained from scratch on the other real cases
and the phantoms, validated on phantoms only (``data.val_cases = []``: no real case chooses a
checkpoint) and the *last* checkpoint is exported as ONNX + card into OUT/<case>/models under the
shipped ids. The cards record the cases each model saw, which is what eval_real reads to state the
protocol per case. What a fold cannot undo: the phantoms' tissue values were calibrated on verse006,
verse007 and tptbox_lumbar (docs/PHANTOMS.md), so those three stay "shaped by phantom calibration".

Folds run as parallel processes (``--parallel``; one GPU serves them all). A run whose model is
exported is skipped; a run with a last.pt resumes from it, so an interrupted run continues. A fold
takes ~1 h of the 2-core CPU and run folders do not outlive a session, so each network's exported model
is also kept in ``--keep`` (benchmarks/folds/<case>/models, committed: ~5.6 MB a fold) and copied
back before a fold starts: a fold finished in one session is never retrained, one stopped between its
networks resumes at the next network (within a network, from its last.pt where it still exists).
Nothing here runs in the test suite (tests/training/test_loco.py checks the plan with --dry-run).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_CASES = ("verse006", "verse007", "tptbox_lumbar", "ts_dicom")
# (network, config, shipped model id, resume-from step, steps the shipped model trained): the shipped
# recipe, in order. The segmentation network's first run is 1,245 steps (the share, 25 of 40 minutes, that
# the first shipped model's time budget gave it) and its fine-tune goes on to 1,992 steps in all. A fine-tune
# twice as long (2,739) gave fuller masks but lost the names on all four folds and on the phantoms, so it was
# reverted (docs/BENCHMARKS.md "Does the 2,739-step fine-tune stay in the recipe?").
RECIPE = (("localizer", "localizer_cpu.json", "ct-spine-localizer", None, 1350),
          ("detector2d", "detector2d_cpu.json", "ct-vertebra-detector", None, 2300),
          ("vertebra_seg", "vertebra_seg_cpu.json", None, None, 1245),
          ("vertebra_seg", "vertebra_seg_cpu_ft.json", "ct-vertebra-seg", "vertebra_seg_cpu.json", 1992),
          ("labeler", "labeler_cpu.json", "ct-vertebra-labeler", None, 2000),
          # last, so folds kept before it existed resume with it alone
          ("detector2d", "detector2d_thick_cpu.json", "ct-vertebra-detector-thick", None, 2300))


def train_cases(config: str, held_out: str) -> list[str]:
    """The config's real training cases without ``held_out``, plus the former validation case with
    the same weight (the shipped configs repeat real cases to oversample them)."""
    data = json.loads((ROOT / "training" / "configs" / config).read_text())["data"]
    cases = [c for c in data.get("train_cases", []) if c != held_out]
    weight = max((cases.count(c) for c in cases), default=1)
    for former in data.get("val_cases", []):
        if former != held_out and former in REAL_CASES:
            cases += [former] * weight
    return cases


def budget_minutes(config: str, minutes: float | None, scale: float) -> float:
    """A fixed budget per run, or the shipped recipe's own budget scaled (a CPU fold keeps the
    recipe's proportions between networks); 0: no time limit."""
    if minutes is not None:
        return minutes
    optim = json.loads((ROOT / "training" / "configs" / config).read_text())["optim"]
    return round(float(optim["max_minutes"]) * scale, 2)


def fold_commands(case: str, out: Path, minutes: float | None, device: str, max_steps: int | None,
                  python: str = sys.executable, scale: float = 1.0, threads: int = 0,
                  shipped_steps: bool = False) -> list[list[str]]:
    """The commands that train and export one fold's models (held out: ``case``). ``shipped_steps``:
    each run trains exactly as many steps as the shipped model did, however long that takes (a
    shared or slower machine then changes only the time, not the model)."""
    fold = out / case
    commands = []
    for network, config, model_id, after, steps in RECIPE:
        run_dir = fold / Path(config).stem
        sets = [f"data.train_cases={json.dumps(train_cases(config, case))}", "data.val_cases=[]",
                f"optim.max_minutes={0 if shipped_steps else budget_minutes(config, minutes, scale)}",
                f"optim.device={json.dumps(device)}"]
        if shipped_steps:
            sets.append(f"optim.max_steps={steps}")
        elif max_steps:
            sets.append(f"optim.max_steps={max_steps}")
        if threads:
            sets.append(f"optim.threads={threads}")
        command = [python, "-m", "app", "train", network, "--config", str(ROOT / "training" / "configs" / config),
                   "--out", str(run_dir)]
        for s in sets:
            command += ["--set", s]
        if (run_dir / "last.pt").exists():
            command += ["--resume", str(run_dir / "last.pt")]
        elif after:
            command += ["--resume", str(fold / Path(after).stem / "last.pt")]
        commands.append(command)
        if model_id:
            commands.append([python, "-m", "app", "export-onnx", str(run_dir / "last.pt"),
                             "--out", str(fold / "models"), "--id", model_id])
    return commands


def _exported(command: list[str]) -> bool:
    if "export-onnx" not in command:
        return False
    folder, model_id = Path(command[command.index("--out") + 1]), command[command.index("--id") + 1]
    return (folder / f"{model_id}.onnx").exists() and (folder / f"{model_id}.json").exists()


def _done(commands: list[list[str]], n: int) -> bool:
    """Whether command ``n`` can be skipped: the first model exported at or after it exists (a
    training run feeds the next export: the first segmentation run feeds its fine-tune's)."""
    later = [c for c in commands[n:] if "export-onnx" in c]
    return bool(later) and _exported(later[0])


KEEP = ROOT / "benchmarks" / "folds"


def _copy_models(source: Path, target: Path) -> None:
    """Every exported model (ONNX + card) in ``source`` that ``target`` lacks, card last: a model
    counts as exported only with its card (``_exported``), so a copy cut short is redone."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for card in sorted(source.glob("*.json")):
        onnx = card.with_suffix(".onnx")
        if onnx.exists() and not (target / card.name).exists():
            shutil.copy2(onnx, target / onnx.name)
            shutil.copy2(card, target / card.name)


def run_fold(case: str, out: Path, minutes: float | None, device: str, max_steps: int | None,
             scale: float = 1.0, threads: int = 0, shipped_steps: bool = False, keep: Path | None = None) -> dict:
    log_path = out / case / "loco.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if keep is not None:
        _copy_models(keep / case / "models", out / case / "models")
    began = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        commands = fold_commands(case, out, minutes, device, max_steps, scale=scale, threads=threads,
                                 shipped_steps=shipped_steps)
        for n, command in enumerate(commands):
            # a run whose model is already exported is done, even where its checkpoints are gone
            # (a fold's models are kept, its run folders are not)
            if _done(commands, n):
                continue
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                return {"case": case, "ok": False, "failed": " ".join(command[3:5]),
                        "seconds": round(time.perf_counter() - began, 1), "log": str(log_path)}
            if keep is not None and "export-onnx" in command:
                _copy_models(out / case / "models", keep / case / "models")
    return {"case": case, "ok": True, "seconds": round(time.perf_counter() - began, 1),
            "models": str(out / case / "models")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/loco")
    parser.add_argument("--cases", nargs="+", default=list(REAL_CASES), choices=REAL_CASES)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="the same wall-clock budget for every training run")
    budget.add_argument("--scale", type=float, default=1.0,
                        help="each run gets its shipped config's budget times this (default 1)")
    budget.add_argument("--shipped-steps", action="store_true",
                        help="each run trains as many steps as the shipped model did, without a time limit")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    parser.add_argument("--max-steps", type=int, help="cap the steps (smoke runs)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=1, help="folds trained at once")
    parser.add_argument("--keep", default=str(KEEP.relative_to(ROOT)),
                        help="where each exported model is kept and taken back from (default %(default)s; "
                             "'' keeps nothing)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    keep = Path(args.keep).resolve() if args.keep else None
    if args.dry_run:
        for case in args.cases:
            for command in fold_commands(case, out, args.minutes, args.device, args.max_steps,
                                         scale=args.scale, threads=args.threads, shipped_steps=args.shipped_steps):
                print(" ".join(command[1:]))
        return 0
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        results = list(pool.map(lambda c: run_fold(c, out, args.minutes, args.device, args.max_steps,
                                                   scale=args.scale, threads=args.threads,
                                                   shipped_steps=args.shipped_steps, keep=keep), args.cases))
    for result in results:
        print(json.dumps(result))
    (out / "loco.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
