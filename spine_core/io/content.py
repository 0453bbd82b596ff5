"""What the voxels themselves say about a scan: its modality when no header names it, and whether it
shows anything at all.

A NIfTI, NRRD or MHA file rarely carries a modality, yet the CT and MR models read different
things: a CT in Hounsfield units always holds fat (about -100 HU) or air (-1000 HU), an MR's
intensities are never negative. A file of noise (or a damaged stack) has no spatial structure:
neighbouring voxels of any real scan are strongly correlated, those of noise are not.
Both checks use a strided sample, so they cost milliseconds on a whole-body CT.
``scan_modality`` (header, the user's word, then the values) decides for the analysis and for the display
(spine_core.windowing); it lives here, not in the pipeline, so that the display need not import the pipeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spine_core.errors import UnsupportedImage
from spine_core.volume import Volume

log = logging.getLogger(__name__)

# Hounsfield units below this are fat or air; a CT of a body holds some of either.
HU_FAT = -50.0
# Share of such voxels above which the scan reads as CT; below MR_NEGATIVE_SHARE as MR.
CT_NEGATIVE_SHARE = 0.01
MR_NEGATIVE_SHARE = 1e-4
# Neighbour correlation below which the image holds no structure (white noise: ~0; real CT and MR,
# 5 mm slices included: > 0.8 in-plane).
MIN_STRUCTURE = 0.3
_SAMPLE_VOXELS = 2_000_000


@dataclass(frozen=True)
class ModalityGuess:
    modality: str        # "CT", "MR" or "" (cannot tell)
    reason: str          # one sentence, for the log and the user


def _sample(array: np.ndarray) -> np.ndarray:
    step = max(1, int(round((array.size / _SAMPLE_VOXELS) ** (1 / 3))))
    return np.asarray(array[::step, ::step, ::step], dtype=np.float32)


def guess_modality(volume: Volume) -> ModalityGuess:
    """CT or MR from the intensity distribution, with the reason in words."""
    sample = _sample(volume.array)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return ModalityGuess("", "the scan holds no finite values")
    negative = float(np.mean(finite < HU_FAT))
    if negative >= CT_NEGATIVE_SHARE:
        return ModalityGuess("CT", f"{negative:.0%} of voxels are below {HU_FAT:.0f}, as fat and air are in "
                                   "Hounsfield units")
    if negative <= MR_NEGATIVE_SHARE:
        return ModalityGuess("MR", f"no voxel is below {HU_FAT:.0f} (values "
                                   f"{np.percentile(finite, 1):.0f} to {np.percentile(finite, 99):.0f}), "
                                   "so the values are not Hounsfield units, as in an MR")
    return ModalityGuess("", f"only {negative:.2%} of voxels are below {HU_FAT:.0f}: too few for a CT "
                             "holding fat or air, too many for an MR")


def scan_modality(volume: Volume, modality: str = "") -> tuple[str, list[str]]:
    """"CT" or "MR" for the analysis, and notes for the result on how that was decided. The header's
    Modality wins; ``modality`` (``--modality``) names it for scans
    whose header names none; failing both, the values decide (``guess_modality``)."""
    tagged = (volume.metadata.modality or "").upper()
    said = modality.upper()
    if tagged in ("CT", "MR") and said and said != tagged:
        raise UnsupportedImage(f"The scan's header says {tagged}; it cannot be analysed as {said}. "
                               "Choose the right series, or leave out --modality.")
    if tagged in ("CT", "MR"):
        return tagged, []
    if tagged and not said:
        raise UnsupportedImage(f"This is a {tagged} scan; automatic analysis reads CT and MR. Choose a CT or "
                               "MR series, or say which it is with --modality ct|mr.")
    if said in ("CT", "MR"):
        return said, []
    guess = guess_modality(volume)
    if guess.modality:
        log.info("no modality in the header; read as %s because %s", guess.modality, guess.reason)
        return guess.modality, []
    return "CT", [f"no modality in the header and the values do not say ({guess.reason}); analysed as CT: "
                  "check that this is a CT, or run again with --modality mr"]


def structure(volume: Volume) -> float:
    """The largest correlation between neighbouring voxels along any axis (1: smooth, 0: noise or a
    blank image). Each axis is read at full resolution, the other two strided."""
    array = volume.array
    step = max(1, int(round((array.size / _SAMPLE_VOXELS) ** 0.5)))
    best = 0.0
    for axis in range(3):
        if array.shape[axis] < 2:
            continue
        index = [slice(None, None, step)] * 3
        index[axis] = slice(None)
        a = np.moveaxis(np.asarray(array[tuple(index)], dtype=np.float32), axis, 0)
        first, second = a[:-1].ravel(), a[1:].ravel()
        keep = np.isfinite(first) & np.isfinite(second)
        first, second = first[keep], second[keep]
        if first.size < 2 or first.std() == 0 or second.std() == 0:
            continue
        best = max(best, float(np.corrcoef(first, second)[0, 1]))
    return best
