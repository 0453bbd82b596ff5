"""Painting the spine: discs, vertebrae (labelled), sacrum, and fusion hardware."""
from __future__ import annotations

import numpy as np

from spine_core.labels import DISC_OFFSET, SACRUM
from spine_core.phantom import sdf as S
from spine_core.phantom.anatomy import SACRUM_DIMS, region_of
from spine_core.phantom.canvas import BoneTissue
from spine_core.phantom.vertebra import bounding_box, canal_centre_v, sacrum_sdf, vertebra_sdf

DISC_HU = {"annulus": 95.0, "nucleus": 75.0}
METAL_HU = 3000.0


def vertebra_tissue(p, density: float, rng) -> BoneTissue:
    """Cancellous HU falls with age/osteoporosis (``density`` 1 = young adult)."""
    canc = 45.0 + 175.0 * density + rng.normal(0, 12)
    if p.fracture > 0:
        canc += 90.0 * p.fracture          # compressed trabeculae look denser
    # Calibrated on the VerSe CTs in ../shared/data: surface voxels there read ~270-350 HU at 1 mm.
    cort = 520.0 + 260.0 * min(density, 1.2) + rng.normal(0, 30)
    return BoneTissue(cancellous=canc, cortical=cort, texture=40.0 + 25.0 * density, cortex_mm=0.8)


def paint_discs(canvas, placements, label_discs: bool, degeneration: float) -> None:
    for upper, lower in zip(placements[:-1], placements[1:]):
        if upper.disc_below <= 0 or upper.name == "C1":
            continue
        _disc_between(canvas, upper, lower, upper.disc_below, label_discs, degeneration, upper.vid)


def _disc_between(canvas, upper, lower, height, label_discs, degeneration, vid):
    centre = 0.5 * (upper.centre + lower.centre)
    rot = _mean_frame(upper.rot, lower.rot)
    a = 0.5 * (upper.dims.body_w + lower.dims.body_w) / 2
    b = 0.5 * (upper.dims.body_d + lower.dims.body_d) / 2
    half = 0.5 * np.linalg.norm(upper.centre - lower.centre)
    found = canvas.local_box(centre, rot, (a + 4, b + 4, half + 2))
    if found is None:
        return
    sl, (u, v, w) = found
    bulge = 1.0 + 0.5 * degeneration
    d = S.extrude(S.ellipse2(u, v, a * 0.97 * bulge, b * 0.95 * bulge), w, half)
    r2 = S.clamp((u / a) ** 2 + (v / b) ** 2, 0, 1)
    value = DISC_HU["nucleus"] + (DISC_HU["annulus"] - DISC_HU["nucleus"]) * r2
    if degeneration > 0:
        value = value + 60.0 * degeneration * (canvas.texture(sl) > 1.6)   # vacuum/calcified spots
    canvas.paint(sl, d, value, DISC_OFFSET + vid if label_discs else 0, label_only_empty=False)


def _mean_frame(r0, r1):
    m = r0 + r1
    u, _, vt = np.linalg.svd(m)
    return u @ vt


def paint_vertebra(canvas, p, tissue: BoneTissue, osteophyte: float) -> None:
    half, offset = bounding_box(p.dims)
    found = canvas.local_box(p.centre, p.rot, half, offset)
    if found is None:
        return
    sl, local = found

    def shape(u, v, w):
        d = vertebra_sdf(u, v, w, p.name, p.dims, region_of(p.name), p.fracture, osteophyte)
        return np.minimum(d, _butterfly_tp(u, v, w, p.dims)) if "sacralised" in p.flags else d

    d = canvas.banded(shape, local, margin=2.0 + 2.0 * canvas.ramp)
    canvas.paint_bone(sl, d, tissue, p.vid)


def _butterfly_tp(u, v, w, d):
    """Sacralised L5: broad transverse processes reaching down to the sacral ala."""
    vc = canal_centre_v(d)
    out = None
    for side in (-1.0, 1.0):
        c = S.capsule(u, v, w, (side * 20.0, vc, 0.0), (side * 44.0, vc + 2, -d.body_h * 0.9),
                      9.0, 11.0)
        out = c if out is None else np.minimum(out, c)
    return out


def sacrum_frame(curve, scale: float):
    pos, rot = curve.frame(0.0)
    return pos, rot, {k: v * scale for k, v in SACRUM_DIMS.items()}


def paint_sacrum(canvas, curve, scale, tissue: BoneTissue, label: bool = True) -> None:
    pos, rot, dims = sacrum_frame(curve, scale)
    centre = pos + rot @ np.array([0.0, 15.0, -dims["length"] / 2])
    found = canvas.local_box(centre, rot, (dims["ala_w"] / 2 + 6, 50.0, dims["length"] / 2 + 8))
    if found is None:
        return
    sl, (u, v, w) = found

    def shape(u, v, w):
        return sacrum_sdf(u, v + 15.0, w - dims["length"] / 2, dims["s1_w"], dims["s1_d"],
                          dims["ala_w"], dims["length"], dims["thick"])

    d = canvas.banded(shape, (u, v, w), margin=2.0 + 2.0 * canvas.ramp)
    canvas.paint_bone(sl, d, tissue, SACRUM if label else 0)
    # Coccyx: three small segments continuing the sacral curve, not labelled (not in VerSe ids).
    tip = pos + rot @ np.array([0.0, 0.35 * dims["s1_d"] + 30.0, -dims["length"]])
    pts = [tip + rot @ np.array([0.0, -4.0 * k, -9.0 * k]) for k in range(1, 5)]
    for p0, p1 in zip(pts[:-1], pts[1:]):
        found = canvas.box(np.minimum(p0, p1) - 7, np.maximum(p0, p1) + 7)
        if found is not None:
            sl, (x, y, z) = found
            canvas.paint_bone(sl, S.capsule(x, y, z, p0, p1, 4.0, 3.2), tissue)


def screw_plan(placements, levels):
    """Pedicle screw entry points and tips in LPS, per instrumented level and side."""
    screws = []
    for p in placements:
        if p.name not in levels:
            continue
        d = p.dims
        vc = canal_centre_v(d)
        xf = d.canal_w / 2 + d.ped_w * 0.5
        for side in (-1.0, 1.0):
            entry = np.array([side * (xf + 2.0), vc + 8.0, 0.12 * d.body_h])
            target = np.array([side * 0.12 * d.body_w, -0.3 * d.body_d, 0.05 * d.body_h])
            direction = (target - entry) / np.linalg.norm(target - entry)
            length = min(0.85 * (np.linalg.norm(target - entry) + 0.2 * d.body_d), 55.0)
            tip = entry + direction * length
            head = entry - direction * 9.0
            screws.append((p.name, side, p.centre + p.rot @ head, p.centre + p.rot @ tip,
                           max(2.0, min(3.25, d.ped_w * 0.4))))
    return screws


def paint_hardware(canvas, placements, levels) -> None:
    metal = BoneTissue(cancellous=METAL_HU, cortical=METAL_HU, texture=0.0)
    screws = screw_plan(placements, levels)
    for _, _, head, tip, radius in screws:
        found = canvas.box(np.minimum(head, tip) - 9, np.maximum(head, tip) + 9)
        if found is None:
            continue
        sl, (x, y, z) = found
        d = np.minimum(S.capsule(x, y, z, head, tip, radius, radius * 0.7),
                       S.ellipsoid(x, y, z, head, (6.5, 6.5, 6.5)))
        canvas.paint_bone(sl, d, metal)
    for side in (-1.0, 1.0):
        heads = [h for _, s, h, _, _ in screws if s == side]
        if len(heads) < 2:
            continue
        ends = [heads[0] + (heads[0] - heads[1]) * 0.25, *heads, heads[-1] + (heads[-1] - heads[-2]) * 0.25]
        for p0, p1 in zip(ends[:-1], ends[1:]):
            found = canvas.box(np.minimum(p0, p1) - 5, np.maximum(p0, p1) + 5)
            if found is not None:
                sl, (x, y, z) = found
                canvas.paint_bone(sl, S.capsule(x, y, z, p0, p1, 2.75), metal)
