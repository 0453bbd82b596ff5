"""The labelled real CTs, already resampled onto each CT network's grid, in a folder that can travel
to a machine without the shared data or SimpleITK (the GPU host: training/device_ct.py).

    python -m training.pack --out .ctpack/real [--configs localizer_cpu ...]

One .npz per case and grid (training.data.prepared_path); the recipe's configs name the grids. The
folder holds patient data: keep it out of the repository (it is read by ``data.real_pack``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.data import load_shared_case, prepare, prepared_path, save_prepared, shared_ct_root
from training.loco import REAL_CASES, RECIPE
from training.tasks import data_config

CONFIGS = Path(__file__).resolve().parent / "configs"


def build_pack(out: Path, configs: list[str], cases=REAL_CASES) -> list[Path]:
    written = []
    datas = [data_config(json.loads((CONFIGS / f"{c}.json").read_text())) for c in configs]
    for name in cases:
        case = None
        for data in datas:
            path = prepared_path(out, name, data)
            if path in written:
                continue
            if case is None:
                case = load_shared_case(shared_ct_root(data), name)
            save_prepared(prepare(case, data), path, compress=True)
            written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".ctpack/real")
    parser.add_argument("--configs", nargs="+", default=sorted({Path(r[1]).stem for r in RECIPE}))
    args = parser.parse_args(argv)
    written = build_pack(Path(args.out), args.configs)
    size = sum(p.stat().st_size for p in written) / 2**20
    print(f"Wrote {len(written)} prepared cases to {args.out} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
