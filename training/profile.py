"""Measure each network at its shipped config: parameters, FLOPs per input voxel (conv/matmul,
torch's FlopCounterMode; 1 multiply-add = 2 FLOPs), onnxruntime CPU time per patch.

    python -m training.profile [--threads 2] [--repeats 3] [CONFIG ...] [--set SECTION.KEY=VALUE ...]
    (CONFIG: a stem of training/configs, e.g. joint_cpu; default: each network's reference config)
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from training.export import export_onnx, ort_session, run_onnx
from training.nets import NETS, build_model
from training.nets.blocks import count_parameters

CONFIGS = Path(__file__).resolve().parent / "configs"
EXTRA_SHAPES = {"localizer": [(1, 1, 128, 128, 96)]}   # a whole CT at 3 mm (~384 x 384 x 288 mm)


def _inputs(name: str, model, patch) -> tuple:
    if name == "labeler":
        return model.example_inputs(count=17)            # e.g. T1-L5
    return model.example_inputs(patch)


@torch.no_grad()
def flops_per_voxel(model, inputs: tuple) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    voxels = int(np.prod(inputs[0].shape[-3:] if inputs[0].dim() >= 5 else inputs[0].shape[-2:]))
    voxels *= int(np.prod(inputs[0].shape[:-3])) if inputs[0].dim() >= 5 else inputs[0].shape[0]
    return counter.get_total_flops() / voxels


def ort_seconds(model, inputs: tuple, path: Path, repeats: int, threads: int) -> float:
    import os

    os.environ["SPINEPLAN_ORT_THREADS"] = str(threads)
    session = ort_session(path)
    run_onnx(session, model, inputs)                     # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_onnx(session, model, inputs)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def profile(stem: str, repeats: int, threads: int, folder: Path, settings=()) -> list[dict]:
    from training.config import apply_overrides

    config = apply_overrides(json.loads((CONFIGS / f"{stem}.json").read_text()), list(settings))
    name = config["model"]
    torch.manual_seed(0)
    model = build_model(name, config["net"]).eval()
    model = model.exported() if hasattr(model, "exported") else model     # a CPS pair ships one network
    inputs = _inputs(name, model, config["data"]["patch_size"])
    path = export_onnx(model, inputs, folder / f"{name}.onnx")
    rows = []
    for extra in [None, *EXTRA_SHAPES.get(name, [])]:
        x = inputs if extra is None else (torch.rand(extra),)
        rows.append({"model": name, "input": "x".join(str(s) for s in x[0].shape),
                     "parameters": count_parameters(model), "kflops_per_voxel": flops_per_voxel(model, x) / 1e3,
                     "ort_seconds": ort_seconds(model, x, path, repeats, threads)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("models", nargs="*", default=list(NETS))
    parser.add_argument("--set", action="append", default=[], help="override a config setting (as spineplan train)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| network | input (ONNX) | parameters | kFLOP/voxel | onnxruntime CPU s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for r in profile(name, args.repeats, args.threads, Path(tmp), args.set):
                print(f"| {r['model']} | {r['input']} | {r['parameters']:,} | {r['kflops_per_voxel']:.1f} | "
                      f"{r['ort_seconds']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
