"""Sections across a pedicle (spine_core.measure.pedicles): cut perpendicular to an axis through the bone
(spine_core.measure.bone_grid), 0.25 mm pixels, WIDE_HALF_MM to each side and TALL_HALF_MM up and down.

In each section, from its centre (or the nearest bone within 2 mm): the height chord (along the section's
craniocaudal axis), the width chord (mediolateral) at the height chord's middle, once more, then both
averaged over the chords within +-BAND_MM, each end interpolated to where the bone's occupancy crosses
one half. A chord that runs off the section is no pedicle's (the section cuts a process or the body).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

PIXEL_MM = 0.25
WIDE_HALF_MM = 12.0        # mediolateral half-size of a section
TALL_HALF_MM = 14.0        # craniocaudal half-size (a tall thoracic pedicle)
BAND_MM = 0.75


def plane(axis, lateral) -> tuple[np.ndarray, np.ndarray]:
    """The section's mediolateral axis (``lateral`` made perpendicular to ``axis``) and its craniocaudal one."""
    m = lateral - (lateral @ axis) * axis
    m /= np.linalg.norm(m)
    return m, np.cross(axis, m)


def _offsets():
    wide = np.arange(-WIDE_HALF_MM, WIDE_HALF_MM + PIXEL_MM / 2, PIXEL_MM)
    tall = np.arange(-TALL_HALF_MM, TALL_HALF_MM + PIXEL_MM / 2, PIXEL_MM)
    return wide, tall


def _run(profile: np.ndarray, i: int) -> tuple[float, float] | None:
    """(start, end) in pixels of the run of profile >= 0.5 holding index i, ends interpolated."""
    n = len(profile)
    if not 0 <= i < n or profile[i] < 0.5:
        return None
    lo, hi = i, i
    while lo > 0 and profile[lo - 1] >= 0.5:
        lo -= 1
    while hi < n - 1 and profile[hi + 1] >= 0.5:
        hi += 1
    if lo == 0 or hi == n - 1:
        return None                             # runs off the section: not a pedicle
    start = lo - (profile[lo] - 0.5) / max(profile[lo] - profile[lo - 1], 1e-6)
    end = hi + (profile[hi] - 0.5) / max(profile[hi] - profile[hi + 1], 1e-6)
    return start, end


def _band(image: np.ndarray, centre: int, across: int, band: int) -> tuple[float, float] | None:
    """Mean length and mean middle of the runs along axis 0 of ``image`` through row ``centre``, in the
    columns ``across`` +- ``band``."""
    runs = [_run(image[:, j], centre) for j in range(across - band, across + band + 1)
            if 0 <= j < image.shape[1]]
    runs = [r for r in runs if r is not None]
    if len(runs) < band + 1:
        return None
    return float(np.mean([b - a for a, b in runs])), float(np.mean([(a + b) / 2 for a, b in runs]))


def _section_chords(image: np.ndarray) -> tuple[float, float, float, float] | None:
    """(width, height, m, h) in pixels of one section (axis 0: mediolateral, 1: craniocaudal); the width
    is NaN where its chord runs off the section; None: no height chord either."""
    ci, cj = image.shape[0] // 2, image.shape[1] // 2
    if image[ci, cj] < 0.5:
        near = np.argwhere(image[ci - 8:ci + 9, cj - 8:cj + 9] >= 0.5)
        if len(near) == 0:
            return None
        i, j = near[np.argmin(np.abs(near - 8).sum(axis=1))] + [ci - 8, cj - 8]
    else:
        i, j = ci, cj
    band = int(round(BAND_MM / PIXEL_MM))
    wide = None
    for _ in range(2):
        tall = _band(image.T, j, i, 0)
        if tall is None:
            return None
        j = int(round(tall[1]))
        wide = _band(image, i, j, 0)
        if wide is None:
            break
        i = int(round(wide[1]))
    tall = _band(image.T, j, i, band)
    if tall is None:
        return None
    wide = _band(image, i, j, band) if wide is not None else None
    return (np.nan, tall[0], i, tall[1]) if wide is None else (wide[0], tall[0], wide[1], tall[1])


def sections(bone, point, axis, lateral, ts):
    """Width, height (mm) and centre (LPS) of the sections at ``point`` + t ``axis`` (NaN: none); ``bone``:
    anything with ``occupancy(points)`` (0..1, >= 0.5 bone), e.g. a BoneGrid."""
    m, h = plane(axis, lateral)
    wide, tall = _offsets()
    mm, hh = np.meshgrid(wide, tall, indexing="ij")
    grid = mm[..., None] * m + hh[..., None] * h
    images = bone.occupancy(point + ts[:, None, None, None] * axis + grid[None])
    widths, heights = np.full(len(ts), np.nan), np.full(len(ts), np.nan)
    centres = np.full((len(ts), 3), np.nan)
    for k, image in enumerate(images):
        chords = _section_chords(image)
        if chords is None:
            continue
        widths[k], heights[k] = chords[0] * PIXEL_MM, chords[1] * PIXEL_MM
        centres[k] = (point + ts[k] * axis + (wide[0] + chords[2] * PIXEL_MM) * m
                      + (tall[0] + chords[3] * PIXEL_MM) * h)
    return widths, heights, centres


def smooth(values: np.ndarray) -> np.ndarray:
    """Mean over each value and its neighbours that are known; NaN stays NaN."""
    known = ~np.isnan(values)
    filled = np.pad(np.where(known, values, 0.0), 1)
    count = np.pad(known.astype(float), 1)
    total = filled[:-2] + filled[1:-1] + filled[2:]
    n = count[:-2] + count[1:-1] + count[2:]
    return np.where(known, total / np.maximum(n, 1.0), np.nan)


def deepest(bone, point, axis, lateral, width: float, height: float) -> np.ndarray:
    """The centre of the largest circle inside the section through ``point`` (the chords' middle) that lies
    within the chords' box (``width`` x ``height`` around it: this pedicle, not the body or a process the
    section also cuts): where a screw keeps farthest from the walls. In an oblique or kidney-shaped
    section it lies off the chords' middle."""
    m, h = plane(axis, lateral)
    wide, tall = _offsets()
    mm, hh = np.meshgrid(wide, tall, indexing="ij")
    inside = bone.occupancy(point + mm[..., None] * m + hh[..., None] * h) >= 0.5
    pieces, _ = ndimage.label(inside)
    ci, cj = len(wide) // 2, len(tall) // 2
    if pieces[ci, cj] == 0:
        return point
    depth = ndimage.distance_transform_edt(pieces == pieces[ci, cj]) * PIXEL_MM
    depth[(np.abs(mm) > width / 2) | (np.abs(hh) > height / 2)] = 0.0
    top = depth >= depth.max() - 0.25
    return point + float(mm[top].mean()) * m + float(hh[top].mean()) * h
