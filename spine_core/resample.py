"""Moving images between grids through physical (LPS) space, with SimpleITK."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from spine_core.volume import LabelMap, Volume


def resample_to_grid(volume: Volume, grid: Volume, *, labels: bool | None = None,
                     fill: float | None = None) -> Volume:
    """``volume`` sampled on ``grid``'s voxels. Labels use nearest neighbour, images linear."""
    if volume.same_grid(grid, atol_mm=1e-4):
        return volume
    # Imported here, past the same-grid case: training on a GPU host without SimpleITK reads
    # phantoms generated on their model grid and real cases pre-resampled (training/pack.py).
    import SimpleITK as sitk

    from spine_core.io.sitk_image import volume_from_sitk, volume_to_sitk

    is_labels = isinstance(volume, LabelMap) if labels is None else labels
    if fill is None:
        fill = 0.0 if is_labels else float(volume.array.min())
    reference = sitk.Image([int(s) for s in grid.shape], sitk.sitkUInt8)
    reference.SetSpacing(tuple(float(s) for s in grid.spacing))
    reference.SetDirection(tuple(float(v) for v in grid.direction.ravel()))
    reference.SetOrigin(tuple(float(v) for v in grid.origin))
    interp = sitk.sitkNearestNeighbor if is_labels else sitk.sitkLinear
    out = sitk.Resample(volume_to_sitk(volume), reference, sitk.Transform(), interp, fill,
                        sitk.sitkUnknown)
    result = volume_from_sitk(out, volume.metadata)
    array = result.array.astype(volume.array.dtype, copy=False)
    if isinstance(volume, LabelMap):
        return LabelMap(array, grid.affine, volume.metadata, names=dict(volume.names))
    return replace(volume, array=array, affine=grid.affine)



def median_across(array: np.ndarray, grid: Volume, centres_mm: np.ndarray, e1: np.ndarray, e2: np.ndarray,
                  radius_mm: float, outside: float = -1000.0) -> np.ndarray:
    """At each centre (LPS, (k, 3)), the median of ``array`` (on ``grid``, read by linear interpolation)
    over a disc of ``radius_mm`` spanned by the unit vectors ``e1``, ``e2``, sampled every millimetre:
    a profile along a line that a noisy voxel or a small hole does not move. Read straight from the
    array (a float copy of a whole scan per call cost ~0.3 GB)."""
    r = float(radius_mm)
    steps = np.arange(-r, r + 1e-6)
    offsets = np.array([(a, b) for a in steps for b in steps if a * a + b * b <= r * r], float)
    centres = np.asarray(centres_mm, float).reshape(-1, 3)
    samples = centres[:, None, :] + (offsets[:, :1] * np.asarray(e1, float) + offsets[:, 1:] * np.asarray(e2, float))[None]
    index = grid.lps_to_index(samples.reshape(-1, 3)).T
    read = ndimage.map_coordinates(array, index, order=1, mode="constant", cval=outside, output=np.float32)
    return np.median(read.reshape(len(centres), -1), axis=1)
