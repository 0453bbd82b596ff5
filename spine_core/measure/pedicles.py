"""Pedicles from a label map: per vertebra and side, the isthmus (the narrowest cross-section of the bone
bridge between the body's posterior wall and the arch beside the canal), its width and height, the
pedicle axis, its angles and its length through the vertebra. Qt-free.

Method, in the vertebra's frame (spine_core.measure.vertebra: u left, v posterior, w superior; its w
taken from the vertebra's own endplates where both agree, ``own_frame``):

1. The canal: along the mid-sagittal strip, the gap between the body's posterior wall and the lamina.
2. A seed per side: in the coronal section 30 % of the way back through the canal, the largest piece of
   bone on that side; the middle of its deepest ridge (2D distance transform).
3. Sections across the current axis (first: straight forward, -v) every 0.5 mm, from behind the canal's
   middle to in front of the posterior wall, 0.25 mm pixels, from the bone resampled onto a fine grid
   (spine_core.measure.bone_grid); in each the height and width chords through the pedicle's centre
   (spine_core.measure.pedicle_sections).
4. The isthmus: the section of least width (smoothed over 1.5 mm) whose centre lies between the posterior
   wall and the canal's middle, in the run of sections around the current point. Its width and height:
   the medians over it and its two neighbours. Its centre: the centre of the largest circle inside it (a
   screw's safest point; off the chords' middle in an oblique or kidney-shaped section).
5. The axis through that centre (spine_core.measure.pedicle_axis): its cranio-caudal tilt from the
   sections' mid-heights, its medial angle the one keeping farthest from the side walls. Steps 3-5 are
   repeated with the new axis (at most three times; the last pass measures across the final axis).
6. Along the axis: the entry (where it leaves the bone behind the isthmus), the anterior cortex (where it
   leaves the body in front), and the crossing of the posterior wall's coronal plane (the body's depth
   along the axis is from there).

Angles: medial angulation is the axis' angle to the vertebra's sagittal plane in its transverse plane
(positive: the tip converges towards the midline); cranio-caudal is its angle to the superior
endplate (positive: the tip points cranially).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from spine_core.labels import SACRUM
from spine_core.measure.bone_grid import BoneGrid
from spine_core.measure.pedicle_axis import angles, direction, medial_angle, tilt
from spine_core.measure.pedicle_sections import deepest, sections, smooth
from spine_core.measure.vertebra import VertebraMeasures, measure_vertebrae
from spine_core.volume import LabelMap

SIDES = {"left": 1.0, "right": -1.0}       # sign along u (u points to the patient's left)
AXIS_STEP_MM = 0.5
SEED_AT = 0.3                              # seed section: this far back through the canal
CORRIDOR_AHEAD = 0.6                       # the medial angle's corridor: this fraction of the body's depth
ENDPLATE_MAX_DEG = 30.0
ENDPLATES_AGREE_DEG = 10.0
ITERATIONS = 3


@dataclass
class Pedicle:
    label_id: int
    name: str
    side: str
    found: bool = False
    width_mm: float | None = None                   # mediolateral, at the isthmus
    height_mm: float | None = None                  # craniocaudal, at the isthmus
    isthmus_lps: list[float] | None = None          # the isthmus' centre
    axis_lps: list[float] | None = None             # unit, from the entry towards the body
    entry_lps: list[float] | None = None            # the axis leaves the posterior cortex here
    anterior_cortex_lps: list[float] | None = None  # ... and the body's anterior cortex here
    length_mm: float | None = None                  # entry to anterior cortex along the axis
    body_depth_mm: float | None = None              # posterior wall to anterior cortex along the axis
    medial_angle_deg: float | None = None
    craniocaudal_angle_deg: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Canal:
    wall: float        # v of the body's posterior wall on the midline
    lamina: float      # v of the lamina's front on the midline


@dataclass
class _Vertebra:
    """One vertebra as the pedicle finder sees it."""
    grid: BoneGrid
    measures: VertebraMeasures
    centre: np.ndarray         # LPS, the frame's origin
    frame: np.ndarray          # columns u, v, w
    canal: _Canal

    def local(self, points) -> np.ndarray:
        return (np.asarray(points) - self.centre) @ self.frame


def _r(x, digits=2):
    return [round(float(v), digits) for v in x]


def measure_pedicles(labels: LabelMap, vertebrae: list[VertebraMeasures] | None = None,
                     grids: dict[int, BoneGrid] | None = None) -> list[Pedicle]:
    """Both pedicles of every measured vertebra from C3 down (not the atlas and axis, not the sacrum).
    ``grids`` (label id -> BoneGrid) reuses bone grids already made; new ones are added to it."""
    vertebrae = measure_vertebrae(labels) if vertebrae is None else vertebrae
    grids = {} if grids is None else grids
    boxes = ndimage.find_objects(labels.array.astype(np.int32, copy=False))
    out = []
    for m in vertebrae:
        if m.label_id < 3 or m.label_id == SACRUM or not m.frame:        # not C1, C2 or the sacrum
            continue
        if not m.body_found:
            why = m.notes[0] if m.notes else "the vertebral body was not found"
            out += [Pedicle(m.label_id, m.name, side, notes=[why]) for side in SIDES]
            continue
        if m.label_id not in grids:
            grids[m.label_id] = BoneGrid(labels, m.label_id, boxes[m.label_id - 1])
        out += vertebra_pedicles(grids[m.label_id], m)
    return out


def vertebra_pedicles(grid: BoneGrid, m: VertebraMeasures) -> list[Pedicle]:
    frame = own_frame(m)
    centre = np.asarray(m.centroid, float)
    canal = _canal(grid, centre, frame)
    out = []
    for side, sign in SIDES.items():
        p = Pedicle(m.label_id, m.name, side)
        if canal is None:
            p.notes.append("no spinal canal behind the body")
        else:
            _find(_Vertebra(grid, m, centre, frame, canal), p, sign)
        out.append(p)
    return out


def own_frame(m: VertebraMeasures) -> np.ndarray:
    """The vertebra's frame (columns u, v, w), its w set by its own endplates where both were measured and
    agree (within ENDPLATES_AGREE_DEG, and within ENDPLATE_MAX_DEG of the centroid chain): next to a
    vertebra cut by the scan's edge the chain's direction can be 20 degrees off."""
    frame = np.column_stack([m.frame[k] for k in "uvw"])
    if m.superior_endplate is None or m.inferior_endplate is None:
        return frame
    a, b = np.asarray(m.superior_endplate.normal, float), np.asarray(m.inferior_endplate.normal, float)
    limit = np.cos(np.radians(ENDPLATE_MAX_DEG))
    if a @ b < np.cos(np.radians(ENDPLATES_AGREE_DEG)) or a @ frame[:, 2] < limit or b @ frame[:, 2] < limit:
        return frame
    w = (a + b) / np.linalg.norm(a + b)
    v = frame[:, 1] - (frame[:, 1] @ w) * w
    v /= np.linalg.norm(v)
    return np.column_stack([np.cross(v, w), v, w])


def _canal(grid: BoneGrid, centre, frame) -> _Canal | None:
    lps = np.argwhere(grid.mask) * grid.step + grid.origin
    local = (lps - centre) @ frame
    strip = local[np.abs(local[:, 0]) <= 3.0, 1]
    if len(strip) < 20:
        return None
    bins = np.arange(strip.min(), strip.max() + 2 * grid.step, 1.0)
    filled = np.histogram(strip, bins=bins)[0] > 0
    gap = np.flatnonzero(~filled)
    if len(gap) == 0:
        return None
    after = np.flatnonzero(filled[gap[0]:])
    if len(after) == 0:
        return None
    return _Canal(float(bins[gap[0]]), float(bins[gap[0] + after[0]]))


def _seed(grid: BoneGrid, centre, frame, sign: float, canal: _Canal) -> np.ndarray | None:
    """The deepest point of the largest piece of bone on this side of the seed section."""
    v = canal.wall + SEED_AT * (canal.lamina - canal.wall)
    u = sign * np.arange(1.0, 40.0, 0.5)
    w = np.arange(-25.0, 25.0, 0.5)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    local = np.stack([uu, np.full_like(uu, v), ww], axis=-1)
    bone = grid.occupancy(centre + local @ frame.T) >= 0.5
    pieces, count = ndimage.label(bone)
    if count == 0:
        return None
    largest = pieces == int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1
    depth = ndimage.distance_transform_edt(largest)
    top = depth >= depth.max() - 1.0                    # the ridge of a tall piece: its middle
    return centre + frame @ local[top].mean(axis=0)


def _find(vx: _Vertebra, p: Pedicle, sign: float) -> None:
    grid, frame = vx.grid, vx.frame
    seed = _seed(grid, vx.centre, frame, sign, vx.canal)
    if seed is None:
        p.notes.append("no bone beside the canal")
        return
    point, axis = seed, -frame[:, 1]
    normal = _endplate_normal(vx.measures, frame)
    ahead = float(np.clip(CORRIDOR_AHEAD * (vx.measures.body_depth_mm or 30.0), 10.0, 25.0))
    phi = reference = _endplate_tilt(normal, frame)
    for n in range(ITERATIONS + 1):              # the last pass measures across the final axis
        found = _isthmus(vx, point, axis, sign, reference)
        if found is None:
            p.notes.append("no pedicle found between the body and the lamina")
            return
        moved = float(np.linalg.norm(found[0] - point))
        point, width, height, phi = found
        if n == ITERATIONS:
            break
        turned = direction(frame, sign, medial_angle(grid, point, frame, sign, phi, ahead), phi)
        settled = n > 0 and moved < 0.25 and turned @ axis > np.cos(np.radians(1.0))
        axis = turned
        if settled:                              # measured across (all but) this axis already
            break
    p.found = True
    p.width_mm, p.height_mm = round(width, 2), round(height, 2)
    p.isthmus_lps, p.axis_lps = _r(point), _r(axis, 4)
    _trace(vx, p, point, axis)
    p.medial_angle_deg = round(angles(frame, sign, axis)[0], 1)
    if normal is None:
        p.notes.append("no usable superior endplate: the cranio-caudal angle is against the vertebra's "
                       "transverse plane")
        normal = frame[:, 2]
    p.craniocaudal_angle_deg = round(float(np.degrees(np.arcsin(np.clip(axis @ normal, -1, 1)))), 1)


def _endplate_normal(m: VertebraMeasures, frame) -> np.ndarray | None:
    """The superior endplate's normal, if it was measured and lies within ENDPLATE_MAX_DEG of the spine's
    axis (a plane fitted to something else is no reference)."""
    if m.superior_endplate is None:
        return None
    n = np.asarray(m.superior_endplate.normal, float)
    return n if n @ frame[:, 2] >= np.cos(np.radians(ENDPLATE_MAX_DEG)) else None


def _endplate_tilt(normal, frame) -> float:
    """The tilt (degrees) in the vertebra's frame of a forward line parallel to the superior endplate: the
    start, and what is kept where the pedicle is too short to show its own."""
    if normal is None:
        return 0.0
    n = frame.T @ normal
    return float(np.degrees(np.arctan2(n[1], n[2])))


def _isthmus(vx: _Vertebra, point, axis, sign: float, reference: float):
    """(centre, width, height, tilt) of the narrowest section along ``axis`` whose centre lies between the
    posterior wall and the canal's middle, in the run of sections around ``point``: its deepest point, its
    chords, and the pedicle's tilt there (spine_core.measure.pedicle_axis.tilt); None if there is none."""
    zone = (vx.canal.wall - 1.0, 0.5 * (vx.canal.wall + vx.canal.lamina) + 2.0)
    lateral = sign * vx.frame[:, 0]
    along = float(axis @ -vx.frame[:, 1])
    v0 = float(vx.local(point)[1])
    ts = np.arange(-(zone[1] + 3.0 - v0) / along, (v0 - zone[0] + 3.0) / along, AXIS_STEP_MM)
    widths, heights, centres = sections(vx.grid, point, axis, lateral, ts)
    wide = smooth(widths)
    local = vx.local(centres)
    valid = ~np.isnan(wide)
    runs, _ = ndimage.label(valid)
    inside = valid & (local[:, 1] >= zone[0]) & (local[:, 1] <= zone[1])
    if not inside.any():
        return None
    nearest = np.flatnonzero(inside)[np.argmin(np.abs(ts[inside]))]
    candidates = inside & (runs == runs[nearest])
    k = int(np.flatnonzero(candidates)[np.argmin(wide[candidates])])
    near = slice(max(k - 1, 0), k + 2)          # the reported values: medians of three (one may be a step)
    width = float(np.nanmedian(widths[near]))
    height = float(np.nanmedian(np.where(np.isnan(widths), np.nan, heights)[near]))
    phi = tilt(ts, local, smooth(heights), k, reference)
    return deepest(vx.grid, centres[k], axis, lateral, width, height), width, height, phi


def _trace(vx: _Vertebra, p: Pedicle, point, axis) -> None:
    """Entry, anterior cortex, length and depth in the body along the axis through ``point``."""
    back = _exit(vx.grid, point, -axis)
    front = _exit(vx.grid, point, axis)
    entry, tip = point - back * axis, point + front * axis
    p.entry_lps, p.anterior_cortex_lps = _r(entry), _r(tip)
    p.length_mm = round(back + front, 2)
    speed = float(axis @ -vx.frame[:, 1])
    wall = float(vx.local(point)[1] - vx.canal.wall) / speed    # from the isthmus to the posterior wall
    p.body_depth_mm = round(front - max(wall, 0.0), 2)


def _exit(grid: BoneGrid, point, way, reach: float = 90.0) -> float:
    """Distance (mm) from ``point`` along the unit vector ``way`` to where the bone ends (interpolated)."""
    ts = np.arange(0.0, reach, 0.2)
    occ = grid.occupancy(point + ts[:, None] * way)
    out = np.flatnonzero(occ < 0.5)
    if len(out) == 0 or out[0] == 0:
        return 0.0
    i = out[0]
    return float(ts[i - 1] + 0.2 * (occ[i - 1] - 0.5) / max(occ[i - 1] - occ[i], 1e-6))
