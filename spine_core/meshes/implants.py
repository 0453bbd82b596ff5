"""A planned screw as a closed surface: a cylinder from its entry point to its tip, in LPS millimetres.

Built with numpy rather than pyvista's ``Cylinder``: the export needs a closed, outward-wound triangle
mesh whose ends lie exactly on the entry and tip (VTK's source is centred, capped with polygons and
wound by its own convention), and the command-line export then never loads VTK for a few dozen triangles.
"""
from __future__ import annotations

import numpy as np

from spine_core.meshes.surface import VertebraMesh

SEGMENTS = 24          # around the circumference: ~0.3 mm from a true circle for a 7.5 mm screw


def cylinder_mesh(entry, tip, diameter_mm: float, name: str, mesh_id: int = 0,
                  segments: int = SEGMENTS) -> VertebraMesh:
    """A closed cylinder of ``diameter_mm`` from ``entry`` to ``tip`` (LPS mm), triangles wound outward."""
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    axis = tip - entry
    length = float(np.linalg.norm(axis))
    if length <= 0 or diameter_mm <= 0:
        raise ValueError("a screw needs a tip apart from its entry and a positive diameter")
    w = axis / length
    u = np.cross(w, [1.0, 0.0, 0.0] if abs(w[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(w, u)                       # u, v, w right-handed: counter-clockwise seen from the tip
    angles = 2 * np.pi * np.arange(segments) / segments
    ring = diameter_mm / 2 * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    vertices = np.vstack([entry + ring, tip + ring, entry, tip])
    n = np.arange(segments)
    m = (n + 1) % segments
    bottom, top = 2 * segments, 2 * segments + 1
    faces = np.vstack([np.column_stack([n, m, segments + m]),               # side, two per segment
                       np.column_stack([n, segments + m, segments + n]),
                       np.column_stack([np.full(segments, top), segments + n, segments + m]),    # tip cap
                       np.column_stack([np.full(segments, bottom), m, n])])                       # entry cap
    return VertebraMesh(mesh_id, name, vertices, faces.astype(np.int64), (entry + tip) / 2)
