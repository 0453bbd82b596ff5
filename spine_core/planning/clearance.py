"""How far a screw keeps from the cortex, and the Gertzbein-Robbins grade that distance predicts.

The screw is a cylinder from its entry point to its tip. Its clearance is the least signed distance from
its surface to the surface of the vertebra's label: along the axis every 0.25 mm, the signed distance to
the cortex (spine_core.measure.bone_grid: a distance transform of the label's mask, positive in bone) less
the screw's radius. Negative: the screw breaches the cortex by that much.

A screw is graded from where it enters the pedicle (PEDICLE_BEHIND_MM behind the isthmus, across the
pedicle's axis, where that pedicle was found) to its tip: the posterior elements it passes first hold its
head, and a screw there may well run in a groove between two processes, as planned. Nor is the cortex the
screw enters by a breach: until the screw has settled in bone, a point of the axis whose nearest cortex
lies behind it, within ENTRY_CONE_DEG of the axis (the posterior surface it has just passed through), is
not graded, nor, before the screw first reaches bone, one whose nearest cortex lies ahead of it (the
surface it is about to enter). From the first point in bone that is graded on, every point counts: a
pedicle's side walls face sideways, the anterior cortex faces forwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.measure.bone_grid import BoneGrid
from spine_core.measure.pedicle_axis import BEHIND_MM as PEDICLE_BEHIND_MM
from spine_core.measure.pedicles import Pedicle

STEP_MM = 0.25
ENTRY_CONE_DEG = 75.0
# Gertzbein & Robbins 1990: A no breach, B < 2 mm, C 2-4 mm, D 4-6 mm, E beyond
GRADE_LIMITS_MM = ((2.0, "B"), (4.0, "C"), (6.0, "D"))


@dataclass(frozen=True)
class Clearance:
    min_mm: float            # least distance from the screw's surface to the cortex (negative: breach)
    at_mm: float             # where along the screw (from its entry) that is
    graded_from_mm: float    # the first point graded (before it: the screw passing the entry cortex)

    @property
    def grade(self) -> str:
        return gertzbein_robbins(self.min_mm)


def gertzbein_robbins(min_distance_mm: float) -> str:
    """The grade a screw whose surface comes within ``min_distance_mm`` of the cortex (negative: breaches
    it by that much) is expected to get: A none, B < 2 mm, C 2-4 mm, D 4-6 mm, E > 6 mm."""
    breach = -float(min_distance_mm)
    if breach <= 0.0:
        return "A"
    return next((grade for limit, grade in GRADE_LIMITS_MM if breach < limit), "E")


def clearance(grid: BoneGrid, entry, tip, diameter_mm: float, pedicle: Pedicle | None = None) -> Clearance:
    """The clearance of a screw of ``diameter_mm`` from ``entry`` to ``tip`` (LPS mm) in ``grid``'s bone,
    graded from where it enters ``pedicle`` (the vertebra's pedicle on the screw's side, if it was found)
    or else from where it has passed the cortex it enters by."""
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    length = float(np.linalg.norm(tip - entry))
    if length <= 0:
        raise ValueError("a screw's tip must differ from its entry point")
    axis = (tip - entry) / length
    ts = np.append(np.arange(0.0, length, STEP_MM), length)
    points = entry + ts[:, None] * axis
    distance = grid.distance(points)
    graded = _past_entry_cortex(grid, points, axis, distance)
    start = _pedicle_start(pedicle, entry, axis)
    if start is not None and (ts >= start).any():
        graded &= ts >= start
    surface = distance - diameter_mm / 2
    k = int(np.flatnonzero(graded)[np.argmin(surface[graded])])
    return Clearance(round(float(surface[k]), 2), round(float(ts[k]), 2), round(float(ts[graded][0]), 2))


def _pedicle_start(pedicle: Pedicle | None, entry, axis) -> float | None:
    """Where along the screw it crosses the pedicle's posterior end (PEDICLE_BEHIND_MM behind the isthmus,
    across the pedicle's axis); None without a pedicle or for a screw far off its axis."""
    if pedicle is None or not pedicle.found:
        return None
    along = np.asarray(pedicle.axis_lps, float)
    if axis @ along < 0.5:
        return None
    start = np.asarray(pedicle.isthmus_lps, float) - PEDICLE_BEHIND_MM * along
    return max(float((start - entry) @ along / (axis @ along)), 0.0)


def _past_entry_cortex(grid: BoneGrid, points, axis, distance) -> np.ndarray:
    """The points graded where no pedicle says where the screw enters it (see the module's text)."""
    toward = _nearest_cortex_direction(grid, points)           # unit, 0 where it is undecided
    along = toward @ axis
    cone = np.cos(np.radians(ENTRY_CONE_DEG))
    reached = np.maximum.accumulate(distance > 0)
    entering = ((distance > 0) & (along < -cone)) | (~reached & (along > cone))
    inside_graded = np.flatnonzero(reached & ~entering)
    settled = inside_graded[0] if len(inside_graded) else len(points)   # from here on everything counts
    graded = ~entering | (np.arange(len(points)) >= settled)
    if not graded.any():
        graded[:] = True
    return graded


def _nearest_cortex_direction(grid: BoneGrid, points: np.ndarray) -> np.ndarray:
    """Unit vectors from each point towards its nearest cortex (down the signed distance's gradient
    inside bone, up it outside); zero on ridges, where two walls are about as near."""
    h = grid.step
    gradient = np.stack([(grid.distance(points + h * e) - grid.distance(points - h * e)) / (2 * h)
                         for e in np.eye(3)], axis=-1)
    norm = np.linalg.norm(gradient, axis=-1, keepdims=True)
    unit = np.where(norm > 0.3, gradient / np.maximum(norm, 1e-9), 0.0)
    inside = grid.distance(points)[:, None] > 0
    return np.where(inside, -unit, unit)
