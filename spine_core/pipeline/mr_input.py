"""What the MR networks see, built the same way in training and at inference.

An MR has no absolute scale: each scan is scaled by its own percentiles. The networks read sagittal
slices of an LPS-aligned grid (array axes i->L, j->P, k->S): in-plane 1 mm, across the slices the
scan's own slice distance (sagittal MR is often 3-4 mm thick), three adjacent slices as channels.
"""
from __future__ import annotations

import numpy as np

from spine_core.pipeline.preprocess import canonical_grid, resample_image
from spine_core.volume import Volume

IN_PLANE_MM = 1.0
PERCENTILES = (0.5, 99.5)


def slice_distance_mm(volume: Volume) -> float:
    """The scan's voxel edge along left-right (the axis its direction points most along L)."""
    axis = int(np.argmax(np.abs(volume.direction[0])))
    return float(volume.spacing[axis])


def mr_grid(volume: Volume) -> Volume:
    """The LPS grid the MR networks read: the scan's own slice distance across, 1 mm in-plane."""
    return canonical_grid(volume, (max(slice_distance_mm(volume), IN_PLANE_MM), IN_PLANE_MM, IN_PLANE_MM))


def normalise(array: np.ndarray) -> np.ndarray:
    """Intensities scaled by the percentiles of the non-zero voxels to [0, 1], float32."""
    values = array[array > 0] if np.any(array > 0) else array
    sample = values[:: max(1, values.size // 2_000_000)]
    lo, hi = (float(v) for v in np.percentile(sample, PERCENTILES))
    if hi <= lo:
        hi = lo + 1.0
    return ((np.clip(array.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def mr_input(volume: Volume, grid: Volume | None = None) -> tuple[np.ndarray, Volume]:
    """The scan normalised on its MR grid (L, P, S), and that grid."""
    grid = grid or mr_grid(volume)
    return normalise(resample_image(volume, grid, fill=0.0)), grid


def slice_stack(array: np.ndarray, index: int, stride: int = 1) -> np.ndarray:
    """Slices ``index - stride``, ``index``, ``index + stride`` of the L axis (clamped at the ends)
    as three channels: (3, P, S)."""
    n = array.shape[0]
    picks = [min(max(index + d * stride, 0), n - 1) for d in (-1, 0, 1)]
    return np.stack([array[i] for i in picks])
