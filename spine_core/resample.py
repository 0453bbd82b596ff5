"""Moving images between grids through physical (LPS) space, with SimpleITK."""
from __future__ import annotations

from dataclasses import replace

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

