"""Real vertebra shapes inside the phantom: label masks of real vertebrae, handed in as data
(this package never reads a dataset), scaled to the level's size, slightly deformed, posed on the
spinal curve like the analytic vertebra and painted with the same bone tissue model.

A shape is a binary mask in the vertebra's own frame (u to the patient's left, v posterior,
w superior, origin at the body centre) with the size of its body. Its signed distance (from the
mask by a Euclidean distance transform, lightly smoothed) stands in for the analytic signed
distance, so the painter gives it the same cortical shell, cancellous core and partial volume.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from spine_core.labels import NAME_TO_ID
from spine_core.phantom.anatomy import dims_for, level_sequence, region_of
from spine_core.volume import Volume

FAR_MM = 50.0            # "far outside", as Canvas.banded uses
SCALE_LIMITS = (0.55, 1.6)
ANISOTROPY = 1.15        # width and depth factors stay within this of their mean: real proportions
ORDER = level_sequence(13, 6)    # C1..T12, T13, L1..L5, L6: neighbours by position
NEIGHBOUR_REACH = 2              # a missing level borrows a shape at most this many levels away


@dataclass(frozen=True, eq=False)
class VertebraShape:
    """One real vertebra. ``mask`` (0/1) lies on an axis-aligned grid whose affine maps voxel
    indices to local mm (u left, v posterior, w superior; the body centre at 0). ``body_mm`` is
    the body's width, depth and height (mm), used to scale the shape to a level; None for C1."""
    mask: Volume
    body_mm: tuple[float, float, float] | None
    source: str = ""

    def __post_init__(self) -> None:
        direction = self.mask.direction
        if not np.allclose(direction, np.diag(np.diag(direction)), atol=1e-6) or np.any(np.diag(direction) <= 0):
            raise ValueError("a vertebra shape's mask must lie on a grid along its own u, v, w axes")
        if not self.mask.array.any():
            raise ValueError(f"vertebra shape {self.source or ''} is empty")

    @cached_property
    def sdf(self) -> np.ndarray:
        """Signed distance to the mask surface (mm, negative inside), float32 on the mask's grid."""
        inside = self.mask.array > 0
        spacing = self.mask.spacing
        half = 0.5 * float(np.mean(spacing))
        outside = ndimage.distance_transform_edt(~inside, sampling=spacing)
        depth = ndimage.distance_transform_edt(inside, sampling=spacing)
        sdf = np.where(inside, half - depth, outside - half).astype(np.float32)
        # Voxel staircases would print as ridges in the cortical shell: smooth over ~0.7 mm.
        return ndimage.gaussian_filter(sdf, 0.7 / spacing, mode="nearest")


class ShapeLibrary:
    """Real vertebra shapes by level name ('L3', 'T13', ...)."""

    def __init__(self, shapes: Mapping[str, Sequence[VertebraShape]]) -> None:
        self.shapes = {name.upper(): list(found) for name, found in shapes.items() if found}

    def __len__(self) -> int:
        return sum(len(found) for found in self.shapes.values())

    def levels(self) -> list[str]:
        return sorted(self.shapes, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

    def candidates(self, level: str) -> list[VertebraShape]:
        """Shapes of ``level``, else of the nearest levels of its region (C1 and C2 only their own)."""
        level = level.upper()
        if level in self.shapes or level in ("C1", "C2") or level not in ORDER:
            return list(self.shapes.get(level, []))
        i = ORDER.index(level)
        for reach in range(1, NEIGHBOUR_REACH + 1):
            near = [ORDER[j] for j in (i - reach, i + reach) if 0 <= j < len(ORDER)]
            found = [s for n in near if n not in ("C1", "C2") and region_of(n) == region_of(level)
                     for s in self.shapes.get(n, [])]
            if found:
                return found
        return []


def choose_shape(library: ShapeLibrary | None, level: str, p: float, seed: int) -> VertebraShape | None:
    """The real shape drawn for ``level`` with probability ``p``, or None (analytic). Each level
    draws from its own stream of the phantom's seed: the same seed gives the same choices,
    whatever the field of view or the other levels."""
    if library is None or p <= 0:
        return None
    found = library.candidates(level)
    if not found:
        return None
    rng = np.random.default_rng([int(seed), 0x5EA1, NAME_TO_ID.get(level.upper(), 0)])
    if rng.random() >= p:
        return None
    return found[int(rng.integers(len(found)))]


def pose_rng(seed: int, level: str) -> np.random.Generator:
    """The stream a level's deformation is drawn from (separate from the choice's)."""
    return np.random.default_rng([int(seed), 0xDEF0, NAME_TO_ID.get(level.upper(), 0)])


@dataclass(frozen=True, eq=False)
class Pose:
    """Local mm -> shape mm: ``shape = inverse @ (x - displacement(x))``; ``forward`` = A @ S."""
    forward: np.ndarray       # 3x3: scale to the level, a few percent of random affine, maybe a mirror
    waves: np.ndarray         # (3, k, 5): per axis, k plane waves (direction xyz, wavenumber, phase)
    amplitude: np.ndarray     # (3, k) mm

    @cached_property
    def inverse(self) -> np.ndarray:
        return np.linalg.inv(self.forward)

    @property
    def distance_scale(self) -> float:
        return float(abs(np.linalg.det(self.forward)) ** (1.0 / 3.0))

    def displacement(self, u, v, w, axis: int):
        out = 0.0
        for (kx, ky, kz, k, phase), amp in zip(self.waves[axis], self.amplitude[axis]):
            out = out + np.float32(amp) * np.sin(np.float32(k) * (np.float32(kx) * u + np.float32(ky) * v
                                                                  + np.float32(kz) * w) + np.float32(phase))
        return out


def level_scale(p, shape: VertebraShape) -> np.ndarray:
    """Per-axis factors taking the real body to the size the analytic vertebra of this level has."""
    d = p.dims
    if shape.body_mm is None or d.body_w <= 0:             # C1: no body; follow the level's jitter
        return np.full(3, d.body_h / dims_for(p.name).body_h)
    bw, bd, bh = shape.body_mm
    mean = np.sqrt(d.body_w / bw * d.body_d / bd)
    su, sv = (np.clip(d.body_w / bw, mean / ANISOTROPY, mean * ANISOTROPY),
              np.clip(d.body_d / bd, mean / ANISOTROPY, mean * ANISOTROPY))
    # The height fills the level's slot between its discs; C2's measured height carries the dens.
    sw = mean if p.name == "C2" else d.body_h / bh
    return np.clip(np.array([su, sv, sw]), *SCALE_LIMITS)


def random_pose(p, shape: VertebraShape, rng, deform: float = 0.03) -> Pose:
    """Scale to the level, then a random affine (``deform``: a few percent of shear and stretch),
    a left-right mirror half of the time, and a smooth elastic field of ~``deform`` x body width."""
    affine = np.eye(3) + rng.normal(0.0, deform / 2, (3, 3))
    if rng.random() < 0.5:
        affine = affine @ np.diag([-1.0, 1.0, 1.0])
    forward = affine @ np.diag(level_scale(p, shape))
    k = 3
    directions = rng.normal(size=(3, k, 3))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    wavenumbers = 2 * np.pi / rng.uniform(25.0, 70.0, (3, k, 1))
    phases = rng.uniform(0, 2 * np.pi, (3, k, 1))
    size = max(p.dims.body_w, 25.0)
    amplitude = rng.normal(0.0, deform * size / np.sqrt(k), (3, k))
    return Pose(forward, np.concatenate([directions, wavenumbers, phases], axis=2), amplitude)


def posed_box(shape: VertebraShape, pose: Pose):
    """Local half-extents and centre offset holding the posed shape (for Canvas.local_box)."""
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    local = shape.mask.index_to_lps(corners * (np.asarray(shape.mask.shape) - 1)) @ pose.forward.T
    reach = 3.0 * float(np.abs(pose.amplitude).sum(axis=1).max()) + 2.0
    lo, hi = local.min(axis=0) - reach, local.max(axis=0) + reach
    return (hi - lo) / 2, (hi + lo) / 2


def posed_sdf(shape: VertebraShape, pose: Pose, planes=()):
    """``fn(u, v, w)``: the posed shape's signed distance (local mm), cut by ``planes``
    (``(normal, offset, v_front)``: keep ``normal . x + offset <= 0`` where ``v < v_front``, the
    disc midplanes that stop a body reaching into its neighbour's)."""
    sdf = shape.sdf
    to_index = np.linalg.inv(shape.mask.affine)[:3]
    m = (to_index[:, :3] @ pose.inverse).astype(np.float32)
    t = to_index[:, 3].astype(np.float32)
    gain = np.float32(pose.distance_scale)

    def fn(u, v, w):
        u, v, w = np.broadcast_arrays(u, v, w)
        x = [a - pose.displacement(u, v, w, i) for i, a in enumerate((u, v, w))]
        idx = np.stack([m[r, 0] * x[0] + m[r, 1] * x[1] + m[r, 2] * x[2] + t[r] for r in range(3)])
        out = ndimage.map_coordinates(sdf, idx.reshape(3, -1), order=1, mode="constant", cval=FAR_MM,
                                      prefilter=False).reshape(u.shape)
        out *= gain
        for normal, offset, v_front in planes:
            cut = normal[0] * u + normal[1] * v + normal[2] * w + np.float32(offset)
            out = np.where(v < v_front, np.maximum(out, cut), out)
        return out

    return fn


def disc_planes(placements, i: int, sacrum_top=None):
    """Midplanes of the discs above and below placement ``i``, in its local frame, as
    ``posed_sdf`` takes them; ``sacrum_top`` = (S1 endplate centre, its frame) under the last."""
    p = placements[i]
    planes = []
    neighbours = []
    if i > 0 and placements[i - 1].name != "C1":
        a = placements[i - 1]
        neighbours.append((a.centre - a.rot[:, 2] * a.dims.body_h / 2, a.rot[:, 2], 1.0))
    if i + 1 < len(placements):
        b = placements[i + 1]
        if p.name != "C1":
            neighbours.append((b.centre + b.rot[:, 2] * b.dims.body_h / 2, b.rot[:, 2], -1.0))
    elif sacrum_top is not None:
        neighbours.append((sacrum_top[0], sacrum_top[1][:, 2], -1.0))
    for plate, axis, side in neighbours:
        own = p.centre + side * p.rot[:, 2] * p.dims.body_h / 2
        normal = side * (p.rot[:, 2] + axis)
        normal /= np.linalg.norm(normal)
        mid = 0.5 * (own + plate)
        local_normal = p.rot.T @ normal
        planes.append((local_normal.astype(np.float32), float(normal @ (p.centre - mid)),
                       0.5 * p.dims.body_d))
    return planes


def paint_real_vertebra(canvas, p, tissue, shape: VertebraShape, rng, planes=()) -> None:
    """Paint ``shape`` for placement ``p``: posed, labelled ``p.vid``, cortex and core as ``tissue``."""
    pose = random_pose(p, shape, rng)
    half, offset = posed_box(shape, pose)
    found = canvas.local_box(p.centre, p.rot, half, offset)
    if found is None:
        return
    sl, local = found
    d = canvas.banded(posed_sdf(shape, pose, planes), local, margin=2.0 + 2.0 * canvas.ramp)
    canvas.paint_bone(sl, d, tissue, p.vid)
