"""One vertebra's bone on a fine isotropic grid: the pedicle finder cuts sections through it and the screw
planner reads its signed distance to the cortex.

The label's mask (holes filled) is resampled by linear interpolation onto an LPS-aligned grid of
``step`` mm (the label's finest spacing, kept within 0.5-1 mm) and thresholded at one half: on a scan
with thick slices the surface then runs half-way between slices instead of in 3 mm stairs. The signed
distance to the surface (positive inside, mm) is two Euclidean distance transforms of that mask, each
less half a grid step (the surface lies half-way between an inside and an outside cell).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from spine_core.volume import LabelMap

MARGIN_MM = 10.0           # around the label: a screw partly outside it is still measured


class BoneGrid:
    def __init__(self, labels: LabelMap, label_id: int, box=None, margin_mm: float = MARGIN_MM):
        if box is None:
            box = ndimage.find_objects((labels.array == label_id).astype(np.uint8))[0]
        self.label_id = label_id
        self.step = float(np.clip(np.min(np.abs(labels.spacing)), 0.5, 1.0))
        corners = np.array([[s.stop - 0.5 if k else s.start - 0.5 for k, s in zip(bits, box)]
                            for bits in np.ndindex(2, 2, 2)], float)
        lps = labels.index_to_lps(corners)
        lo, hi = lps.min(axis=0) - margin_mm, lps.max(axis=0) + margin_mm
        # on the label's own voxel centres where it can be (an LPS-aligned label of this spacing): every
        # cell is then a voxel, not a blend of two, and no cell sits exactly half-way between two voxels
        anchor = labels.index_to_lps(np.zeros(3))
        lo = anchor + np.floor((lo - anchor) / self.step) * self.step
        self.origin = lo
        self.shape = tuple(int(n) for n in np.ceil((hi - lo) / self.step) + 1)
        source = (labels.array[box] == label_id).astype(np.float32)
        to_source = np.linalg.inv(labels.affine)
        start = to_source[:3, :3] @ lo + to_source[:3, 3] - np.array([s.start for s in box], float)
        # index coordinates of every cell as a sum of one broadcast term per axis (no (n, 3) array)
        terms = [(to_source[:3, a, None] * self.step * np.arange(n)).astype(np.float32).reshape(
            (3,) + tuple(n if b == a else 1 for b in range(3))) for a, n in enumerate(self.shape)]
        ijk = terms[0] + terms[1] + terms[2] + start.astype(np.float32).reshape(3, 1, 1, 1)
        values = ndimage.map_coordinates(source, ijk, order=1, mode="constant", cval=0.0)
        self.mask = ndimage.binary_fill_holes(values >= 0.5)
        # linear between the label's voxels, not re-quantised to this grid; filled holes are bone
        self._occupancy = np.where(self.mask & (values < 0.5), np.float32(1.0), values)
        self._distance: np.ndarray | None = None

    def _index(self, points) -> np.ndarray:
        return ((np.asarray(points, float).reshape(-1, 3) - self.origin) / self.step).T

    def occupancy(self, points) -> np.ndarray:
        """0..1 at LPS points (linear between cells); >= 0.5 is bone."""
        points = np.asarray(points, float)
        out = ndimage.map_coordinates(self._occupancy, self._index(points), order=1, mode="constant", cval=0.0)
        return out.reshape(points.shape[:-1])

    @property
    def signed_distance(self) -> np.ndarray:
        if self._distance is None:
            inside = ndimage.distance_transform_edt(self.mask, sampling=self.step)
            outside = ndimage.distance_transform_edt(~self.mask, sampling=self.step)
            half = 0.5 * self.step
            self._distance = np.where(self.mask, inside - half, half - outside).astype(np.float32)
        return self._distance

    def distance(self, points) -> np.ndarray:
        """Signed distance (mm) from LPS points to the bone's surface: positive inside, negative outside
        (beyond the grid: the nearest border cell's value, at least a margin outside)."""
        points = np.asarray(points, float)
        out = ndimage.map_coordinates(self.signed_distance, self._index(points), order=1, mode="nearest")
        return out.reshape(points.shape[:-1])
