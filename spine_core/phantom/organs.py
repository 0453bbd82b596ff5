"""Soft tissue inside the trunk: lungs, heart, great vessels, airway, abdominal organs, bowel,
bladder, psoas and paraspinal muscles. Ellipsoids and tubes placed relative to the spine.

All are painted before the skeleton, which is painted over them.
"""
from __future__ import annotations

import numpy as np

from spine_core.phantom import sdf as S
from spine_core.phantom.canvas import BoneTissue
from spine_core.phantom.vertebra import canal_centre_v

HU = {"lung": -860.0, "blood": 42.0, "contrast": 260.0, "liver": 58.0, "spleen": 48.0,
      "kidney": 32.0, "kidney_contrast": 170.0, "bowel": 28.0, "gas": -950.0, "fluid": 12.0,
      "muscle": 42.0, "csf": 8.0, "cord": 36.0, "epidural_fat": -85.0, "air": -990.0}

_IDENTITY = np.eye(3)


class Anchors:
    """World points placed relative to the body-centre line at a level (x absolute, y relative)."""

    def __init__(self, curve, landmarks):
        self.curve, self.landmarks = curve, landmarks

    def has(self, level: str) -> bool:
        return level in self.landmarks

    def at(self, level: str, dx=0.0, dy=0.0, dz=0.0, follow_x: float = 0.0) -> np.ndarray:
        pos, _, _ = self.curve.at(self.landmarks[level])
        return np.array([follow_x * pos[0] + dx, pos[1] + dy, pos[2] + dz])


def ellipsoid(canvas, centre, radii, value, texture: float = 0.0):
    found = canvas.local_box(centre, _IDENTITY, np.asarray(radii) + 2)
    if found is None:
        return
    sl, (u, v, w) = found
    d = S.ellipsoid(u, v, w, (0, 0, 0), radii)
    if texture:
        value = value + texture * canvas.texture(sl)
    canvas.paint(sl, d, value)


def tube(canvas, points, radius, value, label: int = 0):
    """A tube through ``points``, painted segment by segment (each in its own small box)."""
    for i in range(len(points) - 1):
        p0, p1 = np.asarray(points[i]), np.asarray(points[i + 1])
        r = radius[i] if np.ndim(radius) else radius
        r1 = radius[i + 1] if np.ndim(radius) else radius
        lo = np.minimum(p0, p1) - max(r, r1) - 2
        hi = np.maximum(p0, p1) + max(r, r1) + 2
        found = canvas.box(lo, hi)
        if found is None:
            continue
        sl, (x, y, z) = found
        d = S.capsule(x, y, z, p0, p1, r, r1)
        # Joints between segments would be painted twice; keep each voxel to its nearest segment.
        if i + 1 < len(points) - 1:
            nxt = S.capsule(x, y, z, p1, points[i + 2], r1)
            d = np.where(d <= nxt, d, np.float32(50))
        canvas.paint(sl, d, value, label)


def paint_organs(canvas, anchors: Anchors, placements, contrast: bool, rng) -> None:
    a = anchors
    if a.has("T6"):
        _thorax(canvas, a, contrast, rng)
    if a.has("L1"):
        _abdomen(canvas, a, contrast, rng)
    _vessels(canvas, a, contrast)
    _muscles(canvas, a, placements)


def _thorax(canvas, a, contrast, rng):
    for side in (-1.0, 1.0):
        ellipsoid(canvas, a.at("T6", side * 72, -28, -5), (60, 82, 125), HU["lung"], texture=25)
    # Vessels in the lungs: bright branching dots approximated by thresholded texture.
    ellipsoid(canvas, a.at("T8", 18, -78, 5), (62, 48, 55), HU["blood"], texture=6)
    trachea = [a.at("C5", 0, -30), a.at("C7", 0, -32), a.at("T2", 0, -42), a.at("T4", 0, -45)]
    tube(canvas, trachea, 9.0, HU["air"])
    for side in (-1.0, 1.0):
        tube(canvas, [a.at("T4", 0, -45), a.at("T5", side * 35, -40, -8)], 6.0, HU["air"])


def _abdomen(canvas, a, contrast, rng):
    liver = HU["liver"] + (45 if contrast else 0)
    ellipsoid(canvas, a.at("T11", -62, -45, 5), (88, 82, 85), liver, texture=5)
    ellipsoid(canvas, a.at("T11", 88, 25, 0), (30, 45, 55), HU["spleen"] + (40 if contrast else 0), 5)
    ellipsoid(canvas, a.at("T11", 45, -75, -10), (45, 35, 45), HU["fluid"], texture=5)
    ellipsoid(canvas, a.at("T11", 45, -95, 15), (28, 14, 20), HU["gas"])
    kidney = HU["kidney_contrast"] if contrast else HU["kidney"]
    for side in (-1.0, 1.0):
        ellipsoid(canvas, a.at("L1", side * 68, 18, -12), (26, 24, 55), kidney, texture=5)
    if not a.has("L4"):
        return
    top, bottom = a.at("L2", 0, 0), a.at("S1", 0, 0, -80) if a.has("S1") else a.at("L5", 0, 0, -60)
    for _ in range(34):
        z = rng.uniform(bottom[2], top[2])
        c = np.array([rng.uniform(-105, 105), top[1] - rng.uniform(45, 115), z])
        ellipsoid(canvas, c, rng.uniform(14, 26, 3), HU["bowel"] + rng.uniform(-10, 15), texture=8)
    for _ in range(26):
        z = rng.uniform(bottom[2], top[2])
        c = np.array([rng.uniform(-100, 100), top[1] - rng.uniform(50, 120), z])
        ellipsoid(canvas, c, rng.uniform(5, 16, 3), HU["gas"])
    if a.has("S1"):
        ellipsoid(canvas, a.at("S1", 0, -85, -95), (42, 34, 35), HU["fluid"], texture=3)


def _vessels(canvas, a, contrast):
    blood = HU["contrast"] if contrast else HU["blood"]
    levels = [n for n in ("T4", "T6", "T8", "T10", "T12", "L2", "L4") if a.has(n)]
    if len(levels) >= 2:
        aorta = [a.at(n, 20 if n[0] == "T" else 12, -24 if n[0] == "T" else -30, follow_x=0.8)
                 for n in levels]
        if a.has("T6"):
            aorta = [a.at("T7", 8, -70, 0), a.at("T4", 6, -55, 18), a.at("T4", 18, -22, 10)] + aorta
        tube(canvas, aorta, 12.0, blood)
        if a.has("L4") and a.has("S1"):
            for side in (-1.0, 1.0):
                tube(canvas, [aorta[-1], a.at("S1", side * 45, -35, -35)], 6.5, blood)
    ivc = [a.at(n, -24, -28, follow_x=0.8) for n in ("T11", "L1", "L3", "L4") if a.has(n)]
    if len(ivc) >= 2:
        tube(canvas, ivc, 11.0, HU["blood"] + (60 if contrast else 0))
    neck = [n for n in ("C2", "C4", "C6", "T1") if a.has(n)]
    if len(neck) >= 2:
        for side in (-1.0, 1.0):
            tube(canvas, [a.at(n, side * 24, -14, follow_x=1) for n in neck], 4.0, blood)
            tube(canvas, [a.at(n, side * 33, -8, follow_x=1) for n in neck], 6.0, HU["blood"])


def _muscles(canvas, a, placements):
    """Paraspinal muscles behind the laminae, psoas beside the lumbar bodies."""
    back, radii = [], []
    for p in placements:
        if p.name == "C1":
            continue
        d = p.dims
        lateral = 0.55 * max(d.canal_w, 16) + 9
        r = 13.0 if p.name[0] == "C" else (16.0 if p.name[0] == "T" else 24.0)
        for side in (-1.0, 1.0):
            back.append((side, p.centre + p.rot @ np.array([side * lateral, 0.4 * d.body_d + d.canal_d
                                                              + 14, 0.0]), r))
        radii.append(r)
    for side in (-1.0, 1.0):
        pts = [c for s, c, _ in back if s == side]
        rs = [r for s, _, r in back if s == side]
        if len(pts) >= 2:
            tube(canvas, pts, rs, HU["muscle"])
    lumbar = [p for p in placements if p.name[0] == "L"]
    if len(lumbar) >= 2:
        for side in (-1.0, 1.0):
            pts, rs = [], []
            for i, p in enumerate(lumbar):
                r = 7.0 + 16.0 * i / max(len(lumbar) - 1, 1)
                pts.append(p.centre + np.array([side * (p.dims.body_w / 2 + r * 0.7), 5.0, 0.0]))
                rs.append(r)
            tube(canvas, pts, rs, HU["muscle"])


def paint_canal(canvas, placements) -> None:
    """CSF-filled dural sac with the cord (ending near L1-L2) inside the canal."""
    pts, radii, cord_pts = [], [], []
    for p in placements:
        c = p.centre + p.rot @ np.array([0.0, canal_centre_v(p.dims), 0.0])
        pts.append(c)
        radii.append(0.42 * min(p.dims.canal_w, p.dims.canal_d + 2))
        if p.name[0] in "CT" or p.name == "L1":
            cord_pts.append(c)
    if len(pts) >= 2:
        tube(canvas, pts, radii, HU["csf"])
    if len(cord_pts) >= 2:
        tube(canvas, cord_pts, 4.5, HU["cord"])


CARTILAGE = BoneTissue(cancellous=115.0, cortical=160.0, texture=12.0, cortex_mm=0.8)
