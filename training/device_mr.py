"""Train the MR network (M5, ``mr_scar``) on a GPU host in one command: the four cross-validation folds
of benchmarks/mr_folds and the shipped recipe (all cases) at once, as processes sharing the GPU.

    # here, once (the GPU host has neither the shared data nor SimpleITK):
    python -m training.device_mr pack --out .mrpack
    # there, through the device tool with carry [".mrpack"]:
    python3 -m training.device_mr train --pack .mrpack --out runs/device_mr --steps 9600 --bundle $OUT
    # back here: unpack each OUT/mr_<fold>.tar.gz under a folder with folds.json, then
    PYTHONPATH=. .venv/bin/python -m benchmarks.eval_mr --folds FOLDER
    # a run the cap stopped short: put OUT/last_<fold>.pt at FOLDER/<fold>/last.pt and continue it (here
    # on the CPU, or there) with the same command plus --resume (--minutes 0: no cap)

The pack holds each case as the MR networks read it (training.mr_data.mr_case), made small enough for
all 32 cases to travel in the device's 64 MiB: the image stored as 8 bits of its [0, 1] range (a step of
0.004, a tenth of the training noise), the volume cut to the labelled sagittal slices and the four
beside them (the widest slice stride the sampler stacks; its few unlabelled picks then come from there
too), LZMA-compressed. Every fold trains on the same stored cases. Each run is the CPU recipe
(training/configs/mr_scar_cpu.json, no validation cases, the last checkpoint exported) with only the
step count and the device changed. The folds' test cases come from the pack's folds.json (a copy of
benchmarks/mr_folds/folds.json). The folder holds patient data: keep it out of the repository.
Nothing here runs in the test suite.
"""
from __future__ import annotations

import argparse
import io
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "training" / "configs" / "mr_scar_cpu.json"
FOLDS_JSON = ROOT / "benchmarks" / "mr_folds" / "folds.json"
MODEL_ID = "mr-spine-seg"
LEVELS = 255
MARGIN = 4          # the sampler's widest slice stride (training.tasks_mr.MRSliceSampler)


def build_pack(out: Path, root: str = "") -> list[str]:
    from training.mr_data import load_mr_case, mr_case_names, shared_mr_root

    mr_root = shared_mr_root(root)
    out.mkdir(parents=True, exist_ok=True)
    names = mr_case_names(mr_root)
    for name in names:
        save_pack_case(out, load_mr_case(mr_root, name))
    (out / "folds.json").write_text(FOLDS_JSON.read_text())
    return names


def save_pack_case(out: Path, case) -> Path:
    lo, hi = max(0, case.slices.min() - MARGIN), min(case.image.shape[0], case.slices.max() + MARGIN + 1)
    buffer = io.BytesIO()
    np.savez(buffer, image=np.round(np.clip(case.image[lo:hi], 0, 1) * LEVELS).astype(np.uint8),
             labels=case.labels[lo:hi].astype(np.uint8), has_body=case.has_body, has_disc=case.has_disc,
             slices=case.slices - lo)
    path = out / f"{case.name}.npz.xz"
    path.write_bytes(lzma.compress(buffer.getvalue()))
    return path


def load_pack_case(pack: Path, name: str):
    from training.mr_data import MRCase

    with np.load(io.BytesIO(lzma.decompress((pack / f"{name}.npz.xz").read_bytes()))) as f:
        return MRCase(name, f["image"].astype(np.float32) / LEVELS, f["labels"].astype(np.int16),
                      bool(f["has_body"]), bool(f["has_disc"]), f["slices"])


def plan(pack: Path) -> dict[str, list[str]]:
    """Training cases per run: each fold trains on every case outside its test list; "all" on every case."""
    names = sorted(p.name.removesuffix(".npz.xz") for p in pack.glob("*.npz.xz"))
    folds = json.loads((pack / "folds.json").read_text())
    runs = {fold: [n for n in names if n not in test] for fold, test in folds.items()}
    runs["all"] = names
    return runs


def run_one(pack: Path, out: Path, fold: str, steps: int, minutes: float, command: str,
            resume: bool = False) -> None:
    from training.config import apply_overrides
    from training.export import export_checkpoint
    from training.trainer import load_checkpoint, run_training

    train = plan(pack)[fold]
    checkpoint = out / fold / "last.pt"
    resume = resume and checkpoint.is_file()
    if resume and minutes:      # the trainer's cap counts the run's whole wall time: this piece gets `minutes`
        minutes += load_checkpoint(checkpoint)["wall_time_s"] / 60
    config = apply_overrides(json.loads(CONFIG.read_text()), [
        f"data.train_cases={json.dumps(train)}", "data.val_cases=[]", f"optim.max_steps={steps}",
        f"optim.max_minutes={minutes}", "optim.threads=1", "optim.device=\"auto\""])
    cases = [load_pack_case(pack, n) for n in train]
    last = run_training(config, out / fold, resume=checkpoint if resume else None, command=command,
                        progress_bar=False, datasets=(cases, []))
    export_checkpoint(last, out / fold / "models", MODEL_ID)


def bundle(out: Path, folds, dest: Path) -> list[Path]:
    written = []
    dest.mkdir(parents=True, exist_ok=True)
    for fold in folds:
        folder = out / fold
        if not folder.is_dir():
            continue
        path = dest / f"mr_{fold}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for item in sorted(folder.rglob("*")):
                if item.is_file() and (item.parent.name == "models" or item.name in ("metrics.jsonl", "run.log")):
                    tar.add(item, arcname=str(item.relative_to(out)))
        written.append(path)
        if (folder / "last.pt").is_file():      # a run the cap stopped short resumes from it elsewhere
            written.append(Path(shutil.copy2(folder / "last.pt", dest / f"last_{fold}.pt")))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack", help="write the shared MR cases into a folder that can travel")
    p.add_argument("--out", default=".mrpack")
    p.add_argument("--shared-root", default="")
    t = sub.add_parser("train", help="every fold and the shipped recipe at once")
    t.add_argument("--pack", required=True)
    t.add_argument("--out", default="runs/device_mr")
    t.add_argument("--steps", type=int, default=9600)
    t.add_argument("--minutes", type=float, default=7.5, help="each run's wall-clock cap (then exported as is)")
    t.add_argument("--folds", nargs="+", help="only these runs (fold names or 'all')")
    t.add_argument("--bundle", help="folder for one .tar.gz per run")
    t.add_argument("--resume", action="store_true", help="continue each run from its last.pt where there is one "
                   "(--minutes is then this piece's cap; 0 = none)")
    t.add_argument("--one", help=argparse.SUPPRESS)      # internal: the child process of one run
    args = parser.parse_args(argv)
    if args.verb == "pack":
        names = build_pack(Path(args.out), args.shared_root)
        size = sum(f.stat().st_size for f in Path(args.out).iterdir()) / 2**20
        print(f"{len(names)} cases in {args.out} ({size:.1f} MiB)")
        return 0
    pack, out = Path(args.pack), Path(args.out)
    command = " ".join(["python -m training.device_mr"] + list(sys.argv[1:] if argv is None else argv))
    if args.one:
        run_one(pack, out, args.one, args.steps, args.minutes, command, args.resume)
        return 0
    began = time.monotonic()
    folds = args.folds or list(plan(pack))
    children = []
    for fold in folds:
        (out / fold).mkdir(parents=True, exist_ok=True)
        log = open(out / fold / "run.log", "a" if args.resume else "w", encoding="utf-8")
        child = [sys.executable, "-m", "training.device_mr", "train", "--pack", str(pack), "--out", str(out),
                 "--steps", str(args.steps), "--minutes", str(args.minutes), "--one", fold] + ["--resume"] * args.resume
        children.append((fold, subprocess.Popen(child, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
    limit = began + 60 * (args.minutes + 1.2) if args.minutes else None
    results = {}
    for fold, child, log in children:
        try:
            results[fold] = child.wait(timeout=None if limit is None else max(1.0, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            results[fold] = "killed at the deadline"
        log.close()
    steps = {}
    for fold in folds:
        metrics = out / fold / "metrics.jsonl"
        if metrics.exists():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            steps[fold] = max((r.get("step", 0) for r in rows), default=0)
    summary = {"results": results, "steps": steps, "seconds": round(time.monotonic() - began, 1)}
    print(json.dumps(summary), flush=True)
    if args.bundle:
        Path(args.bundle).mkdir(parents=True, exist_ok=True)
        (Path(args.bundle) / "device_mr.json").write_text(json.dumps(summary, indent=1))
        for path in bundle(out, folds, Path(args.bundle)):
            print(f"Wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0 if all(c == 0 for c in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
