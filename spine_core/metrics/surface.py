"""Surface distances in millimetres: Hausdorff, HD95 and average symmetric surface distance.

The surface of a mask is its voxels that have a face-neighbour outside it (6-connectivity).
Distances come from a Euclidean distance transform sampled with the voxel spacing, so anisotropic
voxels (e.g. 0.7 x 0.7 x 3 mm) are measured in true millimetres. Both masks are cropped to a box
around the two structures first: the transform then costs the structure's size, not the scan's.
The grid is taken as orthogonal (oblique directions are fine; a sheared affine is not modelled).

Definitions (those of the DeepMind ``surface-distance`` package and MONAI):
- HD   = max of both directed maximum distances.
- HD95 = max of both directed 95th percentiles.
- ASSD = mean of all surface-to-surface distances, both directions pooled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.metrics.overlap import Box

_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class SurfaceDistances:
    hd: float
    hd95: float
    assd: float


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels of a boolean mask (voxels at the array edge count as boundary)."""
    return mask & ~ndimage.binary_erosion(mask, structure=_FACES, border_value=0)


def _directed(from_surface: np.ndarray, to_surface: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from every voxel of ``from_surface`` to the nearest voxel of ``to_surface``."""
    distance = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return distance[from_surface].astype(np.float32)


def surface_distances(ref_mask: np.ndarray, pred_mask: np.ndarray, spacing,
                      percentile: float = 95.0) -> SurfaceDistances | None:
    """Distances between two boolean masks on one grid; None when either is empty."""
    if not ref_mask.any() or not pred_mask.any():
        return None
    ref_surface, pred_surface = surface(ref_mask), surface(pred_mask)
    spacing = tuple(float(s) for s in spacing)
    pred_to_ref = _directed(pred_surface, ref_surface, spacing)
    ref_to_pred = _directed(ref_surface, pred_surface, spacing)
    hd = max(float(pred_to_ref.max()), float(ref_to_pred.max()))
    hd95 = max(float(np.percentile(pred_to_ref, percentile)),
               float(np.percentile(ref_to_pred, percentile)))
    assd = float((pred_to_ref.sum(dtype=np.float64) + ref_to_pred.sum(dtype=np.float64))
                 / (pred_to_ref.size + ref_to_pred.size))
    return SurfaceDistances(hd=hd, hd95=hd95, assd=assd)


def label_surface_distances(ref: np.ndarray, pred: np.ndarray, label: int, box: Box, spacing,
                            percentile: float = 95.0) -> SurfaceDistances | None:
    """Surface distances of one label, computed inside ``box`` (which must hold both structures)."""
    return surface_distances(ref[box] == label, pred[box] == label, spacing, percentile)
