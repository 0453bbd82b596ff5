"""Pictures of suggested pedicle screws (spine_core.planning): for one lumbar vertebra of a study, an axial
slice through both pedicles and an oblique sagittal slice along the left one, on the CT in a bone window
with the vertebra's label outlined; each screw drawn as its section (diameter x length), with its least
distance to the cortex and expected Gertzbein-Robbins grade; a side without a screw shows its pedicle axis
dashed, with the reason. Prints every screw of the study.

    PYTHONPATH=. .venv/bin/python -m benchmarks.screw_pictures [--case demo verse007] [--vertebra L3]

Cases: "demo" (the demo study `spineplan demo` writes: labels.nii.gz + dicom/ in the user data folder),
"verse007" (../shared/data/ct/verse007: image.nii.gz + labels.nii.gz, VerSe reference labels). Writes
docs/images/planning/screws_<case>.png.
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SPINEPLAN_SHARED", ROOT.parent / "shared")) / "data"
OUT = ROOT / "docs" / "images" / "planning"
WINDOW = (-500.0, 1300.0)            # bone window: level 400, width 1800
HALF_MM, PIXEL_MM = 45.0, 0.25
COLOURS = {"left": "#4fc3f7", "right": "#ef5350"}


def case_paths(case: str) -> tuple[Path, Path]:
    if case == "demo":
        from app.cmd_demo import default_demo_dir

        folder = default_demo_dir()
        return folder / "labels.nii.gz", folder / "dicom"
    return SHARED / "ct" / case / "labels.nii.gz", SHARED / "ct" / case / "image.nii.gz"


def load_case(case: str):
    from spine_core.io import load_labels, load_scan

    labels_path, scan_path = case_paths(case)
    if not labels_path.is_file():
        raise SystemExit(f"{labels_path} is missing" + (" (run `spineplan demo` first)" if case == "demo" else ""))
    image = load_scan(scan_path)
    return load_labels(labels_path, grid=image), image


def _plane(volume, centre, across, down, order=1):
    """Samples of ``volume`` on the plane through ``centre`` spanned by unit ``across`` and ``down``."""
    from scipy import ndimage

    steps = np.arange(-HALF_MM, HALF_MM + 1e-6, PIXEL_MM)
    grid = centre + steps[None, :, None] * across + steps[:, None, None] * down
    ijk = volume.lps_to_index(grid.reshape(-1, 3)).T
    values = ndimage.map_coordinates(volume.array, ijk, order=order, mode="constant", cval=volume.array.min())
    return values.reshape(len(steps), len(steps))


def _draw_screw(ax, screw, centre, across, down, colour):
    from matplotlib.patches import Polygon

    entry, tip = np.asarray(screw.entry_lps), np.asarray(screw.tip_lps)
    a = np.array([(entry - centre) @ across, (entry - centre) @ down])
    b = np.array([(tip - centre) @ across, (tip - centre) @ down])
    d = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    n = np.array([-d[1], d[0]]) * screw.diameter_mm / 2
    ax.add_patch(Polygon([a + n, b + n, b - n, a - n], closed=True, facecolor=colour, edgecolor="white",
                         alpha=0.55, lw=0.8))
    ax.plot(*zip(a, b), color="white", lw=0.6, ls=":")
    return a


def _panel(ax, scene, plane, screws, declined, title):
    """One slice (``plane``: centre, across, down) of ``scene`` (image, labels, vertebra id): the CT with the
    vertebra outlined, its screws, and the pedicle axes of the sides that got none (dashed, with why)."""
    image, labels, vertebra_id = scene
    centre, across, down = plane
    hu = _plane(image, centre, across, down)
    mask = _plane(labels, centre, across, down, order=0) == vertebra_id
    extent = [-HALF_MM, HALF_MM, HALF_MM, -HALF_MM]
    ax.imshow(np.clip(hu, *WINDOW), cmap="gray", extent=extent, vmin=WINDOW[0], vmax=WINDOW[1])
    ax.contour(np.linspace(-HALF_MM, HALF_MM, mask.shape[1]), np.linspace(-HALF_MM, HALF_MM, mask.shape[0]),
               mask.astype(float), levels=[0.5], colors=["#ffd54f"], linewidths=0.7)
    for screw in screws:
        start = _draw_screw(ax, screw, centre, across, down, COLOURS[screw.side])
        _label(ax, start, f"{screw.side} {screw.diameter_mm:g} x {screw.length_mm:g} mm\n"
                          f"{screw.min_cortex_distance_mm:+.1f} mm to cortex, grade {screw.grade}")
    for pedicle, reason in declined:
        ends = [np.array([(np.asarray(x) - centre) @ across, (np.asarray(x) - centre) @ down])
                for x in (pedicle.entry_lps, pedicle.anterior_cortex_lps)]
        ax.plot(*zip(*ends), color=COLOURS[pedicle.side], lw=1.0, ls="--")
        _label(ax, ends[0], f"{pedicle.side}: no screw\n" + "\n".join(textwrap.wrap(reason, 40)))
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-HALF_MM, HALF_MM)
    ax.set_ylim(HALF_MM, -HALF_MM)
    ax.tick_params(labelsize=7)


def _label(ax, at, text):
    ax.annotate(text, xy=at, xytext=(at[0], at[1] + 6), color="white", fontsize=7, ha="center",
                bbox={"facecolor": "black", "alpha": 0.6, "lw": 0})


def _planes(plan, vertebra):
    """The axial plane through both pedicles' isthmus centres along their mean axis, and the oblique sagittal
    plane along the left pedicle's axis (or the right's), each (centre, across, down)."""
    pedicles = [p for p in (plan.pedicle(vertebra, side) for side in ("left", "right")) if p and p.found]
    centre = np.mean([np.asarray(p.isthmus_lps) for p in pedicles], axis=0)
    forward = np.mean([np.asarray(p.axis_lps) for p in pedicles], axis=0)
    forward /= np.linalg.norm(forward)
    left = (np.asarray(pedicles[0].isthmus_lps) - np.asarray(pedicles[-1].isthmus_lps) if len(pedicles) == 2
            else np.array([1.0, 0.0, 0.0]))
    left = left if left[0] > 0 else -left
    up = np.cross(forward, left)
    up /= np.linalg.norm(up)
    left = np.cross(up, forward)
    along = np.asarray(pedicles[0].axis_lps)
    head = np.cross(left, along)
    head = head if head[2] > 0 else -head
    # axial: the patient's right on the viewer's left, anterior up; sagittal: anterior left, superior up
    return (centre, left, -forward), (np.asarray(pedicles[0].isthmus_lps), -along, -head), pedicles[0].side


def draw(case: str, labels, image, plan, vertebra: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spine_core.labels import NAME_TO_ID

    screws = {s.side: s for s in plan.screws if s.vertebra == vertebra}
    reasons = {n.side: n.reason for n in plan.not_planned if n.vertebra == vertebra}
    declined = [(plan.pedicle(vertebra, side), reasons[side]) for side in reasons
                if plan.pedicle(vertebra, side) and plan.pedicle(vertebra, side).found]
    axial, sagittal, first = _planes(plan, vertebra)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 5.2), facecolor="black")
    scene = image, labels, NAME_TO_ID[vertebra]
    _panel(a1, scene, axial, list(screws.values()), declined,
           f"{vertebra} axial through both pedicles (R | L, anterior up)")
    _panel(a2, scene, sagittal, [screws[first]] if first in screws else [],
           [d for d in declined if d[0].side == first],
           f"{vertebra} sagittal along the {first} pedicle (anterior left)")
    for ax in (a1, a2):
        ax.set_facecolor("black")
        ax.title.set_color("white")
        ax.tick_params(colors="white")
    source = "reference labels" if case != "demo" else "the demo's labels"
    fig.suptitle(f"SpinePlan suggested pedicle screws: {case} ({source})", color="white", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, facecolor="black")
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", default=["demo", "verse007"])
    parser.add_argument("--vertebra", help="the vertebra to draw (default: the lumbar one with the most screws, "
                                           "the lowest of those)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from spine_core.planning.files import plan_screws

    for case in args.case:
        labels, image = load_case(case)
        plan = plan_screws(labels)
        print(f"{case}: {len(plan.screws)} screws")
        for s in plan.screws:
            print(f"  {s.name:18s} {s.min_cortex_distance_mm:+5.2f} mm to cortex, grade {s.grade}")
        for n in plan.not_planned:
            print(f"  {n.vertebra:4s} {n.side:5s} none: {n.reason}")
        lumbar = sorted({s.vertebra for s in plan.screws if s.vertebra.startswith("L")},
                        key=lambda v: (sum(s.vertebra == v for s in plan.screws), int(v[1:])))
        vertebra = args.vertebra or (lumbar[-1] if lumbar else None)
        if vertebra is None:
            print(f"  no lumbar vertebra with a screw in {case}: no picture")
            continue
        print(f"  wrote {draw(case, labels, image, plan, vertebra, args.out / f'screws_{case}.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
