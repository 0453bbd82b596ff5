"""Time `evaluate` on a 512 x 512 x 300 label map with 20 vertebrae and 19 discs.

    .venv/bin/python -m benchmarks.bench_eval
"""
from __future__ import annotations

import json
import time

import numpy as np

from spine_core.metrics import evaluate
from spine_core.volume import LabelMap, affine_from_geometry


def full_size_pair():
    """Reference and a prediction shifted by 2 voxels in i and 1 in k (0.8 mm and 1 mm)."""
    i, j = np.ogrid[:512, :512]
    body = ((i - 256) / 90.0) ** 2 + ((j - 240) / 70.0) ** 2 <= 1
    arch = ((i - 256) / 30.0) ** 2 + ((j - 360) / 50.0) ** 2 <= 1
    ref = np.zeros((512, 512, 300), np.uint8)
    for n, vid in enumerate(range(5, 25)):
        ref[:, :, n * 15 + 2:n * 15 + 14][body | arch] = vid
        if vid < 24:
            ref[:, :, n * 15 + 14][body] = 100 + vid
    pred = np.roll(np.roll(ref, 2, axis=0), 1, axis=2)
    affine = affine_from_geometry((0.4, 0.4, 1.0))
    return LabelMap(pred, affine), LabelMap(ref, affine)


def main() -> None:
    pred, ref = full_size_pair()
    started = time.perf_counter()
    report = evaluate(pred, ref)
    elapsed = time.perf_counter() - started
    print(json.dumps({"voxels": int(ref.array.size), "vertebrae": report.summary.n_ref,
                      "seconds": round(elapsed, 2), "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
