"""Body outline, skin, subcutaneous fat and the muscle wall, slice by slice along the spine.

The cross-section of the trunk is an ellipse whose size and position relative to the vertebral
body change with level (neck, shoulders, chest, abdomen, pelvis); the profile below is an adult
of average build, scaled by ``habitus``. The CT table lies under the back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.phantom import sdf as S

# level: half-width, half-depth, body-centre-to-posterior-skin, fat thickness, muscle wall (mm)
_PROFILE = {
    "hips": (185, 108, 88, 28, 0), "S1": (175, 112, 92, 26, 10), "L3": (165, 117, 96, 24, 10),
    "L1": (160, 118, 94, 18, 10), "T12": (158, 118, 90, 16, 12), "T9": (160, 117, 88, 14, 12),
    "T6": (163, 112, 86, 13, 14), "T3": (175, 100, 84, 13, 16), "T1": (180, 86, 80, 12, 14),
    "C7": (80, 68, 72, 9, 0), "C4": (58, 58, 70, 6, 0), "C1": (62, 62, 72, 6, 0),
    "head": (72, 85, 78, 5, 0),
}

HU = {"air": -1000.0, "skin": 25.0, "fat": -100.0, "muscle": 42.0, "table": 250.0, "foam": -880.0}


@dataclass
class TorsoSlice:
    cx: float
    cy: float
    ax: float
    ay: float
    fat: float
    wall: float
    neck: bool


class TorsoProfile:
    """Interpolates the trunk cross-section at any height from landmark arc lengths."""

    def __init__(self, curve, landmarks: dict[str, float], habitus: float = 1.0,
                 fat_scale: float = 1.0):
        keys = [k for k in _PROFILE if k in landmarks]
        self.s = np.array([landmarks[k] for k in keys])
        order = np.argsort(self.s)
        self.s = self.s[order]
        self.values = np.array([_PROFILE[k] for k in keys], dtype=np.float64)[order]
        self.curve = curve
        self.habitus, self.fat_scale = habitus, fat_scale
        self.neck_s = landmarks.get("C7", 1e9) + 5

    def at_z(self, z: float) -> TorsoSlice:
        s = float(np.interp(z, self.curve.pos[:, 2], self.curve.s))
        ax, ay, back, fat, wall = (np.interp(s, self.s, self.values[:, i]) for i in range(5))
        pos, _, _ = self.curve.at(s)
        ax, ay = ax * self.habitus, ay * self.habitus
        fat = fat * self.fat_scale * self.habitus
        cy = pos[1] + back - ay
        return TorsoSlice(0.3 * pos[0], cy, ax, ay, fat, wall, s > self.neck_s)

    def table_y(self, zs) -> float:
        """Table top: under the most posterior point of the back in the study."""
        backs = [self.at_z(float(z)) for z in zs[:: max(len(zs) // 40, 1)]]
        return float(max(t.cy + t.ay for t in backs))


def paint_torso(canvas, profile: TorsoProfile, progress) -> None:
    """Writes every voxel of every slice (the canvas starts unset)."""
    x = canvas.axis_mm(0)[:, None]
    y_axis = canvas.axis_mm(1)[None, :]
    zs = canvas.axis_mm(2)
    table_top = profile.table_y(zs)
    foam, shell = _table_slice(x, y_axis, table_top + 1.5)
    outside = np.where(shell, HU["table"], np.where(foam, HU["foam"], HU["air"])).astype(np.float32)
    step = 0.25
    for k, z in enumerate(zs):
        t = _rest_on_table(profile.at_z(float(z)), table_top)
        canvas.hu[:, :, k] = outside
        win = _window(canvas, t)
        if win is None:
            continue
        sx, sy = win
        xw, yw = x[sx], y_axis[:, sy] - np.float32(t.cy)
        # The back is flatter than an ellipse where it lies on the table.
        d = np.maximum(S.ellipse2(xw - np.float32(t.cx), yw, t.ax, t.ay), yw - np.float32(0.93 * t.ay))
        # HU by depth under the skin, looked up in a small table rather than nested np.where.
        depth = np.arange(0, t.fat + t.wall + 4, step)
        lut = np.where(depth < 2.0, HU["skin"], np.where(depth < t.fat, HU["fat"], HU["muscle"]))
        lut = np.append(lut, HU["muscle"] if t.neck else HU["fat"]).astype(np.float32)
        index = np.multiply(d, -1.0 / step, dtype=np.float32)
        np.maximum(index, 0, out=index)
        np.minimum(index, len(lut) - 1, out=index)
        value = lut[index.astype(np.intp)]
        back = outside[sx, sy]
        value -= back
        value *= canvas.occupancy(d)
        value += back
        canvas.hu[sx, sy, k] = value
        if k % 32 == 0:
            progress.update(k / len(zs), "Body outline")


def _rest_on_table(t: TorsoSlice, table_top: float) -> TorsoSlice:
    """Supine soft tissue spreads onto the table: the back reaches it and is flattened by it."""
    back = t.cy + t.ay
    if back < table_top and table_top - back < 70.0 and not t.neck:
        extra = table_top - back
        return TorsoSlice(t.cx, t.cy + extra / 2, t.ax, t.ay + extra / 2, t.fat + extra / 2, t.wall, t.neck)
    return t


def _window(canvas, t: TorsoSlice):
    """Index ranges of the slice that the body (plus a margin for the skin ramp) can touch."""
    out = []
    for axis, c, r in ((0, t.cx, t.ax), (1, t.cy, t.ay)):
        i0 = int(np.floor((c - r - 3 - canvas.origin[axis]) / canvas.spacing[axis]))
        i1 = int(np.ceil((c + r + 3 - canvas.origin[axis]) / canvas.spacing[axis])) + 1
        i0, i1 = max(i0, 0), min(i1, canvas.shape[axis])
        if i1 <= i0:
            return None
        out.append(slice(i0, i1))
    return tuple(out)


def _table_slice(x, y, top):
    """A curved carbon-fibre tray with a foam core under the patient (masks: foam, shell)."""
    sag = top + 0.0006 * x * x
    inside = (y >= sag) & (y <= sag + 45) & (np.abs(x) < 230)
    shell = inside & ((y - sag < 2.0) | (sag + 45 - y < 2.0))
    return inside, shell
