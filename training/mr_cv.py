"""Cross-validation folds by case for the MR networks (M5, or M4 with ``--method sshs``): every shared
MR case is tested by a model that never saw it (training, validation, checkpoint choice: the last
checkpoint is exported).

    python -m training.mr_cv --out runs/mr_cv [--method scar|sshs] [--folds 4] [--minutes 12] [--threads 1]
                             [--only K ...] [--max-steps N] [--dry-run]

M4 trains two stages per fold, each for ``--minutes``: stage 1 (``mr_sshs2d``, CPS; the fold's
training cases only, no extra unlabelled scans) into foldK/stage1, exported as 'mr-sshs-2d'; then
stage 2 (``mr_sshs3d``) on the frozen stage-1 checkpoint into foldK/stage2, exported as 'mr-sshs-3d'.
benchmarks/eval_mr.py scores them with ``--pipeline mr-sshs``.

Cases are dealt round-robin per set (VB2, VB3, IVD, cervical), so each fold's test part mixes the
sets. A fold whose model is exported is skipped; one with a last.pt resumes (its wall-clock budget
continues, it does not restart). benchmarks/eval_mr.py scores the folds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "training" / "configs" / "mr_scar_cpu.json"
MODEL_ID = "mr-spine-seg"
SSHS_CONFIGS = (ROOT / "training" / "configs" / "mr_sshs2d_cpu.json", ROOT / "training" / "configs" / "mr_sshs3d_cpu.json")
SSHS_IDS = ("mr-sshs-2d", "mr-sshs-3d")


def case_set(name: str) -> str:
    return name.split("_")[0]


def folds(names: list[str], k: int) -> list[list[str]]:
    """Test cases of each fold: per set, cases dealt round-robin (continuing where the last set
    stopped, so small sets spread over different folds)."""
    out, n = [[] for _ in range(k)], 0
    for group in sorted({case_set(c) for c in names}):
        for name in sorted(c for c in names if case_set(c) == group):
            out[n % k].append(name)
            n += 1
    return out


def fold_commands(fold: int, test: list[str], names: list[str], out: Path, minutes: float, threads: int,
                  max_steps: int | None, python: str = sys.executable) -> list[list[str]]:
    run = out / f"fold{fold}"
    train = [c for c in names if c not in test]
    export = [python, "-m", "app", "export-onnx", str(run / "last.pt"), "--out", str(run / "models"),
              "--id", MODEL_ID]
    return [_train(python, "mr_scar", CONFIG, run, train, (minutes, threads, max_steps)), export]


def _train(python, model: str, config: Path, run: Path, train: list[str], budget, extra=()) -> list[str]:
    """The training command; ``budget``: (minutes, threads, max steps or None)."""
    minutes, threads, max_steps = budget
    command = [python, "-m", "app", "train", model, "--config", str(config), "--out", str(run),
               "--set", f"data.train_cases={json.dumps(train)}", "--set", "data.val_cases=[]",
               "--set", f"optim.max_minutes={minutes}", "--set", f"optim.threads={threads}", *extra]
    if max_steps:
        command += ["--set", f"optim.max_steps={max_steps}"]
    if (run / "last.pt").exists():
        command += ["--resume", str(run / "last.pt")]
    return command


def sshs_fold_commands(fold: int, test: list[str], names: list[str], out: Path, minutes: float, threads: int,
                       max_steps: int | None, python: str = sys.executable) -> list[list[str]]:
    """M4: stage 1 trained and exported, then stage 2 on the frozen stage-1 checkpoint, exported."""
    run, train = out / f"fold{fold}", [c for c in names if c not in test]
    stage1, stage2 = run / "stage1", run / "stage2"
    budget = (minutes, threads, max_steps)
    commands = [
        _train(python, "mr_sshs2d", SSHS_CONFIGS[0], stage1, train, budget, ("--set", "data.unlabelled_cases=[]")),
        _train(python, "mr_sshs3d", SSHS_CONFIGS[1], stage2, train, budget,
               ("--set", f"task.stage1_checkpoint={stage1 / 'last.pt'}"))]
    exports = [[python, "-m", "app", "export-onnx", str(stage / "last.pt"), "--out", str(run / "models"),
                "--id", model_id] for stage, model_id in ((stage1, SSHS_IDS[0]), (stage2, SSHS_IDS[1]))]
    first = [] if (run / "models" / f"{SSHS_IDS[0]}.onnx").exists() else [commands[0], exports[0]]
    return [*first, commands[1], exports[1]]


def main(argv=None) -> int:
    from training.mr_data import mr_case_names, shared_mr_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/mr_cv")
    parser.add_argument("--method", choices=["scar", "sshs"], default="scar",
                        help="scar: M5 (one network); sshs: M4 (stage 1, then stage 2)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", type=int, nargs="+", help="train only these folds (0-based)")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    names = mr_case_names(shared_mr_root())
    plan = folds(names, args.folds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds.json").write_text(json.dumps({f"fold{k}": t for k, t in enumerate(plan)}, indent=1) + "\n")
    status = 0
    for k, test in enumerate(plan):
        if args.only is not None and k not in args.only:
            continue
        final_id, plan_fold = (SSHS_IDS[1], sshs_fold_commands) if args.method == "sshs" else (MODEL_ID, fold_commands)
        if (out / f"fold{k}" / "models" / f"{final_id}.onnx").exists():
            continue
        for command in plan_fold(k, test, names, out, args.minutes, args.threads, args.max_steps):
            if args.dry_run:
                print(" ".join(command[1:]))
                continue
            with open(out / f"fold{k}.log", "a", encoding="utf-8") as log:
                if subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode:
                    print(f"fold {k} failed: see {out / f'fold{k}.log'}")
                    status = 1
                    break
    return status


if __name__ == "__main__":
    sys.exit(main())
