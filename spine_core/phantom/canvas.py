"""The working grid a phantom is painted on: HU and label arrays on an axis-aligned LPS grid.

Every structure is evaluated only inside its own bounding box; the signed distance gives an
analytic partial-volume fraction, so edges are anti-aliased without a finer grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.phantom.sdf import clamp

# Cortical bone: thickness (mm) and the inner value each bone blends towards at its surface.
CORTEX_MM = 1.0


@dataclass
class BoneTissue:
    """HU of a bone's cancellous core and cortical shell; ``texture`` scales trabecular mottle."""
    cancellous: float = 220.0
    cortical: float = 900.0
    texture: float = 55.0
    cortex_mm: float = CORTEX_MM


class Canvas:
    def __init__(self, shape, spacing, origin, rng: np.random.Generator):
        self.shape = tuple(int(s) for s in shape)
        self.spacing = np.asarray(spacing, dtype=np.float64)
        self.origin = np.asarray(origin, dtype=np.float64)
        # Left unset: the body outline pass writes every voxel of every slice first.
        self.hu = np.empty(self.shape, dtype=np.float32)
        self.labels = np.zeros(self.shape, dtype=np.int16)
        self.rng = rng
        # Width of the partial-volume ramp: in-plane voxel size dominates what a reader sees.
        self.ramp = float(np.sqrt(self.spacing[0] * self.spacing[1]))
        self._texture = self._make_texture()

    # Geometry
    def axis_mm(self, axis: int) -> np.ndarray:
        return (self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis])).astype(np.float32)

    def box(self, lo, hi):
        """Index slices and broadcast LPS coordinates (float32) of voxels in [lo, hi] mm."""
        sl, coords = [], []
        for a in range(3):
            i0 = int(np.floor((lo[a] - self.origin[a]) / self.spacing[a]))
            i1 = int(np.ceil((hi[a] - self.origin[a]) / self.spacing[a])) + 1
            i0, i1 = max(i0, 0), min(i1, self.shape[a])
            if i1 <= i0:
                return None
            sl.append(slice(i0, i1))
            shape = [1, 1, 1]
            shape[a] = i1 - i0
            coords.append(self.axis_mm(a)[i0:i1].reshape(shape))
        return tuple(sl), coords

    def local_box(self, centre, rot, radius, shift=(0.0, 0.0, 0.0)):
        """Voxels within ``radius`` (mm, per local axis or scalar) of ``centre`` + ``shift`` (local
        mm), in the local frame whose origin is ``centre``.

        ``rot`` columns are the local u, v, w axes in LPS. Returns (slices, (u, v, w)) or None.
        """
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (3,))
        shift = np.asarray(shift, dtype=np.float64)
        centre = np.asarray(centre, dtype=np.float64) + rot @ shift
        extent = np.abs(rot) @ radius
        found = self.box(centre - extent, centre + extent)
        if found is None:
            return None
        sl, (x, y, z) = found
        x, y, z = x - np.float32(centre[0]), y - np.float32(centre[1]), z - np.float32(centre[2])
        r = rot.astype(np.float32)
        local = tuple(x * r[0, a] + y * r[1, a] + z * r[2, a] + np.float32(shift[a]) for a in range(3))
        return sl, local

    @staticmethod
    def banded(fn, local, margin: float = 4.0):
        """``fn(u, v, w)`` evaluated exactly only near or inside the shape.

        A pass on every second voxel finds where the surface can be; elsewhere the distance is
        just "far outside". Bones fill ~10% of their boxes, so this is several times faster.
        """
        u, v, w = local
        coarse = fn(u[::2, ::2, ::2], v[::2, ::2, ::2], w[::2, ::2, ::2])
        near = coarse < margin
        shape = np.broadcast_shapes(u.shape, v.shape, w.shape)
        for axis in range(3):
            near = np.repeat(near, 2, axis=axis)
        near = near[: shape[0], : shape[1], : shape[2]]
        out = np.full(shape, 50.0, dtype=np.float32)
        out[near] = fn(u[near], v[near], w[near])
        return out

    # Painting
    def occupancy(self, sdf):
        occ = np.multiply(sdf, np.float32(-1.0 / self.ramp))
        occ += np.float32(0.5)
        np.minimum(occ, np.float32(1.0), out=occ)
        return np.maximum(occ, np.float32(0.0), out=occ)

    def paint(self, sl, sdf, value, label: int = 0, label_only_empty: bool = False):
        """Blend ``value`` (scalar or array) into the HU grid by partial volume; label the inside."""
        occ = self.occupancy(sdf)
        view = self.hu[sl]
        view += (value - view) * occ
        if label:
            inside = sdf < 0
            if label_only_empty:
                inside &= self.labels[sl] == 0
            self.labels[sl][inside] = label

    def paint_bone(self, sl, sdf, tissue: BoneTissue, label: int = 0):
        depth = -sdf
        shell = clamp((tissue.cortex_mm + 0.5 * self.ramp - depth) / self.ramp, 0.0, 1.0)
        value = tissue.cancellous + tissue.texture * self.texture(sl)
        value += (tissue.cortical - value) * shell
        self.paint(sl, sdf, value, label)

    def texture(self, sl):
        """Trabecular mottle: a wrapped window of one pre-made band-limited noise block."""
        t = self._texture
        idx = [np.arange(s.start, s.stop) % t.shape[a] for a, s in enumerate(sl)]
        return t[np.ix_(*idx)]

    def _make_texture(self):
        size = [min(n, 96) for n in self.shape]
        noise = self.rng.standard_normal(size, dtype=np.float32)
        # ~0.7 mm trabecular grain; wrap so windows taken modulo the block stay seamless.
        sigma = [0.7 / s for s in self.spacing]
        noise = ndimage.gaussian_filter(noise, sigma, mode="wrap")
        noise -= noise.mean()
        noise /= noise.std() + 1e-6
        return noise
