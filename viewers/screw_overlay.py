"""Planned pedicle screws as viewers.overlay items, coloured by their expected Gertzbein-Robbins grade.

In 3D each screw is a cylinder of its diameter. On a slice a screw is drawn where it crosses the slice
(the part of its axis within its radius + 1 mm of the plane), with its entry (ring) and tip (dot) where they
lie near the slice; the selected screw is also drawn projected (dashed) with both ends on every slice, so
it can be dragged from any view, and labelled with its size, distance to the cortex and grade. The ends
are handles named ``screw:<index>:entry`` / ``screw:<index>:tip``.
"""
from __future__ import annotations

from viewers.overlay import SLICES, Marker, Rod, Segment, Text, point

GRADE_RGB = {"A": (60, 200, 90), "B": (200, 225, 60), "C": (255, 170, 40), "D": (255, 100, 40),
             "E": (235, 45, 45)}
UNCHECKED_RGB = (175, 175, 175)
SELECTED_RGB = (255, 255, 255)
NEAR_EXTRA_MM = 1.0


def grade_rgb(grade: str | None) -> tuple[int, int, int]:
    return GRADE_RGB.get(grade or "", UNCHECKED_RGB)


def describe(screw) -> str:
    """"L4 left 6.5x45: 1.2 mm, A" (distance and grade once checked)."""
    text = f"{screw.vertebra} {screw.side} {screw.diameter_mm:g}x{screw.length_mm:.0f}"
    if screw.min_cortex_distance_mm is None:
        return text + ": checking"
    return text + f": {screw.min_cortex_distance_mm:.1f} mm, {screw.grade}"


def handle_name(index: int, end: str) -> str:
    return f"screw:{index}:{end}"


def parse_handle(name: str) -> tuple[int, str] | None:
    """(screw index, "entry" or "tip") of a handle name, None for another overlay's."""
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != "screw" or parts[2] not in ("entry", "tip") or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def screw_items(screws, selected: int = -1) -> list:
    items: list = []
    for index, screw in enumerate(screws):
        items += _one(index, screw, index == selected)
    return items


def _one(index: int, screw, chosen: bool) -> list:
    color = grade_rgb(screw.grade)
    entry, tip = point(screw.entry_lps), point(screw.tip_lps)
    radius = screw.diameter_mm / 2
    near = None if chosen else radius + NEAR_EXTRA_MM
    items = [Rod(entry, tip, radius, color),
             Segment(entry, tip, color, width=5.0 if chosen else 3.5, near_mm=radius + NEAR_EXTRA_MM, views=SLICES)]
    if chosen:
        items += [Segment(entry, tip, SELECTED_RGB, width=1.2, dashed=True, views=SLICES),
                  Marker(entry, SELECTED_RGB, views=("3d",)), Marker(tip, SELECTED_RGB, views=("3d",)),
                  Text(tip, describe(screw), SELECTED_RGB, align="left" if screw.side == "left" else "right")]
    items += [Marker(entry, SELECTED_RGB if chosen else color, radius_px=6.0, filled=False, near_mm=near,
                     handle=handle_name(index, "entry")),
              Marker(tip, SELECTED_RGB if chosen else color, radius_px=4.5, near_mm=near,
                     handle=handle_name(index, "tip"))]
    return items


def pending_items(entry) -> list:
    """The entry point clicked in "add screw" mode, waiting for its tip."""
    return [Marker(point(entry), SELECTED_RGB, radius_px=6.0, filled=False),
            Text(point(entry), "entry: now click the tip", SELECTED_RGB)]
