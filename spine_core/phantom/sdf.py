"""Signed distance primitives (mm; negative inside) on float32 arrays.

Shapes are unions of these; the distance (not just inside/outside) gives the cortical shell
thickness and an analytic partial-volume fraction for free.
"""
from __future__ import annotations

import numpy as np


def clamp(a, lo, hi):
    """np.clip without its overhead (it dominated profiles on float32 boxes)."""
    out = np.maximum(a, lo)
    return np.minimum(out, hi, out=out if isinstance(out, np.ndarray) else None)


def ellipse2(x, y, a: float, b: float):
    """Approximate signed distance to an ellipse: f / |grad f|, exact on the boundary."""
    a, b = np.maximum(a, 1e-3), np.maximum(b, 1e-3)
    f = (x / a) ** 2 + (y / b) ** 2 - 1.0
    grad = 2.0 * np.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2) + 1e-3
    # Far outside, f/|grad| overestimates the distance; the second bound keeps it usable.
    return np.minimum(f / grad, 0.5 * (a + b) * f)


def extrude(d2, w, half_h):
    """A 2D distance extruded along w between -half_h and +half_h (rounded rims)."""
    dz = np.abs(w) - half_h
    outside = np.sqrt(np.maximum(d2, 0) ** 2 + np.maximum(dz, 0) ** 2)
    return outside + np.minimum(np.maximum(d2, dz), 0)


def slab(w, lo, hi):
    return np.maximum(lo - w, w - hi)


def smooth_union(a, b, k: float):
    """Union with a fillet of radius ~k, like bone where processes meet."""
    h = clamp(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def capsule(x, y, z, p0, p1, r0: float, r1: float | None = None, flat: float = 1.0):
    """Distance to a tapered capsule from p0 to p1 (radii r0, r1).

    ``flat`` < 1 squashes the cross-section along z (e.g. flat processes and ribs).
    """
    r1 = r0 if r1 is None else r1
    p0 = np.asarray(p0, np.float32)
    d = np.asarray(p1, np.float32) - p0
    length2 = float(d @ d) + 1e-6
    px, py, pz = x - p0[0], y - p0[1], z - p0[2]
    t = clamp((px * d[0] + py * d[1] + pz * d[2]) / length2, 0.0, 1.0)
    qx, qy, qz = px - t * d[0], py - t * d[1], pz - t * d[2]
    if flat != 1.0:
        qz = qz / flat
    return np.sqrt(qx * qx + qy * qy + qz * qz) - (r0 + (r1 - r0) * t)


def ellipsoid(x, y, z, c, radii):
    rx, ry, rz = radii
    x, y, z = x - c[0], y - c[1], z - c[2]
    f = np.sqrt((x / rx) ** 2 + (y / ry) ** 2 + (z / rz) ** 2)
    return (f - 1.0) * min(radii)
