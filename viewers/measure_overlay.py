"""The geometry behind a measurement, as viewers.overlay items, from ``spine_core.measure.measure``'s document.

- a level: its endplates (lines on the sagittal and coronal slices, discs in 3D), its anterior, middle and
  posterior body heights (segments on the sagittal slice and in 3D, centred between the endplates, as long
  as measured), and each pedicle's isthmus (its width across the pedicle axis, the axis from the entry to
  the anterior cortex) on the axial slice and in 3D;
- an alignment angle: the two endplates it is measured between, drawn long on the sagittal slice (lordosis,
  kyphosis, segmental) or the coronal slice (Cobb), and as discs in 3D.

``focus`` is where the slices should go to show it (the crosshair).
"""
from __future__ import annotations

import numpy as np

from viewers.overlay import Disc, Marker, Segment, Text, in_plane, point

ENDPLATE = (0, 210, 255)
HEIGHT = (255, 214, 64)
PEDICLE = (255, 80, 220)
AXIS = (255, 190, 240)
ANGLE = (90, 255, 140)
DEFAULT_DEPTH_MM = 30.0
ANGLE_HALF_MM = 35.0


def _frame(row: dict):
    frame = row.get("frame") or {}
    if not all(k in frame for k in "uvw"):
        return None
    return tuple(np.asarray(frame[k], float) for k in "uvw")


def _plane(row: dict, key: str):
    plane = row.get(key)
    if not plane:
        return None
    return np.asarray(plane["point"], float), np.asarray(plane["normal"], float)


def level_items(row: dict, pedicles: list[dict] = ()) -> list:
    """Endplates, body heights and pedicle isthmuses of one vertebra (a row of the document's "vertebrae")."""
    frame = _frame(row)
    if frame is None:
        return []
    u, v, w = frame
    depth = row.get("body_depth_mm") or DEFAULT_DEPTH_MM
    width = row.get("body_width_mm") or depth
    items: list = []
    planes = [_plane(row, "superior_endplate"), _plane(row, "inferior_endplate")]
    for plane in planes:
        if plane is None:
            continue
        p, n = plane
        along_v, along_u = in_plane(v, n), in_plane(u, n)
        items += [Segment(point(p - 0.6 * depth * along_v), point(p + 0.6 * depth * along_v), ENDPLATE,
                          views=("sagittal",)),
                  Segment(point(p - 0.6 * width * along_u), point(p + 0.6 * width * along_u), ENDPLATE,
                          views=("coronal",)),
                  Disc(point(p), point(n), 0.45 * min(width, depth), ENDPLATE)]
    if all(planes):
        items += _heights(row, planes, v, w, depth)
    for pedicle in pedicles:
        items += pedicle_items(pedicle, w)
    return items


def _heights(row: dict, planes, v, w, depth: float) -> list:
    (ps, ns), (pi, ni) = planes
    middle = 0.5 * (ps + pi)
    items, words = [], []
    for offset, key, tag in ((-0.35, "anterior_height_mm", "A"), (0.0, "middle_height_mm", "M"),
                             (0.35, "posterior_height_mm", "P")):
        height = row.get(key)
        if height is None:
            continue
        column = middle + offset * depth * v
        top = column + ((ps - column) @ ns) / (w @ ns) * w
        bottom = column + ((pi - column) @ ni) / (w @ ni) * w
        centre = 0.5 * (top + bottom)
        items.append(Segment(point(centre - 0.5 * height * w), point(centre + 0.5 * height * w), HEIGHT,
                             width=2.5, views=("sagittal", "3d")))
        words.append(f"{tag} {height:.1f}")
    if words:                     # above the superior endplate's front: over the disc, off the body
        at = ps - 0.5 * depth * in_plane(v, ns) + 4.0 * ns
        items.append(Text(point(at), "  ".join(words) + " mm", HEIGHT, views=("sagittal",)))
    return items


def pedicle_items(pedicle: dict, superior) -> list:
    """One pedicle (a row of the document's "pedicles"): the isthmus width across its axis, the axis."""
    if not pedicle.get("found") or pedicle.get("isthmus_lps") is None:
        return []
    centre, axis = np.asarray(pedicle["isthmus_lps"], float), np.asarray(pedicle["axis_lps"], float)
    left = pedicle["side"] == "left"
    across = in_plane(np.cross(axis, superior), axis)
    if (across[0] > 0) != left:                    # pointing away from the midline (LPS: +x is left)
        across = -across
    half = 0.5 * float(pedicle["width_mm"])
    items = [Segment(point(centre - half * across), point(centre + half * across), PEDICLE, width=3.5,
                     views=("axial", "3d")),
             Marker(point(centre), PEDICLE, radius_px=3.5, views=("axial",))]
    if pedicle.get("entry_lps") and pedicle.get("anterior_cortex_lps"):
        items.append(Segment(point(pedicle["entry_lps"]), point(pedicle["anterior_cortex_lps"]), AXIS, width=1.5,
                             dashed=True, views=("axial", "3d")))
    label = f"{pedicle['width_mm']:.1f} x {pedicle['height_mm']:.1f} mm"     # beside it, away from the midline
    items.append(Text(point(centre + (half + 2.0) * across), label, PEDICLE, views=("axial",),
                      align="left" if left else "right"))
    return items


def angle_items(angle: dict, rows_by_name: dict[str, dict]) -> list:
    """The two endplates an alignment angle (a dict of the document's "alignment") is measured between."""
    coronal = "cobb" in angle["name"].lower()
    view = "coronal" if coronal else "sagittal"
    items, ends = [], []
    for which in ("upper", "lower"):
        row = rows_by_name.get(angle[which])
        key = angle[f"{which}_plane"].replace(" ", "_")
        plane = _plane(row, key) if row else None
        frame = _frame(row) if row else None
        if plane is None or frame is None:
            continue
        p, n = plane
        along = in_plane(frame[0] if coronal else frame[1], n)
        a, b = p - ANGLE_HALF_MM * along, p + ANGLE_HALF_MM * along
        items += [Segment(point(a), point(b), ANGLE, width=2.5, views=(view,)),
                  Disc(point(p), point(n), ANGLE_HALF_MM * 0.8, ANGLE, opacity=0.45)]
        ends.append(a)
    if ends:
        text = f"{angle['name']}: {angle['degrees']:.1f} deg ({angle['upper']}-{angle['lower']})"
        items.append(Text(point(ends[0]), text, ANGLE, views=(view,), align="right" if not coronal else "left"))
    return items


def level_focus(row: dict, pedicles: list[dict] = ()) -> np.ndarray:
    """Where the slices show a level: its centroid, at the height of its pedicles' isthmuses where found."""
    at = np.asarray(row["centroid"], float)
    found = [p["isthmus_lps"] for p in pedicles if p.get("found") and p.get("isthmus_lps")]
    if found:
        at = at.copy()
        at[2] = float(np.mean([q[2] for q in found]))
    return at


def angle_focus(angle: dict, rows_by_name: dict[str, dict]) -> np.ndarray | None:
    """Half-way between the two endplates' centres (on the mid-sagittal plane of the two vertebrae)."""
    points = []
    for which in ("upper", "lower"):
        row = rows_by_name.get(angle[which])
        plane = _plane(row, angle[f"{which}_plane"].replace(" ", "_")) if row else None
        if plane is not None:
            points.append(plane[0])
    return np.mean(points, axis=0) if points else None
