"""What planning draws over the views: segments, markers, text, discs and rods in LPS mm, and which views
show each (pure numpy; the slice views paint them with ``viewers.overlay_paint``, the 3D view builds them
with ``viewers.overlay_3d``).

On a slice an item is drawn projected onto the slice's plane; ``near_mm`` keeps only what lies that close
to the plane (of a segment: the part within the slab, e.g. where a screw crosses the slice). A marker with
a ``handle`` can be dragged on the slice views (``SliceView.handle_moved``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLICES = ("axial", "sagittal", "coronal")
ALL_VIEWS = SLICES + ("3d",)
Point = tuple[float, float, float]
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Segment:
    a: Point
    b: Point
    color: RGB
    width: float = 2.0                 # pixels on a slice; in 3D a line of this width
    dashed: bool = False
    views: tuple[str, ...] = ALL_VIEWS
    near_mm: float | None = None


@dataclass(frozen=True)
class Marker:
    at: Point
    color: RGB
    radius_px: float = 5.0
    filled: bool = True
    views: tuple[str, ...] = SLICES
    near_mm: float | None = None
    handle: str = ""                   # non-empty: draggable, reported by this name


@dataclass(frozen=True)
class Text:
    at: Point
    text: str
    color: RGB = (255, 255, 255)
    views: tuple[str, ...] = SLICES
    near_mm: float | None = None
    align: str = "left"                # "left": starts beside the point; "right": ends beside it


@dataclass(frozen=True)
class Disc:
    """A flat disc in 3D (an endplate's plane)."""
    centre: Point
    normal: Point
    radius_mm: float
    color: RGB
    opacity: float = 0.55
    views: tuple[str, ...] = ("3d",)


@dataclass(frozen=True)
class Rod:
    """A cylinder in 3D from ``a`` to ``b`` (a screw)."""
    a: Point
    b: Point
    radius_mm: float
    color: RGB
    views: tuple[str, ...] = ("3d",)


def point(x) -> Point:
    return tuple(float(v) for v in np.asarray(x, float)[:3])


def for_view(items, view: str) -> list:
    return [item for item in items if view in item.views]


def clip_to_slab(a, b, origin, normal, half_mm: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of segment ``a``-``b`` within ``half_mm`` of the plane through ``origin`` with unit
    ``normal``; None where it misses the slab."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    da, db = float((a - origin) @ normal), float((b - origin) @ normal)
    if abs(db - da) < 1e-9:
        return (a, b) if abs(da) <= half_mm else None
    t0, t1 = sorted(((-half_mm - da) / (db - da), (half_mm - da) / (db - da)))
    t0, t1 = max(t0, 0.0), min(t1, 1.0)
    if t0 > t1:
        return None
    return a + t0 * (b - a), a + t1 * (b - a)


def near(at, origin, normal, near_mm: float | None) -> bool:
    return near_mm is None or abs(float((np.asarray(at, float) - origin) @ normal)) <= near_mm


def in_plane(direction, normal) -> np.ndarray:
    """``direction`` made perpendicular to ``normal`` (unit; zero where it is along the normal)."""
    d = np.asarray(direction, float) - (np.asarray(direction, float) @ normal) * np.asarray(normal, float)
    n = np.linalg.norm(d)
    return d / n if n > 1e-9 else d
