"""Bones around the spine, not labelled: ribs with costal cartilage, sternum, clavicles, pelvis
and femora. Each is a chain of tubes or a shell, painted in small boxes."""
from __future__ import annotations

import numpy as np

from spine_core.phantom import sdf as S
from spine_core.phantom.canvas import BoneTissue
from spine_core.phantom.organs import CARTILAGE
from spine_core.phantom.vertebra import canal_centre_v

RIB = BoneTissue(cancellous=200.0, cortical=820.0, texture=40.0, cortex_mm=1.0)


def chain(canvas, points, radius, tissue: BoneTissue, flat: float = 1.0) -> None:
    """Bone tube through ``points``; each voxel belongs to its nearest segment only."""
    n = len(points)
    for i in range(n - 1):
        p0, p1 = points[i], points[i + 1]
        r0 = radius[i] if np.ndim(radius) else radius
        r1 = radius[i + 1] if np.ndim(radius) else radius
        pad = max(r0, r1) * max(flat, 1.0) + 2
        found = canvas.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
        if found is None:
            continue
        sl, (x, y, z) = found
        d = S.capsule(x, y, z, p0, p1, r0, r1, flat=flat)
        for j in (i - 1, i + 1):
            if 0 <= j < n - 1:
                rj = radius[j] if np.ndim(radius) else radius
                other = S.capsule(x, y, z, points[j], points[j + 1], rj, flat=flat)
                d = np.where(d <= other if j > i else d < other, d, np.float32(50))
        canvas.paint_bone(sl, d, tissue)


def rib_paths(p, number: int, torso, floating_from: int = 11):
    """Bone and cartilage centre lines of the rib pair of thoracic vertebra ``p`` (rib ``number``)."""
    d = p.dims
    vc = canal_centre_v(d)
    t = torso.at_z(float(p.centre[2]))
    ax, ay = t.ax - t.fat - 0.6 * t.wall - 6, t.ay - t.fat - 0.6 * t.wall - 6
    drop = 28.0 + 9.0 * min(number - 1, 6) + 2.0 * max(number - 7, 0)
    end = {11: 0.52, 12: 0.42, 13: 0.35}.get(number, 0.74 + 0.01 * min(number, 7))
    if number >= floating_from:
        end = min(end, 0.52 if number == floating_from else 0.42)
    paths = []
    for side in (-1.0, 1.0):
        head = p.centre + p.rot @ np.array([side * (d.body_w / 2 + 2), 0.25 * d.body_d, 0.35 * d.body_h])
        tubercle = p.centre + p.rot @ np.array([side * (d.tp_span - 2), vc + d.tp_back - 2, 2.0])
        phis = np.linspace(0.2, end, 9) * np.pi
        arc = [np.array([t.cx + side * ax * np.sin(f), t.cy + ay * np.cos(f),
                         tubercle[2] - drop * (f / np.pi) ** 1.3]) for f in phis]
        arc = [_rotate_about(q, p.centre, p.rot) for q in arc]
        bone = [head, tubercle, *arc]
        cart = []
        if number <= 10 and number < floating_from:
            ends = 0.97 if number <= 7 else 0.9
            rise = 0.0 if number <= 5 else 6.0 * (number - 5)
            cart = [arc[-1]] + [np.array([t.cx + side * ax * np.sin(f) * (0.9 if f > 0.9 * np.pi else 1),
                                          t.cy + ay * np.cos(f), arc[-1][2] + rise * (f / np.pi - end) * 4])
                                for f in np.linspace(end + 0.05, ends, 3) * np.pi]
            cart = [cart[0]] + [_rotate_about(q, p.centre, p.rot) for q in cart[1:]]
        paths.append((bone, cart))
    return paths


def _rotate_about(q, centre, rot):
    """Carry a point with the vertebra's axial rotation (a scoliotic rib hump)."""
    ang = np.arctan2(rot[1, 0], rot[0, 0])
    c, s = np.cos(ang), np.sin(ang)
    rel = q - centre
    return centre + np.array([c * rel[0] - s * rel[1], s * rel[0] + c * rel[1], rel[2]])


def paint_ribs(canvas, placements, torso, missing_last_pair: bool) -> None:
    thoracic = [p for p in placements if p.name[0] == "T"]
    for i, p in enumerate(thoracic):
        number = i + 1
        if missing_last_pair and number == len(thoracic):
            continue
        radius = 3.2 if number == 1 else 3.6
        for bone, cart in rib_paths(p, number, torso):
            chain(canvas, bone, radius, RIB, flat=1.7)
            if cart:
                chain(canvas, cart, 3.4, CARTILAGE, flat=1.5)


def paint_sternum(canvas, anchors, torso) -> None:
    if not (anchors.has("T2") and anchors.has("T9")):
        return
    levels = ["T2", "T3", "T5", "T7", "T9"]
    widths = [26.0, 22.0, 15.0, 14.0, 10.0]
    pts = []
    for n in levels:
        c = anchors.at(n)
        t = torso.at_z(float(c[2]))
        pts.append(np.array([t.cx, t.cy - t.ay + t.fat + 0.5 * t.wall + 6, c[2] - 30.0]))
    sternal = BoneTissue(cancellous=180.0, cortical=700.0, texture=35.0, cortex_mm=1.0)
    for i in range(len(pts) - 1):
        p0, p1 = pts[i], pts[i + 1]
        found = canvas.box(np.minimum(p0, p1) - np.array([30, 10, 2]), np.maximum(p0, p1) + np.array([30, 10, 2]))
        if found is None:
            continue
        sl, (x, y, z) = found
        f = np.clip((z - p0[2]) / (p1[2] - p0[2]), 0, 1)
        yc = p0[1] + (p1[1] - p0[1]) * f
        half = widths[i] + (widths[i + 1] - widths[i]) * f
        d = np.maximum(np.abs(x - p0[0]) - half, np.abs(y - yc) - 6.0)
        d = np.maximum(d, S.slab(z, min(p0[2], p1[2]), max(p0[2], p1[2])))
        canvas.paint_bone(sl, d, sternal)


def paint_clavicles(canvas, anchors, torso) -> None:
    if not anchors.has("T1"):
        return
    c = anchors.at("T1")
    t = torso.at_z(float(c[2]) + 10)
    front = t.cy - t.ay + t.fat + 6
    for side in (-1.0, 1.0):
        pts = [np.array([side * 18, front + 8, c[2] - 12]), np.array([side * 60, front + 2, c[2] - 2]),
               np.array([side * 110, front + 18, c[2] + 8]), np.array([side * 150, front + 60, c[2] + 12])]
        chain(canvas, pts, 6.0, RIB)


def paint_pelvis(canvas, sacrum_pos, sacrum_rot, scale: float) -> None:
    """Iliac wings, acetabula, pubic and ischial rami, femoral heads, necks and shafts."""
    o = sacrum_pos
    bone = BoneTissue(cancellous=190.0, cortical=850.0, texture=40.0, cortex_mm=1.2)
    femur = BoneTissue(cancellous=120.0, cortical=900.0, texture=35.0, cortex_mm=2.0)
    k = scale
    for side in (-1.0, 1.0):
        _iliac_wing(canvas, o, side, k, bone)
        acet = o + k * np.array([side * 92, -40, -105])
        chain(canvas, [o + k * np.array([side * 48, 28, -40]), o + k * np.array([side * 78, 0, -80]), acet],
              [14 * k, 15 * k, 16 * k], bone)
        chain(canvas, [acet, o + k * np.array([side * 40, -95, -115]), o + k * np.array([side * 8, -105, -125])],
              [11 * k, 9 * k, 8 * k], bone)
        chain(canvas, [acet, o + k * np.array([side * 70, -10, -150]), o + k * np.array([side * 35, -60, -160])],
              [13 * k, 12 * k, 8 * k], bone)
        head = acet + k * np.array([-side * 2, 0, -2])
        found = canvas.box(head - 30 * k, head + 30 * k)
        if found is not None:
            sl, (x, y, z) = found
            canvas.paint_bone(sl, S.ellipsoid(x, y, z, head, (24 * k,) * 3), femur)
        troch = o + k * np.array([side * 130, -30, -140])
        chain(canvas, [head, troch], [15 * k, 17 * k], femur)
        chain(canvas, [troch, o + k * np.array([side * 122, -45, -330])], [16 * k, 14 * k], femur)


def _iliac_wing(canvas, o, side, k, tissue):
    """A bent plate from the sacro-iliac joint up and out to the crest, opening forwards."""
    tilt = np.radians(38.0)
    e1 = np.array([side * np.sin(tilt), 0.0, np.cos(tilt)])            # up and out
    e2 = np.array([side * 0.45, -1.0, 0.0]) / np.hypot(0.45, 1.0)       # forwards and out
    n = np.cross(e1, e2)
    rot = np.column_stack([e1, e2, n])
    centre = o + k * np.array([side * 86.0, -12.0, -2.0])
    found = canvas.local_box(centre, rot, k * np.array([66.0, 66.0, 26.0]))
    if found is None:
        return
    sl, (u, v, w) = found
    a1, a2 = 60.0 * k, 58.0 * k
    r2 = (u / a1) ** 2 + (v / a2) ** 2
    # The iliac fossa is concave inwards; the crest (rim) is thicker than the blade.
    bend = -side * 14.0 * k * r2
    half = k * (2.5 + 3.5 * np.clip(r2, 0, 1) ** 4)
    d = S.extrude(S.ellipse2(u, v, a1, a2), w - bend, half)
    canvas.paint_bone(sl, d, tissue)
