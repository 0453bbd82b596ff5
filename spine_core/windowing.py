"""The grey-level window a scan is shown in: pictures (spine_core.pictures) and the workstation's slices.

A CT is in Hounsfield units, so one fixed bone window fits every CT. An MR's intensities are in arbitrary
units (0..255 in one file, 0..4000 in the next), so its window comes from its own values: percentiles of
the voxels that are not background (an MR's air is ~0), read from a fixed-seed sample of voxels so that a
512 x 512 x 300 volume costs milliseconds and the same scan always gets the same window.
Which a scan is: ``spine_core.io.content.scan_modality`` (the header, else the values), as for the
analysis; a scan of another modality is shown as a CT.
"""
from __future__ import annotations

import numpy as np

from spine_core.errors import UnsupportedImage
from spine_core.io.content import scan_modality
from spine_core.volume import Volume

BONE_WINDOW_HU = (-250.0, 1250.0)           # (low, high): the pictures' CT window
# The workstation's MR presets: (low, high) percentiles of the scan's non-background voxels
MR_WINDOW_PERCENTILES: dict[str, tuple[float, float]] = {
    "MR auto": (1.0, 99.5),
    "MR contrast": (5.0, 98.0),              # narrower: more contrast between soft tissues
}
BACKGROUND_FRACTION = 0.02                  # background: at most this far from the lowest value to the top
_SAMPLE_VOXELS = 200_000
_SEED = 0


def display_modality(volume: Volume) -> str:
    """"CT" or "MR": the scan's grey values are Hounsfield units or not."""
    try:
        modality, _notes = scan_modality(volume)
    except UnsupportedImage:                # another modality (e.g. "OT", "PT"): shown as a CT
        return "CT"
    return modality


def _sample(array: np.ndarray) -> np.ndarray:
    """Finite voxel values, all of them or ``_SAMPLE_VOXELS`` drawn with a fixed seed (any memory layout:
    the picks are indexed, the array is never copied whole)."""
    if array.size <= _SAMPLE_VOXELS:
        values = np.asarray(array, dtype=np.float32).ravel()
    else:
        picks = np.random.default_rng(_SEED).integers(0, array.size, _SAMPLE_VOXELS)
        values = np.asarray(array[np.unravel_index(picks, array.shape)], dtype=np.float32)
    return values[np.isfinite(values)]


def auto_window(volume: Volume | np.ndarray, low_pct: float = 1.0, high_pct: float = 99.5) -> tuple[float, float]:
    """(low, high) grey values: the ``low_pct`` and ``high_pct`` percentiles of the voxels above the
    background (values within BACKGROUND_FRACTION of the range above the lowest value, e.g. an MR's 0)."""
    array = volume.array if isinstance(volume, Volume) else np.asarray(volume)
    values = _sample(array)
    if values.size == 0:
        return 0.0, 1.0
    floor, top = np.percentile(values, [0.0, 99.9])
    tissue = values[values > floor + BACKGROUND_FRACTION * (top - floor)]
    if tissue.size == 0:                    # a blank or two-valued image
        tissue = values
    low, high = (float(v) for v in np.percentile(tissue, [low_pct, high_pct]))
    if high <= low:
        high = low + 1.0
    return low, high


def display_window(volume: Volume, modality: str | None = None) -> tuple[float, float]:
    """(low, high) to show ``volume`` in: the bone window for a CT, ``auto_window`` for an MR.
    ``modality``: "CT" or "MR" when known (else the scan's header, then its values, decide)."""
    modality = display_modality(volume) if modality is None else modality.upper()
    return auto_window(volume) if modality == "MR" else BONE_WINDOW_HU


def width_level(low: float, high: float) -> tuple[float, float]:
    """A (low, high) window as the (width, level) the slice views take."""
    return float(high - low), float(low + high) / 2.0
