"""A loaded scan described in a few lines, for the CLI (`spineplan info`, `spineplan quickstart`)."""
from __future__ import annotations

import numpy as np


def print_volume(volume) -> None:
    """What `spineplan info` prints of a loaded scan (quickstart prints it for the demo too)."""
    meta = volume.metadata
    size = " x ".join(str(s) for s in volume.shape)
    spacing = " x ".join(f"{s:.4g}" for s in volume.spacing)
    extent = " x ".join(f"{e:.0f}" for e in volume.physical_extent_mm())
    lo, hi = float(np.min(volume.array)), float(np.max(volume.array))
    unit = " HU" if meta.modality in ("CT", "") else ""
    print(f"Modality:     {meta.modality or 'unknown'}")
    if meta.description:
        print(f"Description:  {meta.description}")
    if meta.series_uid:
        print(f"Series UID:   {meta.series_uid}")
    print(f"Size:         {size} voxels")
    print(f"Spacing:      {spacing} mm")
    print(f"Extent:       {extent} mm")
    print(f"Orientation:  {volume.orientation} (array axes point to; LPS = DICOM default)")
    print(f"Origin (LPS): {', '.join(f'{v:.2f}' for v in volume.origin)} mm")
    print(f"Value range:  {lo:.0f} to {hi:.0f}{unit}")
    for warning in meta.warnings:
        print(f"Warning:      {warning}")
