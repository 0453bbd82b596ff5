"""The vertebral body size table numbering uses (spine_core.pipeline.sizes), measured on the real
VerSe label maps in ../shared/data/masks (none of them a benchmark case):

    PYTHONPATH=. .venv/bin/python -m benchmarks.body_size_table [--out resources/anatomy/body_sizes.json]

Per level: the geometric mean of the body's antero-posterior depth and width over the maps that hold
it. The cervical levels keep their depth only: at mid-height a cervical body's section runs on into the
transverse processes (46-62 mm "wide" on the real maps, against 23-29 mm on the phantoms, where the
held-out ph-cervical lost its numbering to that width). Vertebrae cut by the top or bottom of a map's field of view are left out; levels no map holds whole are left out (the sacrum stands in with L5's size, see sizes.py).
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from spine_core.io import load_labels
from spine_core.labels import vertebra_name
from spine_core.pipeline.sizes import SIZE_TABLE, body_dimensions

MASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "masks"


def measure(path: Path) -> dict[int, tuple[float, float]]:
    """Level -> (depth, width) of each vertebra in the map that the map's field of view does not cut."""
    labels = load_labels(path)
    ids = [int(v) for v in np.unique(labels.array) if 0 < v < 100]
    # cranio-caudal order is the VerSe order, except T13 (28) after T12 and the sacrum (26) last
    order = sorted(ids, key=lambda v: 19.5 if v == 28 else v)
    owner = np.zeros(labels.array.shape, np.int16)
    for n, v in enumerate(order):
        owner[labels.array == v] = n + 1
    dims = body_dimensions(owner, labels, len(order))
    # cut at the top or bottom of the field of view (a cut transverse process leaves the body whole)
    axis = int(np.argmax(np.abs(labels.affine[2, :3])))
    edge = np.zeros(owner.shape, bool)
    edge[(slice(None),) * axis + (0,)] = edge[(slice(None),) * axis + (-1,)] = True
    cut = set(np.unique(owner[edge]).tolist())
    return {v: tuple(map(float, d)) for n, (v, d) in enumerate(zip(order, dims))
            if np.all(np.isfinite(d)) and n + 1 not in cut}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(SIZE_TABLE))
    args = parser.parse_args()
    per_case = {case.name: measure(case / "labels.nii.gz") for case in sorted(MASKS.iterdir()) if case.is_dir()}
    levels: dict[int, list] = {}
    for case, dims in per_case.items():
        for v in dims:
            levels.setdefault(v, []).append((case, dims[v]))
    table = {}
    for v in sorted(levels):
        values = np.array([d for _, d in levels[v]])
        mean = np.round(np.exp(np.log(values).mean(0)), 1).tolist()
        if v <= 7:      # a cervical body's mid-height section takes in the transverse processes: no width
            mean[1] = None
        table[str(v)] = {"name": vertebra_name(v), "depth_width_mm": mean, "cases": [c for c, _ in levels[v]]}
        print(f"{vertebra_name(v):>4}: " + "  ".join(f"{c}: {d[0]:.1f} x {d[1]:.1f}" for c, d in levels[v]))
    out = {"what": "vertebral body antero-posterior depth and width (mm) at mid-height, per level",
           "source": "real VerSe label maps in ../shared/data/masks: " + ", ".join(per_case),
           "command": "PYTHONPATH=. .venv/bin/python -m benchmarks.body_size_table",
           "date": datetime.date.today().isoformat(), "levels": table}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
