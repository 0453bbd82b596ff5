"""Which voxels a slice view shows, and where, for any input orientation (pure numpy, no Qt).

The array is seen through its nearest-axis reorientation to (L, P, S): a transposed, flipped
numpy *view*, no resampling (an oblique scan is shown on its own grid, the way ITK-SNAP and
3D Slicer's "nearest axis" mode do). In that canonical index space the radiological display
convention is fixed:

- axial:    screen right = patient left (+L), screen down = posterior (+P), so anterior is up
- sagittal: screen right = posterior (+P),     screen down = inferior (-S), so anterior is left
- coronal:  screen right = patient left (+L), screen down = inferior (-S)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANES = ("axial", "sagittal", "coronal")


@dataclass(frozen=True)
class _PlaneAxes:
    normal: int       # canonical axis the slice index runs along
    row: int          # canonical axis along screen rows (downwards)
    row_flipped: bool  # rows run against that axis (superior at the top)
    col: int          # canonical axis along screen columns (rightwards)


_AXES = {
    "axial": _PlaneAxes(normal=2, row=1, row_flipped=False, col=0),
    "sagittal": _PlaneAxes(normal=0, row=2, row_flipped=True, col=1),
    "coronal": _PlaneAxes(normal=1, row=2, row_flipped=True, col=0),
}


def _nearest_axes(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """perm[a]: array axis closest to LPS axis a; flip[a]: that array axis points against it."""
    weights = np.abs(direction).copy()      # rows: LPS axes, columns: array axes
    perm = np.full(3, -1)
    for _ in range(3):                      # greedy assignment, strongest alignment first
        lps_axis, array_axis = np.unravel_index(np.argmax(weights), weights.shape)
        perm[lps_axis] = array_axis
        weights[lps_axis, :] = -1
        weights[:, array_axis] = -1
    flip = np.array([direction[a, perm[a]] < 0 for a in range(3)])
    return perm, flip


class SliceGeometry:
    """Maps between array indices, canonical (L, P, S) indices, LPS mm and slice pixels."""

    def __init__(self, affine: np.ndarray, shape) -> None:
        self.affine = np.asarray(affine, dtype=np.float64)
        self.shape = tuple(int(n) for n in shape)
        spacing = np.linalg.norm(self.affine[:3, :3], axis=0)
        self.perm, self.flip = _nearest_axes(self.affine[:3, :3] / spacing)
        self.canonical_shape = tuple(self.shape[p] for p in self.perm)
        self.canonical_spacing = spacing[self.perm]

    # --- arrays -------------------------------------------------------------------------------
    def canonical(self, array: np.ndarray) -> np.ndarray:
        """A (L, P, S)-ordered view of ``array`` (no copy)."""
        view = np.transpose(array, self.perm)
        flips = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return view[flips]

    def slice_pixels(self, canonical: np.ndarray, plane: str, index: int) -> np.ndarray:
        """The 2D image of one slice, rows top to bottom and columns left to right on screen."""
        axes = _AXES[plane]
        image = np.take(canonical, int(index), axis=axes.normal)
        remaining = [a for a in range(3) if a != axes.normal]
        image = np.transpose(image, (remaining.index(axes.row), remaining.index(axes.col)))
        return image[::-1] if axes.row_flipped else image

    # --- sizes --------------------------------------------------------------------------------
    def slice_count(self, plane: str) -> int:
        return self.canonical_shape[_AXES[plane].normal]

    def image_size(self, plane: str) -> tuple[int, int]:
        """(rows, columns) of a slice image."""
        axes = _AXES[plane]
        return self.canonical_shape[axes.row], self.canonical_shape[axes.col]

    def normal(self, plane: str) -> np.ndarray:
        """The unit LPS normal of ``plane``'s slices (the array axis they step along)."""
        column = self.affine[:3, self.perm[_AXES[plane].normal]]
        return column / np.linalg.norm(column)

    def slice_spacing(self, plane: str) -> float:
        """The distance (mm) between two slices of ``plane``."""
        return float(self.canonical_spacing[_AXES[plane].normal])

    def pixel_spacing(self, plane: str) -> tuple[float, float]:
        """(row height, column width) in mm: a pixel is drawn this tall and wide."""
        axes = _AXES[plane]
        return float(self.canonical_spacing[axes.row]), float(self.canonical_spacing[axes.col])

    # --- coordinates --------------------------------------------------------------------------
    def canonical_to_index(self, canonical_ijk) -> np.ndarray:
        c = np.asarray(canonical_ijk, dtype=np.float64)
        index = np.empty(3)
        for a in range(3):
            n = self.shape[self.perm[a]]
            index[self.perm[a]] = (n - 1 - c[a]) if self.flip[a] else c[a]
        return index

    def index_to_canonical(self, ijk) -> np.ndarray:
        ijk = np.asarray(ijk, dtype=np.float64)
        c = ijk[self.perm]
        sizes = np.array(self.shape)[self.perm]
        return np.where(self.flip, sizes - 1 - c, c)

    def lps_to_canonical(self, lps) -> np.ndarray:
        inv = np.linalg.inv(self.affine)
        return self.index_to_canonical(inv[:3, :3] @ np.asarray(lps, dtype=np.float64) + inv[:3, 3])

    def canonical_to_lps(self, canonical_ijk) -> np.ndarray:
        return self.affine[:3, :3] @ self.canonical_to_index(canonical_ijk) + self.affine[:3, 3]

    def slice_of(self, plane: str, lps) -> int:
        """The slice of ``plane`` nearest to an LPS point, clamped into the volume."""
        c = self.lps_to_canonical(lps)[_AXES[plane].normal]
        return int(np.clip(np.rint(c), 0, self.slice_count(plane) - 1))

    def pixel_of(self, plane: str, lps) -> tuple[float, float]:
        """(row, column) of an LPS point projected onto ``plane``'s image (pixel centres at .0)."""
        return self.canonical_to_pixel(plane, self.lps_to_canonical(lps))

    def canonical_to_pixel(self, plane: str, canonical_ijk) -> tuple[float, float]:
        axes, c = _AXES[plane], np.asarray(canonical_ijk, dtype=np.float64)
        row = c[axes.row]
        if axes.row_flipped:
            row = self.canonical_shape[axes.row] - 1 - row
        return float(row), float(c[axes.col])

    def pixel_to_lps(self, plane: str, index: int, row: float, col: float) -> np.ndarray:
        """The LPS point under image pixel (row, col) of slice ``index``."""
        axes = _AXES[plane]
        c = np.zeros(3)
        c[axes.normal] = index
        c[axes.row] = (self.canonical_shape[axes.row] - 1 - row) if axes.row_flipped else row
        c[axes.col] = col
        return self.canonical_to_lps(c)
