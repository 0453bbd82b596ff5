"""The shape of one vertebra as a signed distance in its local frame.

Local frame: origin at the body centre, u to the patient's left, v posterior, w superior (mm).
Parts: body (waisted, concave endplates, flattened posterior wall), a neural arch (pedicles
laterally, laminae posteriorly) around the canal, spinous and transverse processes, superior
and inferior articular processes; C1 is a ring with lateral masses, C2 carries the dens.
"""
from __future__ import annotations

import numpy as np

from spine_core.phantom import sdf as S
from spine_core.phantom.anatomy import LevelDims


def canal_centre_v(d: LevelDims) -> float:
    return 0.46 * d.body_d + d.canal_d / 2 if d.body_w > 0 else 10.0


def body_sdf(u, v, w, d: LevelDims, fracture: float = 0.0, osteophyte: float = 0.0):
    a, b, h = d.body_w / 2, d.body_d / 2, d.body_h / 2
    t = S.clamp(w / h, -1.0, 1.0)
    waist = 1.0 - 0.04 * (1.0 - t * t)            # bodies are narrower at mid-height
    d2 = S.ellipse2(u, v, a * waist, b * waist)
    # Posterior wall is flat to slightly concave where it faces the canal.
    d2 = np.maximum(d2, v - (0.92 * b - 1.5 * (1.0 - S.clamp((u / a) ** 2, 0, 1))))
    r2 = S.clamp((u / a) ** 2 + (v / b) ** 2, 0, 1)
    top = h - 1.2 * (1.0 - r2)                     # concave endplates
    if fracture > 0:
        anterior = S.clamp((b - v) / (2 * b), 0.0, 1.0)
        top = top - 2 * h * fracture * anterior
    dz = np.maximum(w - top, -w - (h - 1.2 * (1.0 - r2)))
    outside = np.sqrt(np.maximum(d2, 0) ** 2 + np.maximum(dz, 0) ** 2)
    out = outside + np.minimum(np.maximum(d2, dz), 0)
    if osteophyte > 0:
        out = np.minimum(out, _osteophytes(u, v, w, a, b, h, osteophyte))
    return out


def _osteophytes(u, v, w, a, b, h, severity):
    """Marginal spurs: lips at the anterolateral endplate rims, longest anteriorly."""
    r = np.sqrt(u * u + v * v) + 1e-3
    cos_t, sin_t = -v / r, u / r                     # angle from straight ahead
    reach = severity * (2.0 + 3.0 * cos_t * cos_t + 1.5 * sin_t * (3.0 - 4.0 * sin_t * sin_t))
    reach *= v < 0.4 * b
    rim = S.ellipse2(u, v, a + reach, b + reach)
    near_plate = np.minimum(np.abs(w - h), np.abs(w + h)) - (1.0 + 1.5 * severity)
    return np.maximum(rim, near_plate)


def arch_sdf(u, v, w, d: LevelDims):
    """Pedicles and laminae: a ring around the canal, short laterally, tall and sloped behind."""
    vc = canal_centre_v(d)
    ca, cb = d.canal_w / 2, d.canal_d / 2
    ring = np.maximum(S.ellipse2(u, v - vc, ca + d.ped_w, cb + d.lam_t),
                      -S.ellipse2(u, v - vc, ca, cb))
    back = S.clamp((v - vc) / cb, 0.0, 1.0)
    half_h = d.ped_h / 2 * (1 - back) + 0.42 * d.body_h * back
    centre_w = 0.12 * d.body_h - 0.35 * np.maximum(v - vc, 0)   # laminae slope down (shingles)
    ring = S.extrude(ring, w - centre_w, half_h)
    return np.maximum(ring, (0.25 * d.body_d) - v)              # nothing of it in front of the body


def processes_sdf(u, v, w, d: LevelDims, region: str):
    vc = canal_centre_v(d)
    cb = d.canal_d / 2
    lam_back = vc + cb + d.lam_t * 0.5
    w0 = 0.12 * d.body_h - 0.35 * (cb + d.lam_t * 0.5)
    ang = np.radians(d.sp_angle)
    tip = (0.0, lam_back + d.sp_len * np.cos(ang), w0 - d.sp_len * np.sin(ang))
    tall = {"cervical": 1.6, "thoracic": 1.7, "lumbar": 2.6}.get(region, 2.0)
    spinous = S.capsule(u, v, w, (0.0, lam_back - 2, w0), tip, 3.0, 3.6, flat=tall)
    out = spinous
    xf = d.canal_w / 2 + d.ped_w * 0.5
    for side in (-1.0, 1.0):
        out = np.minimum(out, _side_processes(u, v, w, d, region, side, xf, vc))
    return out


def _side_processes(u, v, w, d: LevelDims, region, side, xf, vc):
    wj = 0.12 * d.body_h
    root = (side * xf, vc, wj)
    tp_tip = (side * d.tp_span, vc + d.tp_back, wj + (2.0 if region == "thoracic" else 0.0))
    if region == "lumbar":
        tp = S.capsule(u, v, w, root, tp_tip, 3.5, 2.8, flat=1.8)
    elif region == "thoracic":
        tp = S.capsule(u, v, w, root, tp_tip, 4.5, 5.0)
    else:
        # Cervical: anterior and posterior bars around the foramen transversarium.
        front = (side * d.body_w * 0.45, 0.15 * d.body_d, wj)
        tp = np.minimum(S.capsule(u, v, w, root, tp_tip, 2.8, 2.4),
                        S.capsule(u, v, w, front, tp_tip, 2.4, 2.4))
    sup_h = 0.5 * d.body_h + 0.5 * d.disc_h + 2.0
    inf_h = 0.5 * d.body_h + 0.5 * d.disc_h + 4.0
    r = 2.5 + 0.12 * d.body_w * (0.6 if region == "cervical" else 0.35)
    superior = S.capsule(u, v, w, (side * (xf + 1.5), vc - 1, wj),
                         (side * (xf + 1.5), vc + 2, wj + sup_h), r, r * 0.8)
    inferior = S.capsule(u, v, w, (side * (xf - 1.5), vc + 4, wj - 2),
                         (side * (xf - 1.5), vc + 5, wj - inf_h), r * 0.9, r * 0.8)
    return np.minimum(tp, np.minimum(superior, inferior))


def atlas_sdf(u, v, w, d: LevelDims):
    """C1: a ring with lateral masses and long transverse processes, no body."""
    vc = canal_centre_v(d)
    ring = np.maximum(S.ellipse2(u, v - vc, 22.0, 21.0), -S.ellipse2(u, v - vc, 15.5, 15.5))
    ring = S.extrude(ring, w, 4.5)
    masses = np.minimum(S.ellipsoid(u, v, w, (-18.0, vc - 6, 0.0), (7.5, 10.0, 9.0)),
                        S.ellipsoid(u, v, w, (18.0, vc - 6, 0.0), (7.5, 10.0, 9.0)))
    tps = np.minimum(S.capsule(u, v, w, (-20.0, vc - 4, 0.0), (-d.tp_span, vc - 2, 0.0), 3.5, 4.0),
                     S.capsule(u, v, w, (20.0, vc - 4, 0.0), (d.tp_span, vc - 2, 0.0), 3.5, 4.0))
    return np.minimum(ring, np.minimum(masses, tps))


def vertebra_sdf(u, v, w, name: str, d: LevelDims, region: str, fracture=0.0, osteophyte=0.0):
    if name == "C1":
        return atlas_sdf(u, v, w, d)
    body = body_sdf(u, v, w, d, fracture, osteophyte if region != "cervical" else 0.5 * osteophyte)
    posterior = np.minimum(arch_sdf(u, v, w, d), processes_sdf(u, v, w, d, region))
    out = S.smooth_union(body, posterior, 1.5)
    if name == "C2":
        dens = S.capsule(u, v, w, (0.0, 0.0, d.body_h / 2 - 3), (0.0, 1.0, d.body_h / 2 + 11),
                         5.0, 4.0)
        out = np.minimum(out, dens)
    return out


def bounding_box(d: LevelDims):
    """Local box holding every part of the vertebra: (half-extents, centre offset) in u, v, w."""
    vc = canal_centre_v(d)
    back = vc + d.canal_d / 2 + d.lam_t + d.sp_len * np.cos(np.radians(d.sp_angle)) + 7
    front = min(-d.body_d / 2 - 9, -16.0)           # C1's anterior arch has no body in front
    ru = max(d.tp_span + 7, d.body_w / 2 + 9, 27.0)
    top = d.body_h / 2 + d.disc_h / 2 + 22                     # facets, C2's dens
    bottom = -(d.body_h / 2 + d.disc_h + 8 + d.sp_len * np.sin(np.radians(d.sp_angle)))
    half = (ru, (back - front) / 2, (top - bottom) / 2)
    return half, (0.0, (back + front) / 2, (top + bottom) / 2)


def sacrum_sdf(u, v, w, s1_w, s1_d, ala_w, length, thick):
    """Sacrum below the S1 endplate (w <= 0): a tapering, posteriorly curving wedge."""
    t = S.clamp(-w / length, 0.0, 1.0)
    half_w = ala_w / 2 * (1.0 - 0.78 * t ** 0.8)
    half_t = thick / 2 * (1.0 - 0.55 * t)
    centre_v = 0.35 * s1_d + 30.0 * t * t
    mass = S.ellipse2(u / half_w, (v - centre_v) / half_t, 1.0, 1.0) * np.minimum(half_w, half_t)
    mass = np.maximum(mass, S.slab(w, -length, -12.0))
    s1 = S.extrude(S.ellipse2(u, v, s1_w / 2, s1_d / 2), w + 14.0, 14.0)
    out = S.smooth_union(mass, s1, 4.0)
    canal = S.ellipse2(u, v - (centre_v + 0.45 * half_t), 11.0 * (1 - 0.5 * t), 5.0)
    out = np.maximum(out, -np.maximum(canal, S.slab(w, -0.8 * length, 5.0)))
    for k in range(4):
        wk = -22.0 - 17.0 * k
        for side in (-1.0, 1.0):
            hole = S.capsule(u, v, w, (side * (14.0 - k), -40.0, wk), (side * (14.0 - k), 60.0, wk),
                             3.8 - 0.5 * k)
            out = np.maximum(out, -hole)
    return out
