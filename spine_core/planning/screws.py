"""Pedicle screws: the Screw record, suggestions from the pedicles, and the check of any screw (suggested or
moved by the user) against the cortex. Qt-free.

A suggestion, per thoracic and lumbar vertebra and side (spine_core.measure.pedicles):

- entry: where the pedicle axis leaves the posterior cortex; trajectory: the axis, through the isthmus;
- diameter: the largest standard size (DIAMETERS_MM) at most FILL of the pedicle's narrowest dimension at
  the isthmus; below the smallest: no screw ("pedicle too narrow");
- length: to TIP_DEPTH of the body's depth along the trajectory (from its posterior wall), to the
  nearest 5 mm, no further than TIP_LIMIT of it, within the standard 25-55 mm; shorter where the tip's
  surface would come within MIDLINE_GAP_MM of the vertebra's midline (half-way between its pedicles:
  two converging screws never meet);
- then the screw is checked (spine_core.planning.clearance): while its surface comes nearer the cortex
  than SAFETY_MM, a shorter screw is tried where the nearest point is in the body's front part, else a
  thinner one; none left: no screw, and the note says why.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy import ndimage

from spine_core.labels import NAME_TO_ID
from spine_core.measure.bone_grid import BoneGrid
from spine_core.measure.pedicles import Pedicle
from spine_core.planning.clearance import Clearance, clearance
from spine_core.volume import LabelMap

DIAMETERS_MM = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5)
LENGTHS_MM = (25, 30, 35, 40, 45, 50, 55)
FILL = 0.8              # diameter at most this fraction of the pedicle's narrowest dimension
TIP_DEPTH = 0.8         # the tip this far through the body along the trajectory
TIP_LIMIT = 0.9         # ... and never further
SAFETY_MM = 1.0         # a suggested screw keeps at least this much bone around it
MIDLINE_GAP_MM = 1.0    # ... and its tip's surface this far on its own side of the midline
SOURCES = ("suggested", "user")


@dataclass
class Screw:
    vertebra: str                       # "L4"
    side: str                           # "left" / "right"
    entry_lps: list[float]
    tip_lps: list[float]
    diameter_mm: float
    length_mm: float
    min_cortex_distance_mm: float | None = None   # negative: the screw breaches the cortex by that much
    grade: str | None = None                      # expected Gertzbein-Robbins grade
    source: str = "suggested"
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.vertebra} {self.side} {self.diameter_mm:g}x{self.length_mm:g}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Screw":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        screw = cls(**known)
        if screw.source not in SOURCES:
            raise ValueError(f"a screw's source is one of {', '.join(SOURCES)}, not '{screw.source}'")
        screw.entry_lps = [float(v) for v in screw.entry_lps]
        screw.tip_lps = [float(v) for v in screw.tip_lps]
        return screw


@dataclass(frozen=True)
class NotPlanned:
    vertebra: str
    side: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


class VertebraBones:
    """The bone grid of each vertebra of a label map, made on first use (and shared with the pedicles)."""

    def __init__(self, labels: LabelMap, grids: dict[int, BoneGrid] | None = None, boxes: list | None = None):
        """``grids``, ``boxes``: made before on these labels (the workstation keeps them between checks)."""
        self.labels = labels
        self.grids = {} if grids is None else grids
        self._boxes = boxes

    @property
    def boxes(self) -> list:
        """Every label's bounding box (``scipy.ndimage.find_objects``: index id - 1), found on first use."""
        if self._boxes is None:
            self._boxes = ndimage.find_objects(self.labels.array.astype(np.int32, copy=False))
        return self._boxes

    def grid(self, label_id: int) -> BoneGrid:
        if label_id not in self.grids:
            boxes = self.boxes
            box = boxes[label_id - 1] if label_id <= len(boxes) else None
            if box is None:
                raise ValueError(f"the label map holds no vertebra {label_id}")
            self.grids[label_id] = BoneGrid(self.labels, label_id, box)
        return self.grids[label_id]


def check_screw(bones: VertebraBones, screw: Screw, pedicle: Pedicle | None = None) -> Screw:
    """``screw`` with its least distance to the cortex and its expected grade (any screw: suggested or
    moved); ``pedicle``: the vertebra's pedicle on the screw's side, where the grading starts."""
    return _checked(bones, screw, pedicle)[0]


def _checked(bones: VertebraBones, screw: Screw, pedicle: Pedicle | None) -> tuple[Screw, Clearance]:
    label_id = NAME_TO_ID.get(screw.vertebra)
    if label_id is None:
        raise ValueError(f"'{screw.vertebra}' is not a vertebra's name")
    result = clearance(bones.grid(label_id), screw.entry_lps, screw.tip_lps, screw.diameter_mm, pedicle)
    length = float(np.linalg.norm(np.subtract(screw.tip_lps, screw.entry_lps)))
    return replace(screw, min_cortex_distance_mm=result.min_mm, grade=result.grade,
                   length_mm=round(length, 1)), result


def is_instrumented_level(name: str) -> bool:
    return name[:1] in "TL" and name[1:].isdigit()


def suggest_screws(bones: VertebraBones, pedicles: list[Pedicle]) -> tuple[list[Screw], list[NotPlanned]]:
    """A screw per thoracic and lumbar pedicle that takes one, and why the others take none."""
    screws, skipped = [], []
    for p in pedicles:
        if not is_instrumented_level(p.name):
            continue
        pair = [q for q in pedicles if q.name == p.name and q.found]
        found = suggest_screw(bones, p, midline(pair))
        (screws if isinstance(found, Screw) else skipped).append(found)
    return screws, skipped


def midline(pair: list[Pedicle]) -> tuple[np.ndarray, np.ndarray] | None:
    """The vertebra's own mid-sagittal plane from its two pedicles: (point, unit normal to the left), half-way
    between their isthmus centres; None without both."""
    left = next((p for p in pair if p.side == "left" and p.found), None)
    right = next((p for p in pair if p.side == "right" and p.found), None)
    if left is None or right is None:
        return None
    a, b = np.asarray(left.isthmus_lps, float), np.asarray(right.isthmus_lps, float)
    return 0.5 * (a + b), (a - b) / np.linalg.norm(a - b)


def suggest_screw(bones: VertebraBones, p: Pedicle, plane=None) -> Screw | NotPlanned:
    """The screw for pedicle ``p`` (see the module's text); ``plane``: the vertebra's midline (``midline``),
    which the screw's tip keeps off by MIDLINE_GAP_MM (two converging screws never meet)."""
    if not p.found:
        return NotPlanned(p.name, p.side, "pedicle not found" + (f" ({p.notes[0]})" if p.notes else ""))
    narrowest = min(p.width_mm, p.height_mm)
    sizes = [d for d in DIAMETERS_MM if d <= FILL * narrowest]
    if not sizes:
        return NotPlanned(p.name, p.side, f"pedicle too narrow ({narrowest:.1f} mm: a {DIAMETERS_MM[0]:g} mm "
                                          f"screw needs {DIAMETERS_MM[0] / FILL:.1f} mm)")
    entry, axis = np.asarray(p.entry_lps), np.asarray(p.axis_lps)
    to_wall = p.length_mm - p.body_depth_mm            # entry to the body's posterior wall
    lengths = [n for n in LENGTHS_MM if n <= to_wall + TIP_LIMIT * p.body_depth_mm and n <= p.length_mm - 3.0]
    if not lengths:
        return NotPlanned(p.name, p.side, f"too short a path for a {LENGTHS_MM[0]} mm screw "
                                          f"({p.length_mm:.0f} mm to the anterior cortex)")
    target = to_wall + TIP_DEPTH * p.body_depth_mm
    length = min(lengths, key=lambda n: (abs(n - target), n))
    diameter, to_body_front = sizes[-1], to_wall + 0.5 * (length - to_wall)
    sign = 1.0 if p.side == "left" else -1.0
    while True:
        gap = diameter / 2 + MIDLINE_GAP_MM
        fits = [n for n in lengths if n <= length and _off_midline(entry + n * axis, plane, sign) >= gap]
        if not fits and diameter > DIAMETERS_MM[0]:
            diameter = max(d for d in DIAMETERS_MM if d < diameter)
            continue
        if not fits:
            return NotPlanned(p.name, p.side, f"the pedicle axis crosses the midline before a {LENGTHS_MM[0]} mm "
                                              "screw's tip")
        screw, result = _checked(bones, Screw(p.name, p.side, _r(entry), _r(entry + fits[-1] * axis), diameter,
                                              float(fits[-1])), p)
        if result.min_mm >= SAFETY_MM:
            if fits[-1] < min(lengths, key=lambda n: (abs(n - target), n)):
                screw.notes.append(f"shorter than {TIP_DEPTH:.0%} of the body's depth: kept off the midline "
                                   "or the body's wall")
            return screw
        if result.at_mm >= to_body_front and fits[-1] > lengths[0]:
            length = max(n for n in lengths if n < fits[-1])        # near the body's front or side: shorter
        elif diameter > DIAMETERS_MM[0]:
            diameter = max(d for d in DIAMETERS_MM if d < diameter)
        else:
            return NotPlanned(p.name, p.side, f"no {DIAMETERS_MM[0]:g} mm screw keeps {SAFETY_MM:g} mm of bone "
                                              f"around it along the pedicle axis (it comes within "
                                              f"{result.min_mm:.1f} mm)")


def _off_midline(point, plane, sign: float) -> float:
    """How far ``point`` lies on its own side (``sign``: +1 left) of the midline; no midline: far."""
    if plane is None:
        return np.inf
    return float(sign * (np.asarray(point) - plane[0]) @ plane[1])


def _r(x) -> list[float]:
    return [round(float(v), 2) for v in x]
