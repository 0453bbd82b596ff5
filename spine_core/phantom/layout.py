"""Where each vertebra sits: the spinal curve (lordosis, kyphosis, scoliosis) and per-level frames.

The body-centre line is integrated upwards from the S1 endplate in arc length ``s``. Sagittal
curvature is a tangent angle that changes linearly inside each region, so each region is a
circular arc whose total turn is its Cobb-like angle (lumbar lordosis, thoracic kyphosis,
cervical lordosis). Scoliosis adds half-sine lateral arches whose end slopes give the requested
Cobb angle, with axial rotation of the vertebrae towards the convexity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spine_core.phantom.anatomy import LevelDims, dims_for, level_sequence
from spine_core.labels import NAME_TO_ID

STEP_MM = 0.5


@dataclass
class Placement:
    name: str
    vid: int
    dims: LevelDims
    s: float                 # arc length of the body centre above the S1 endplate
    centre: np.ndarray       # LPS mm
    rot: np.ndarray          # columns: local u (left), v (posterior), w (superior) in LPS
    fracture: float = 0.0    # anterior height loss, 0..0.6
    disc_below: float = 0.0  # disc height under this vertebra, mm (0: none)
    flags: set = field(default_factory=set)


@dataclass
class SpineCurve:
    s: np.ndarray
    pos: np.ndarray          # (n, 3) LPS mm
    tangent: np.ndarray      # (n, 3) unit, pointing superior
    axial_deg: np.ndarray    # axial rotation at each s

    def at(self, s: float):
        i = float(np.clip((s - self.s[0]) / STEP_MM, 0, len(self.s) - 1.001))
        i0, f = int(i), i - int(i)
        pos = self.pos[i0] * (1 - f) + self.pos[i0 + 1] * f
        t = self.tangent[i0] * (1 - f) + self.tangent[i0 + 1] * f
        return pos, t / np.linalg.norm(t), self.axial_deg[i0] * (1 - f) + self.axial_deg[i0 + 1] * f

    def frame(self, s: float, extra_axial_deg: float = 0.0):
        pos, t, axial = self.at(s)
        return pos, frame_from_tangent(t, axial + extra_axial_deg)


def frame_from_tangent(t, axial_deg: float) -> np.ndarray:
    """Local axes (u left, v posterior, w = t) with v kept as close to +P as the tangent allows."""
    v = np.array([0.0, 1.0, 0.0]) - t[1] * t
    v /= np.linalg.norm(v)
    u = np.cross(v, t)
    a = np.radians(axial_deg)
    u, v = np.cos(a) * u + np.sin(a) * v, -np.sin(a) * u + np.cos(a) * v
    return np.column_stack([u, v, t])


@dataclass(frozen=True)
class CurveShape:
    sacral_slope_deg: float = 38.0
    lumbar_lordosis_deg: float = 50.0
    thoracic_kyphosis_deg: float = 38.0
    cervical_lordosis_deg: float = 22.0
    scoliosis_cobb_deg: float = 0.0
    scoliosis_apex: str = "T8"
    scoliosis_right: bool = True      # convex to the patient's right, the common thoracic curve
    rotation_per_cobb: float = 0.45   # apical axial rotation, degrees per Cobb degree


def stack_levels(names, scale: dict[str, float], disc_override: dict[str, float] | None = None):
    """Arc length of each body centre, walking up from the S1 endplate."""
    s = 0.0
    centres, discs = {}, {}
    for name in reversed(names):
        d = dims_for(name)
        k = scale.get(name, 1.0)
        disc = 0.0 if name == "C1" else d.disc_h * k
        disc = (disc_override or {}).get(name, disc)
        discs[name] = disc
        s += disc
        centres[name] = s + d.body_h * k / 2
        s += d.body_h * k
    return centres, discs, s


def build_curve(names, centres, top_s: float, shape: CurveShape) -> SpineCurve:
    s = np.arange(-140.0, top_s + 40.0, STEP_MM)
    first_thoracic = centres["T1"] + 10
    last_thoracic = centres[[n for n in names if n.startswith("T")][-1]] - 12
    lumbar_mid = 0.45 * last_thoracic
    kyphosis_apex = 0.5 * (first_thoracic + last_thoracic)
    ss, ll, tk, cl = (shape.sacral_slope_deg, shape.lumbar_lordosis_deg,
                      shape.thoracic_kyphosis_deg, shape.cervical_lordosis_deg)
    # Two thirds of the lordosis sits at L4-S1 (Bernhardt & Bridwell 1989); kyphosis peaks mid-chest.
    knots_s = [0.0, lumbar_mid, last_thoracic, kyphosis_apex, first_thoracic, top_s]
    knots_a = [ss, ss - 0.67 * ll, ss - ll, ss - ll + 0.5 * tk, ss - ll + tk, ss - ll + tk - cl]
    sag = np.radians(np.interp(s, knots_s, knots_a))
    # Below S1 the sacrum carries on with the slope of its endplate.
    dy, dz = -np.sin(sag), np.cos(sag)
    x = scoliosis_offset(s, centres, shape)
    y = np.cumsum(dy) * STEP_MM
    z = np.cumsum(dz) * STEP_MM
    i0 = int(np.argmin(np.abs(s)))
    pos = np.column_stack([x, y - y[i0], z - z[i0]])
    tangent = np.column_stack([np.gradient(x, STEP_MM), dy, dz])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    pos, tangent = _lie_supine(pos, tangent, s, centres.get("C7", top_s))
    amp = np.max(np.abs(x)) if np.any(x) else 1.0
    axial = shape.rotation_per_cobb * shape.scoliosis_cobb_deg * (x / amp)
    return SpineCurve(s, pos, tangent, axial)


def _lie_supine(pos, tangent, s, s_top):
    """Turn the column so the S1 endplate and C7 line up along the table (scanner z), as in a
    supine patient whose sacrum and upper back rest on the table."""
    top = pos[int(np.argmin(np.abs(s - s_top)))]
    ang = np.arctan2(-top[1], top[2])          # how far C7 leans forwards of S1
    c, si = np.cos(ang), np.sin(ang)
    rot = np.array([[1, 0, 0], [0, c, si], [0, -si, c]])
    return pos @ rot.T, tangent @ rot.T


def scoliosis_offset(s, centres, shape: CurveShape) -> np.ndarray:
    """Left-right offset (LPS x) of the body-centre line; zero without scoliosis."""
    x = np.zeros_like(s)
    if shape.scoliosis_cobb_deg <= 0 or shape.scoliosis_apex not in centres:
        return x
    apex = centres[shape.scoliosis_apex]
    length = 190.0 if shape.scoliosis_apex[0] == "T" else 150.0
    sign = -1.0 if shape.scoliosis_right else 1.0   # patient right is LPS -x
    arches = [(apex - length / 2, length, shape.scoliosis_cobb_deg, sign)]
    # A compensating counter-curve below (and a smaller one above) keeps the head over the pelvis.
    low = 0.75 * length
    arches.append((apex - length / 2 - low, low, 0.6 * shape.scoliosis_cobb_deg, -sign))
    high = 0.6 * length
    arches.append((apex + length / 2, high, 0.35 * shape.scoliosis_cobb_deg, -sign))
    for start, span, cobb, sgn in arches:
        amp = span * np.tan(np.radians(cobb) / 2) / np.pi
        inside = (s >= start) & (s <= start + span)
        x[inside] += sgn * amp * np.sin(np.pi * (s[inside] - start) / span)
    return x


def place_vertebrae(names, curve: SpineCurve, centres, discs, scale, jitter_rng) -> list[Placement]:
    out = []
    for name in names:
        pos, rot = curve.frame(centres[name], float(jitter_rng.normal(0, 1.5)))
        dims = dims_for(name).scaled(scale.get(name, 1.0))
        out.append(Placement(name, NAME_TO_ID[name], dims, centres[name], pos, rot,
                             disc_below=discs[name]))
    return out


def default_names(thoracic: int, lumbar: int) -> list[str]:
    return level_sequence(thoracic, lumbar)
