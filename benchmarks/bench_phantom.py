"""Phantom generation speed, and phantom-vs-real CT statistics and figures.

    .venv/bin/python benchmarks/bench_phantom.py            # timing: 512x512x300 and the demo study
    .venv/bin/python benchmarks/bench_phantom.py --realism  # HU and size statistics vs ../shared/data
    .venv/bin/python benchmarks/bench_phantom.py --figures docs/images/phantoms
    .venv/bin/python benchmarks/bench_phantom.py --real-shapes docs/images/phantoms  # real VerSe shapes

Timings are wall-clock seconds on whatever machine runs this; docs/BENCHMARKS.md records them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from spine_core.phantom import CurveShape, PhantomOptions, generate_phantom, write_phantom  # noqa: E402


def bench_speed(repeats: int = 2) -> None:
    # 0.8 mm pixels on a 409.6 mm field of view = 512 x 512; 300 slices of 1 mm: T10-sacrum with
    # both ends slightly truncated (margin -13 mm).
    opts = PhantomOptions(seed=11, first_level="T10", last_level="sacrum", spacing_mm=(0.8, 0.8, 1.0),
                          fov_mm=409.6, margin_mm=-13.0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        p = generate_phantom(opts)
        times.append(time.perf_counter() - start)
    print(f"generate {p.image.shape}: best {min(times):.1f} s, mean {np.mean(times):.1f} s "
          f"({repeats} runs)")
    from app.cmd_demo import demo_options

    start = time.perf_counter()
    demo = generate_phantom(demo_options())
    t_gen = time.perf_counter() - start
    out = Path(tempfile.mkdtemp()) / "demo"
    start = time.perf_counter()
    write_phantom(demo, out)
    t_write = time.perf_counter() - start
    shutil.rmtree(out.parent)
    print(f"demo study {demo.image.shape}: generate {t_gen:.1f} s + write DICOM/labels {t_write:.1f} s "
          f"= {t_gen + t_write:.1f} s")


def tissue_stats(image, labels) -> dict[str, float]:
    """The same measurements on a phantom and on a real labelled CT."""
    a = image.array.astype(np.float32)
    lab = labels.array
    bone = (lab > 0) & (lab < 100)
    out = {"vertebra (label)": np.median(a[bone]),
           "vertebra core (eroded 3 vox)": np.median(a[ndimage.binary_erosion(bone, iterations=3)])}
    shell = bone & ~ndimage.binary_erosion(bone)
    out["vertebra surface voxels"] = np.median(a[shell])
    m = ndimage.uniform_filter(a, 5)
    s = np.sqrt(np.maximum(ndimage.uniform_filter(a * a, 5) - m * m, 0))
    calm = s < np.percentile(s, 30)
    out["fat (homogeneous)"] = np.median(a[calm & (m > -200) & (m < -50)])
    out["muscle (homogeneous)"] = np.median(a[calm & (m > 10) & (m < 90) & (lab == 0)])
    soft = (m > 10) & (m < 90) & (lab == 0)
    out["noise SD (p5 of local SD, soft tissue)"] = np.percentile(s[soft], 5)
    out["disc (between bodies)"] = _disc_median(image, labels)
    return {k: float(v) for k, v in out.items()}


def _disc_median(image, labels) -> float:
    """Midpoint between the anterior parts of neighbouring vertebrae, 8x8x2 mm, unlabelled voxels."""
    lab, vals = labels.array, []
    ids = [i for i in labels.ids() if i < 26]

    def body_centre(vid):
        lps = labels.index_to_lps(np.argwhere(lab == vid))
        return lps[lps[:, 1] <= np.percentile(lps[:, 1], 30)].mean(axis=0)

    for up, down in zip(ids[:-1], ids[1:]):
        ijk = np.round(labels.lps_to_index((body_centre(up) + body_centre(down)) / 2)).astype(int)
        r = np.maximum((np.array([8, 8, 2]) / labels.spacing).astype(int), 1)
        box = tuple(slice(max(i - k, 0), i + k + 1) for i, k in zip(ijk, r))
        vals.append(image.array[box][lab[box] == 0])
    return float(np.median(np.concatenate(vals))) if vals else float("nan")


def realism() -> None:
    from spine_core.io import load_labels, load_scan

    rows = {}
    for case in ("verse006", "verse007", "tptbox_lumbar"):
        d = SHARED / "ct" / case
        if d.exists():
            rows[f"real {case}"] = tissue_stats(load_scan(d / "image.nii.gz"), load_labels(d / "labels.nii.gz"))
    for seed in (1, 2):
        p = generate_phantom(PhantomOptions(seed=seed, first_level="T9", last_level="L5",
                                            spacing_mm=(1.0, 1.0, 3.0), fov_mm=160, centre_on_spine=True))
        rows[f"phantom seed {seed} (1x1x3 mm)"] = tissue_stats(p.image, p.labels)
    keys = list(next(iter(rows.values())).keys())
    print("| measure | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{rows[r][k]:.0f}" for r in rows) + " |")


GALLERY = {
    "normal": dict(seed=3, first_level="T8", last_level="sacrum", spacing_mm=(0.8, 0.8, 1.0)),
    "scoliosis": dict(seed=4, first_level="T1", last_level="sacrum", spacing_mm=(1.0, 1.0, 1.5),
                      curve=CurveShape(scoliosis_cobb_deg=45, scoliosis_apex="T9")),
    "partial_fov": dict(seed=5, first_level="L2", last_level="L4", spacing_mm=(0.6, 0.6, 3.0), fov_mm=180,
                        centre_on_spine=True, margin_mm=-6, orientation="PIR"),
    "l6_variant": dict(seed=6, first_level="L1", last_level="sacrum", lumbar_count=6, label_discs=True),
    "hardware": dict(seed=7, first_level="T12", last_level="sacrum", hardware_levels=("L3", "L4", "L5"),
                     bone_density=0.6, osteophytes=0.6, fractures=(("L1", 0.35),)),
    "cervical": dict(seed=8, first_level="C1", last_level="T2", spacing_mm=(0.5, 0.5, 1.0), fov_mm=220),
}


def _to_lps(volume):
    """Array re-indexed to L, P, S axes (display only), with its spacing."""
    axes = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
    code = volume.orientation
    perm = [None] * 3
    for i, c in enumerate(code):
        perm[axes[c][0]] = i
    a = volume.array.transpose(perm)
    for ax in range(3):
        if axes[code[perm[ax]]][1] < 0:
            a = np.flip(a, ax)
    return a, volume.spacing[perm]


def views_png(image, labels, path: Path, title: str, centre_label: int | None = None) -> None:
    import matplotlib.pyplot as plt

    a, sp = _to_lps(image)
    lab = _to_lps(labels)[0]
    ids = sorted(i for i in np.unique(lab) if 0 < i < 100)
    vid = centre_label if centre_label in ids else ids[len(ids) // 2]
    cx, cy, cz = np.argwhere(lab == vid).mean(axis=0).astype(int)
    views = [(a[cx].T, lab[cx].T, sp[1], sp[2], "sagittal"), (a[:, cy].T, lab[:, cy].T, sp[0], sp[2], "coronal"),
             (a[:, :, cz].T, lab[:, :, cz].T, sp[0], sp[1], "axial")]
    fig, axs = plt.subplots(1, 3, figsize=(10.5, 4.2))
    for ax, (img, lb, s0, s1, name) in zip(axs, views, strict=True):
        origin = "upper" if name == "axial" else "lower"
        ax.imshow(img, cmap="gray", vmin=-350, vmax=1150, origin=origin, aspect=s1 / s0)
        edge = (lb > 0) & ~ndimage.binary_erosion(lb > 0)
        ax.imshow(np.ma.masked_where(~edge, edge), cmap="autumn", alpha=0.8, origin=origin,
                  aspect=s1 / s0, interpolation="nearest")
        if name == "sagittal":
            ax.invert_xaxis()
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def figures(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from spine_core.io import load_labels, load_scan

    out.mkdir(parents=True, exist_ok=True)
    for name, kw in GALLERY.items():
        p = generate_phantom(PhantomOptions(**kw))
        views_png(p.image, p.labels, out / f"phantom_{name}.png", f"phantom: {name} ({p.image.orientation}, "
                  f"{' x '.join(f'{s:.2g}' for s in p.image.spacing)} mm)", centre_label=22)
    for case in ("verse007", "verse006"):
        d = SHARED / "ct" / case
        if d.exists():
            views_png(load_scan(d / "image.nii.gz"), load_labels(d / "labels.nii.gz"), out / f"real_{case}.png",
                      f"real CT: {case} (VerSe, 1 x 1 x 3 mm)", centre_label=22)
    # The same crop and spacing as the real VerSe cases, for a like-for-like look.
    p = generate_phantom(PhantomOptions(seed=2, first_level="T9", last_level="L3", spacing_mm=(1.0, 1.0, 3.0),
                                        fov_mm=200, centre_on_spine=True, orientation="PIR"))
    views_png(p.image, p.labels, out / "phantom_like_verse007.png",
              "phantom: T9-L3 at VerSe geometry (PIR, 1 x 1 x 3 mm)", centre_label=22)


def real_shapes(out: Path, analytic: Path | None = None) -> None:
    """T10-sacrum with every vertebra drawn from the real VerSe masks (../shared/data/masks), and
    the same phantom with analytic vertebrae; timings of both."""
    import matplotlib

    matplotlib.use("Agg")
    from spine_core.pictures import save_sagittal_coronal
    from training.shapes import load_shape_library

    start = time.perf_counter()
    library = load_shape_library()
    print(f"shape library: {len(library or ())} vertebrae in {time.perf_counter() - start:.1f} s")
    opts = PhantomOptions(seed=3, first_level="T10", last_level="sacrum", spacing_mm=(0.8, 0.8, 1.0),
                          fov_mm=400.0, real_shape_p=1.0)
    timings = {}
    for name, shapes in (("real shapes", library), ("analytic", None), ("real shapes, cached", library)):
        start = time.perf_counter()
        p = generate_phantom(opts, shapes=shapes)
        timings[name] = time.perf_counter() - start
        if name == "real shapes":
            out.mkdir(parents=True, exist_ok=True)
            save_sagittal_coronal(p.image, p.labels, out / "real_shapes.png", title="real VerSe shapes")
            views_png(p.image, p.labels, out / "real_shapes_views.png",
                      "phantom T10-sacrum, every vertebra from a real VerSe mask (real_shape_p=1)", centre_label=22)
        elif name == "analytic" and analytic is not None:
            save_sagittal_coronal(p.image, p.labels, analytic, title="analytic")
    print(", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), f"({p.image.shape})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--realism", action="store_true")
    ap.add_argument("--figures", type=Path)
    ap.add_argument("--real-shapes", type=Path, metavar="DIR")
    ap.add_argument("--analytic-picture", type=Path)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.realism:
        realism()
    elif args.figures:
        figures(args.figures)
    elif args.real_shapes:
        real_shapes(args.real_shapes, args.analytic_picture)
    else:
        bench_speed(args.repeats)
