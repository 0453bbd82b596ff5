"""How every model sees a scan, shared by training and inference so the two cannot diverge.

A model card names a spacing and an intensity window. The scan is resampled (SimpleITK, linear) onto
an LPS-aligned grid at that spacing, array axes i -> L, j -> P, k -> S whatever the scan's own
orientation; outside the scan reads ``FILL_HU``; HU are clipped to the window and scaled to [0, 1]
as float32. ``training.data`` imports these functions; nothing here may import torch.

Memory: only the part of the scan that the target grid covers is handed to SimpleITK, so a
512 x 512 x 1000 scan resampled onto a 1 mm crop costs that crop, not another copy of the scan.
"""
from __future__ import annotations

import numpy as np

from spine_core.resample import resample_to_grid
from spine_core.volume import Volume, affine_from_geometry

FILL_HU = -1024.0   # air: what lies outside the scan


def _corners(shape) -> np.ndarray:
    return np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float) * (np.asarray(shape) - 1)


def scan_bounds_mm(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The LPS box (lowest, highest corner) that the scan's voxel centres span."""
    lps = volume.index_to_lps(_corners(volume.shape))
    return lps.min(axis=0), lps.max(axis=0)


def box_grid(lo_mm, hi_mm, spacing_mm, cover: bool = True) -> Volume:
    """An LPS-aligned grid (identity direction) at ``spacing_mm`` from ``lo_mm`` reaching ``hi_mm``
    (``cover``: the last voxel lies at or beyond it, so results reach the scan's border; else at or
    before it, as training's grids). A broadcast zero array: a grid costs no memory however large."""
    lo, hi = np.asarray(lo_mm, float), np.asarray(hi_mm, float)
    spacing = np.broadcast_to(np.asarray(spacing_mm, float), (3,))
    rounding = np.ceil if cover else np.floor
    shape = tuple(max(int(rounding((h - l) / s - 1e-6 if cover else (h - l) / s)) + 1, 1)
                  for l, h, s in zip(lo, hi, spacing))
    return Volume(np.broadcast_to(np.uint8(0), shape), affine_from_geometry(spacing, None, lo))


def canonical_grid(volume: Volume, spacing_mm) -> Volume:
    """An LPS-aligned grid (identity direction) at ``spacing_mm`` covering the volume's extent."""
    lo, hi = scan_bounds_mm(volume)
    return box_grid(lo, hi, spacing_mm, cover=False)


def scale_window(array: np.ndarray, window) -> np.ndarray:
    """HU clipped to ``window`` = [low, high] and scaled to [0, 1], float32 (never float64)."""
    lo, hi = float(window[0]), float(window[1])
    return ((np.clip(array.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def index_box(volume: Volume, grid: Volume) -> tuple[slice, ...] | None:
    """The scan's voxels that linear interpolation onto ``grid`` can touch (one voxel of margin
    beyond the floor/ceil so the crop resamples exactly like the whole scan); None if disjoint."""
    idx = volume.lps_to_index(grid.index_to_lps(_corners(grid.shape)))
    lo = np.maximum(np.floor(idx.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 2, volume.shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def crop_volume(volume: Volume, box: tuple[slice, ...]) -> Volume:
    """A view of ``volume`` restricted to the index ``box``, with its affine moved accordingly."""
    affine = np.array(volume.affine)
    affine[:3, 3] = volume.index_to_lps([s.start for s in box])
    return Volume(volume.array[box], affine, volume.metadata)


def resample_image(volume: Volume, grid: Volume, fill: float = FILL_HU) -> np.ndarray:
    """The scan's values on ``grid`` (linear; ``fill`` outside), in the scan's own dtype."""
    box = index_box(volume, grid)
    if box is None:
        return np.full(grid.shape, fill, dtype=volume.array.dtype)
    if all(s.stop - s.start == n for s, n in zip(box, volume.shape)):
        part = volume
    else:
        part = crop_volume(volume, box)
    return np.asarray(resample_to_grid(part, grid, fill=fill, labels=False).array)


def model_input(volume: Volume, grid: Volume, window) -> np.ndarray:
    """The float32 array a model sees: the scan on ``grid``, windowed and scaled to [0, 1]."""
    return scale_window(resample_image(volume, grid), window)


def centre_weight_map(shape, centre, sigma: float) -> np.ndarray:
    """Gaussian weight map on a patch: 1 at ``centre`` (voxel index), falling towards the edges
    (the second input channel of the M2 vertebra segmentation; same as training's)."""
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    d2 = sum((g - float(c)) ** 2 for g, c in zip(grids, centre))
    return np.exp(-d2 / (2.0 * float(sigma) ** 2)).astype(np.float32)


def crop(array: np.ndarray, origin, size, fill=0) -> np.ndarray:
    """``array[origin : origin + size]`` with ``fill`` outside the array."""
    out = np.full(tuple(size), fill, dtype=array.dtype)
    src = tuple(slice(max(o, 0), min(o + s, n)) for o, s, n in zip(origin, size, array.shape))
    dst = tuple(slice(sl.start - o, sl.stop - o) for sl, o in zip(src, origin))
    if all(sl.stop > sl.start for sl in src):
        out[dst] = array[src]
    return out
