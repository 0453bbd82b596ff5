"""Pictures of a label map over its scan: a sagittal thumbnail for batch reports and review queues,
and a sagittal + coronal pair for looking at real results (benchmarks/eval_real.py).

Both sample the scan onto an LPS-aligned grid (array axes i -> L, j -> P, k -> S) and show it in its
display window (``spine_core.windowing``: the bone window for a CT, one from the scan's own intensities
for an MR, whose units are arbitrary), labels coloured (``spine_core.labels.label_color``, the
workstation's colours), superior up and anterior to the left, as radiologists read a sagittal image.
They draw with matplotlib's ``Figure`` + Agg canvas, never pyplot, so batch workers on several threads
cannot share a figure.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.labels import is_disc, label_color
from spine_core.pipeline.preprocess import (box_grid, canonical_grid, crop_volume, index_box,
                                            resample_image, scan_bounds_mm)
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume
from spine_core.windowing import display_window

PICTURE_SPACING_MM = 1.5          # the sagittal + coronal pair
THUMBNAIL_SPACING_MM = 2.0        # the thumbnail's finest pixel; coarser for scans taller than it shows
LABEL_ALPHA = 0.45
MAX_ASPECT = 1.5                  # a thumbnail is at most this much wider than its height
_CENTRE_STEP_MM = 4.0             # label voxels sampled this coarsely to find their median position


# -- sampling ---------------------------------------------------------------------------------------
def labels_centre_mm(labels: LabelMap) -> np.ndarray | None:
    """Median LPS position of the labelled voxels (sampled every ~4 mm: a 512 x 512 x 700 map costs
    milliseconds), or None for an empty label map."""
    step = np.maximum(np.round(_CENTRE_STEP_MM / labels.spacing).astype(int), 1)
    sampled = labels.array[::step[0], ::step[1], ::step[2]]
    found = np.argwhere(sampled > 0)
    if not len(found):
        if not labels.array.max(initial=0) > 0:    # empty (max: a vectorised pass, no mask array)
            return None
        found = np.argwhere(labels.array > 0)      # only labels smaller than the sampling step
    else:
        found = found * step
    return np.median(labels.index_to_lps(found), axis=0)


def _labels_on(labels: LabelMap, grid: Volume) -> np.ndarray:
    """Label ids on ``grid`` (nearest), handing SimpleITK only the part of the map the grid covers."""
    box = index_box(labels, grid)
    if box is None:
        return np.zeros(grid.shape, dtype=labels.array.dtype)
    return np.asarray(resample_to_grid(crop_volume(labels, box), grid, labels=True, fill=0).array)


def _display(image: np.ndarray) -> np.ndarray:
    """A 2D (left-right or front-back, superior) slice as rows top = superior."""
    return image.T[::-1]


def _rgb(image: np.ndarray, ids: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Grey in ``window`` (low, high) with the labels blended in their colours, uint8 RGB; both already
    displayed."""
    lo, hi = window
    grey = (np.clip((image.astype(np.float32) - lo) / (hi - lo), 0, 1) * 255)[..., None].repeat(3, axis=2)
    present = [int(v) for v in np.unique(ids) if v]
    for vid in present:
        mask = ids == vid
        grey[mask] = (1 - LABEL_ALPHA) * grey[mask] + LABEL_ALPHA * np.asarray(label_color(vid), np.float32)
    return grey.round().astype(np.uint8)


# -- the thumbnail ----------------------------------------------------------------------------------
def _thumbnail_slice(scan: Volume, labels: LabelMap, height_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(image, ids) on one sagittal plane through the labels' median left-right position, at a pixel
    size that gives about ``height_px`` rows (never finer than THUMBNAIL_SPACING_MM)."""
    lo, hi = scan_bounds_mm(scan)
    centre = labels_centre_mm(labels)
    x = float(centre[0]) if centre is not None else float((lo[0] + hi[0]) / 2)
    x = float(np.clip(x, lo[0], hi[0]))
    pixel = max(THUMBNAIL_SPACING_MM, float(hi[2] - lo[2]) / max(height_px, 1))
    lo, hi = lo.copy(), hi.copy()
    lo[0], hi[0] = x, x + 1.5       # two planes 1 mm apart: SimpleITK refuses a one-voxel-thick grid
    grid = box_grid(lo, hi, (1.0, pixel, pixel), cover=False)
    image = resample_image(scan, grid)[0]
    ids = _labels_on(labels, grid)[0]
    return _display(image), _display(ids)


def _name_rows(ids: np.ndarray, names) -> list[tuple[str, int, float, float]]:
    """(name, id, row, anterior-most column) per vertebra in the slice (discs are coloured, not
    named), top to bottom."""
    from scipy import ndimage

    boxes = ndimage.find_objects(ids.astype(np.int32))
    rows = []
    for vid in (int(v) for v in np.unique(ids) if v > 0 and not is_disc(v)):
        box = boxes[vid - 1]
        rr, cc = np.nonzero(ids[box] == vid)
        rows.append((names.get(vid, str(vid)), vid, float(np.median(rr) + box[0].start),
                     float(cc.min() + box[1].start)))
    return sorted(rows, key=lambda r: r[2])


def save_sagittal_thumbnail(scan: Volume, labels: LabelMap, path: Path, height_px: int = 320) -> Path:
    """A small PNG: one sagittal slice through the labels' median left-right position, in the scan's
    display window, labels coloured with their names beside them (anterior), superior up; written atomically.
    An empty label map gives the scan's mid-sagittal slice. A 512 x 512 x 700 CT takes ~0.1 s (0.5 s
    with matplotlib's first import): only a two-plane slab at >= 2 mm is resampled."""
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image, ids = _thumbnail_slice(scan, labels, height_px)
    rgb = _rgb(image, ids, display_window(scan))
    rows, cols = rgb.shape[:2]
    scale = min(height_px / rows, MAX_ASPECT * height_px / cols)      # a thin slab: less tall, not wider
    dpi = 100
    fig = Figure(figsize=(max(round(cols * scale), 1) / dpi, max(round(rows * scale), 1) / dpi), dpi=dpi,
                 facecolor="black")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgb, interpolation="bilinear", aspect="equal")
    ax.set_axis_off()
    font_px = 9.0
    last_row = -np.inf
    outline = [patheffects.withStroke(linewidth=2, foreground="black")]
    for name, vid, row, front in _name_rows(ids, labels.names):
        row = float(np.clip(row, 0.6 * font_px / scale, rows - 1 - 0.6 * font_px / scale))   # not cut off
        if (row - last_row) * scale < font_px:          # crowded: every other name is enough
            continue
        last_row = row
        text_cols = len(name) * 0.62 * font_px / scale
        x = max(front - 3 / scale, text_cols + 0.5)         # 3 px in front of it, inside the picture
        ax.text(x, row, name, color=_hex(label_color(vid)), fontsize=font_px * 72 / dpi, ha="right",
                va="center", fontweight="bold", path_effects=outline)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    return _save_png(fig, Path(path))


def _hex(rgb) -> str:
    r, g, b = (min(255, int(c * 1.25)) for c in rgb)       # a little lighter: text on dark tissue
    return f"#{r:02x}{g:02x}{b:02x}"


def _save_png(fig, path: Path, colours: int = 128) -> Path:
    """The figure as a palette PNG (a CT's noise makes true-colour PNGs several times larger)."""
    data = _png_bytes(fig, colours)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def _png_bytes(fig, colours: int = 128) -> bytes:
    import io

    from PIL import Image

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    picture = Image.fromarray(rgba[..., :3].copy()).quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -- the sagittal + coronal pair --------------------------------------------------------------------
SCREW_COLOR = "#ffd21f"


def _lps_arrays(scan: Volume, labels: LabelMap) -> tuple[np.ndarray, np.ndarray, Volume]:
    grid = canonical_grid(scan, PICTURE_SPACING_MM)
    image = resample_image(scan, grid).astype(np.float32)
    ids = resample_to_grid(labels, grid, labels=True, fill=0).array
    return image, ids, grid


def sagittal_coronal_figure(scan: Volume, labels: LabelMap, title: str = "", screws=(), width_in: float = 12.0):
    """A matplotlib Figure (Agg canvas): sagittal (through the labels' median left-right position) and
    coronal (median anterior-posterior) slices in the scan's display window, vertebrae coloured and named at their
    centroids, superior up, anterior left, the patient's right on the left. ``screws``: (entry, tip) in
    LPS mm, drawn as lines projected onto each plane."""
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy import ndimage

    image, ids, grid = _lps_arrays(scan, labels)
    window = display_window(scan)
    found = np.argwhere(ids > 0)
    centre = np.median(found, axis=0).astype(int) if len(found) else np.array(image.shape) // 2
    height_in = width_in * image.shape[2] / (image.shape[0] + image.shape[1]) + 0.5     # the panels, their titles
    fig = Figure(figsize=(width_in, float(np.clip(height_in, 3.0, 2.0 * width_in))), facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    views = (("sagittal", image[centre[0]], ids[centre[0]], 1), ("coronal", image[:, centre[1]], ids[:, centre[1]], 0))
    outline = [patheffects.withStroke(linewidth=3.5, foreground="black")]
    top = image.shape[2] - 1
    for ax, (name, img, lab, across) in zip(axes, views):
        ax.imshow(_rgb(_display(img), _display(lab), window), interpolation="nearest")
        present = [int(v) for v in np.unique(lab) if v and not is_disc(int(v))]
        for vid, com in zip(present, ndimage.center_of_mass(lab > 0, lab, present)):
            ax.text(img.shape[0] - 1 if name == "sagittal" else com[0], top - com[1],
                    labels.names.get(vid, str(vid)), color="yellow", fontsize=8, ha="right", va="center")
        for entry, tip in screws:
            ends = grid.lps_to_index(np.array([entry, tip], float))
            ax.plot(ends[:, across], top - ends[:, 2], color=SCREW_COLOR, linewidth=2.0,
                    solid_capstyle="round", path_effects=outline)
        ax.set_xlim(-0.5, img.shape[0] - 0.5)
        ax.set_ylim(img.shape[1] - 0.5, -0.5)
        ax.set_title(f"{title} {name}".strip())
        ax.axis("off")
    fig.tight_layout()
    return fig


def save_sagittal_coronal(scan: Volume, labels: LabelMap, path: Path, title: str = "") -> Path:
    """``sagittal_coronal_figure`` as a PNG, written atomically."""
    fig = sagittal_coronal_figure(scan, labels, title)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=70, format="png")
    return Path(path)


def sagittal_coronal_png(scan: Volume, labels: LabelMap, screws=(), dpi: int = 80) -> bytes:
    """``sagittal_coronal_figure`` with ``screws`` as palette PNG bytes (for pages that inline their pictures)."""
    fig = sagittal_coronal_figure(scan, labels, screws=screws, width_in=10.0)
    fig.set_dpi(dpi)
    return _png_bytes(fig)
