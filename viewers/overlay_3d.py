"""``viewers.overlay`` items in the 3D view: rods (screws) as cylinders, discs (endplate planes), segments as
lines and markers as small spheres; every group under a key, replaced as a whole, never pickable (a click
still picks the vertebra behind)."""
from __future__ import annotations

import numpy as np

from viewers.overlay import Disc, Marker, Rod, Segment, for_view

MARKER_RADIUS_MM = 1.2


def _rgb(color) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in color)


def _shape(item):
    """(pyvista mesh, add_mesh keywords) of one item, None for items 3D does not draw."""
    import pyvista as pv

    if isinstance(item, Rod):
        a, b = np.asarray(item.a, float), np.asarray(item.b, float)
        length = float(np.linalg.norm(b - a))
        if length <= 0:
            return None
        mesh = pv.Cylinder(center=tuple((a + b) / 2), direction=tuple(b - a), radius=item.radius_mm,
                           height=length, resolution=24)
        return mesh, dict(smooth_shading=True, specular=0.4)
    if isinstance(item, Disc):
        mesh = pv.Disc(center=item.centre, inner=0.0, outer=item.radius_mm, normal=item.normal, c_res=48)
        return mesh, dict(opacity=item.opacity)
    if isinstance(item, Segment):
        return pv.Line(item.a, item.b), dict(line_width=max(item.width, 1.0) * 1.5, render_lines_as_tubes=True)
    if isinstance(item, Marker):
        return pv.Sphere(radius=MARKER_RADIUS_MM, center=item.at, theta_resolution=12, phi_resolution=12), {}
    return None


class Overlay3D:
    """The overlay actors of one plotter, by key."""

    def __init__(self, plotter) -> None:
        self.plotter = plotter
        self.names: dict[str, list[str]] = {}

    def set(self, key: str, items) -> None:
        for name in self.names.pop(key, []):
            self.plotter.remove_actor(name, render=False)
        names = []
        for n, item in enumerate(for_view(items or [], "3d")):
            shape = _shape(item)
            if shape is None:
                continue
            mesh, style = shape
            name = f"overlay_{key}_{n}"
            self.plotter.add_mesh(mesh, name=name, color=_rgb(item.color), pickable=False, reset_camera=False,
                                  render=False, **style)
            names.append(name)
        if names:
            self.names[key] = names

    def count(self, key: str) -> int:
        return len(self.names.get(key, []))
