"""A pedicle's axis (spine_core.measure.pedicles): the straight line through its isthmus centre, as two angles
in the vertebra's frame (u left, v posterior, w superior).

- Cranio-caudal tilt: the line through the mid-heights of the sections across the pedicle near its isthmus
  (within TILT_MM, at most TILT_TALLER times as tall: not the body in front or a facet behind), as the
  median of their pairwise slopes (Theil-Sen: a mid-height is good to a fraction of a voxel); kept within
  TILT_RANGE_DEG of the reference (parallel to the superior endplate), and the reference itself where the
  pedicle is too short to show a slope.
- Medial angle: from BEHIND_MM behind the isthmus to ``ahead`` mm into the body, the largest soft minimum of
  the clearance measured sideways (in the transverse plane, both ways, from the bone's occupancy): centred
  in the pedicle's width, and where a short pedicle leaves the angle open, clear of the body's side walls.
  Endplates play no part in it.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

BEHIND_MM = 6.0                # a pedicle reaches about this far behind its isthmus
TILT_MM, TILT_TALLER = 6.0, 1.3
TILT_RANGE_DEG = 15.0
SOFT_MM = 0.3                  # softness of the minimum over the line
REACH_MM, RAY_STEP_MM = 20.0, 0.5


def direction(frame, sign: float, theta_deg, phi_deg) -> np.ndarray:
    """Unit forward direction(s) at medial angle ``theta`` (+: the tip towards the midline) and cranio-caudal
    tilt ``phi`` (+: the tip cranial), on the side ``sign`` (+1 left, -1 right)."""
    th, ph = np.radians(np.asarray(theta_deg, float)), np.radians(np.asarray(phi_deg, float))
    th, ph = np.broadcast_arrays(th, ph)
    local = np.stack([-sign * np.sin(th) * np.cos(ph), -np.cos(th) * np.cos(ph), np.sin(ph)], axis=-1)
    return local @ np.asarray(frame).T


def angles(frame, sign: float, axis) -> tuple[float, float]:
    """(medial angle, tilt) in degrees of a forward unit ``axis``."""
    local = np.asarray(frame).T @ np.asarray(axis, float)
    theta = np.degrees(np.arctan2(-sign * local[0], -local[1]))
    phi = np.degrees(np.arcsin(np.clip(local[2], -1.0, 1.0)))
    return float(theta), float(phi)


def tilt(ts, local, heights, k: int, reference: float) -> float:
    """The cranio-caudal tilt (degrees, + cranial forwards) through the sections' mid-heights (``local``:
    their centres in the vertebra's frame, with ``heights``; ``k`` the isthmus's); see the module's text."""
    keep = ~np.isnan(heights) & (heights <= TILT_TALLER * heights[k]) & (np.abs(ts - ts[k]) <= TILT_MM)
    pieces, _ = ndimage.label(keep)
    local = np.asarray(local)[pieces == pieces[k]]
    forward, up = -local[:, 1], local[:, 2]
    i, j = np.triu_indices(len(local), 1)
    apart = np.abs(forward[j] - forward[i]) >= 2.0
    if apart.sum() < 10:
        return reference
    slope = float(np.degrees(np.arctan(np.median((up[j] - up[i])[apart] / (forward[j] - forward[i])[apart]))))
    return float(np.clip(slope, reference - TILT_RANGE_DEG, reference + TILT_RANGE_DEG))


def medial_angle(bone, point, frame, sign: float, phi: float, ahead: float) -> float:
    """The medial angle (degrees) of the axis through ``point`` at tilt ``phi``; see the module's text.
    ``bone`` has ``occupancy(points)``."""
    up = np.asarray(frame)[:, 2]
    ts = np.arange(-BEHIND_MM, ahead + 1e-6, 0.5)
    thetas = np.arange(-20.0, 61.0, 2.0)
    for _ in range(2):
        dirs = direction(frame, sign, thetas, phi)
        rays = np.cross(dirs, up)
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        clear = both_ways(bone, point + ts[None, :, None] * dirs[:, None], rays)
        score = -SOFT_MM * np.log(np.exp(-(clear - clear.min()) / SOFT_MM).sum(axis=1)) + clear.min()
        best = float(thetas[int(np.argmax(score))])
        thetas = best + np.arange(-1.5, 1.51, 0.5)
    return best


def both_ways(bone, points, rays) -> np.ndarray:
    """Per point (lines x points x 3), the smaller distance (mm) to where the bone ends along +- the line's
    ray (lines x 3); 0 outside bone, REACH_MM at most."""
    offsets = np.arange(0.0, REACH_MM + RAY_STEP_MM / 2, RAY_STEP_MM)
    out = None
    for sign in (1.0, -1.0):
        occ = bone.occupancy(points[:, :, None] + sign * offsets[None, None, :, None] * rays[:, None, None])
        below = occ < 0.5
        first = np.where(below.any(axis=-1), below.argmax(axis=-1), len(offsets) - 1)
        prev = np.take_along_axis(occ, np.maximum(first - 1, 0)[..., None], -1)[..., 0]
        here = np.take_along_axis(occ, first[..., None], -1)[..., 0]
        frac = np.clip((prev - 0.5) / np.maximum(prev - here, 1e-6), 0.0, 1.0)
        dist = np.where(first > 0, (first - 1 + frac) * RAY_STEP_MM, 0.0)
        out = dist if out is None else np.minimum(out, dist)
    return out
