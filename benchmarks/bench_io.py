"""Time to open a 512 x 512 x N DICOM CT series with spineplan's loader.

    .venv/bin/python benchmarks/bench_io.py [--slices 300] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np

from spine_core.io import list_series, load_scan
from spine_core.io.dicom_writer import write_dicom_series
from spine_core.volume import Volume, affine_from_geometry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    array = (rng.normal(0, 30, (512, 512, args.slices)) + 40).astype(np.int16)
    volume = Volume(array, affine_from_geometry([0.8, 0.8, 1.0], None, [-200, -200, -100]))
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        write_dicom_series(volume, folder)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        list_series(folder)
        t_headers = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded = load_scan(folder)
        t_load = time.perf_counter() - t0
        assert np.array_equal(loaded.array, array)
    result = {"slices": args.slices, "write_s": round(t_write, 2), "headers_s": round(t_headers, 2),
              "load_scan_s": round(t_load, 2), "machine": platform.processor() or platform.machine(),
              "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
