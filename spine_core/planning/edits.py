"""The surgeon's changes to a screw plan (Qt-free): one undoable step, and screws placed or moved by hand.

A ``ScrewEdit`` holds the plan's screws before and after the change (a plan has a few dozen at most, so
whole lists are kept, not diffs). It shares the workstation's edit history with the label edits
(``spine_core.edits.LabelEdit``): it has their ``description``, ``inverse()``, ``touched`` and ``nbytes``.

A screw drawn by the surgeon (``place_screw``) belongs to the vertebra its axis runs through most
(``vertebra_along``), on the side of the vertebra's centroid its entry lies (patient left: +L). Moving an end
(``moved_screw``) keeps its diameter, assigns the vertebra and side again and clears its check: the distance
to the cortex and the grade belong to the old position until ``check_screw`` has run.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spine_core.labels import CRANIOCAUDAL, vertebra_name
from spine_core.measure.pedicles import Pedicle
from spine_core.planning.screws import DIAMETERS_MM, FILL, Screw
from spine_core.volume import LabelMap

NOT_CHECKED = "not in a labelled vertebra: not checked"
DEFAULT_DIAMETER_MM = 5.0      # a screw drawn where no pedicle was measured
MIN_LENGTH_MM = 10.0           # a drawn screw's tip this far from its entry at least
SAMPLE_MM = 0.5


class ScrewPlacementError(ValueError):
    """A screw cannot be placed there; the message says why."""


@dataclass(frozen=True)
class ScrewEdit:
    description: str
    before: tuple[Screw, ...]
    after: tuple[Screw, ...]
    remap: tuple = ()               # never an id remap (the label edits' field)

    @property
    def is_remap(self) -> bool:
        return False

    @property
    def touched(self) -> frozenset[int]:
        """No label ids: a screw edit changes no voxel."""
        return frozenset()

    def inverse(self) -> "ScrewEdit":
        return replace(self, before=self.after, after=self.before)

    @property
    def nbytes(self) -> int:
        return 256 * (len(self.before) + len(self.after))


def vertebra_along(labels: LabelMap, entry, tip) -> int | None:
    """The vertebra the segment from ``entry`` to ``tip`` (LPS mm) runs through most, None if none."""
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    n = max(int(np.linalg.norm(tip - entry) / SAMPLE_MM), 1) + 1
    points = entry + np.linspace(0.0, 1.0, n)[:, None] * (tip - entry)
    ijk = np.rint(labels.lps_to_index(points)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(labels.shape)), axis=1)
    ids = labels.array[tuple(ijk[inside].T)].astype(np.int64)
    ids = ids[np.isin(ids, list(CRANIOCAUDAL))]
    if len(ids) == 0:
        return None
    return int(np.bincount(ids).argmax())


def side_of(entry, centroid) -> str:
    """'left' where the entry lies to the patient's left of the vertebra's centroid (LPS: +x)."""
    return "left" if float(entry[0]) >= float(centroid[0]) else "right"


def fitting_diameter(pedicle: Pedicle | None) -> float:
    """The largest standard diameter at most FILL of the pedicle's narrowest dimension (the suggestion's
    rule), DEFAULT_DIAMETER_MM where the pedicle was not measured, the smallest where it is too narrow."""
    if pedicle is None or not pedicle.found:
        return DEFAULT_DIAMETER_MM
    narrowest = min(pedicle.width_mm, pedicle.height_mm)
    sizes = [d for d in DIAMETERS_MM if d <= FILL * narrowest]
    return sizes[-1] if sizes else DIAMETERS_MM[0]


def _geometry(labels: LabelMap, entry, tip, centroids: dict) -> tuple[str, str, float]:
    entry, tip = np.asarray(entry, float), np.asarray(tip, float)
    length = float(np.linalg.norm(tip - entry))
    if length < MIN_LENGTH_MM:
        raise ScrewPlacementError(f"The tip must lie at least {MIN_LENGTH_MM:g} mm from the entry point "
                                  f"(it is {length:.1f} mm).")
    label_id = vertebra_along(labels, entry, tip)
    if label_id is None:
        raise ScrewPlacementError("A screw must run through a vertebra: neither its entry nor its tip "
                                  "nor the path between them lies in a labelled vertebra.")
    centroid = centroids.get(label_id)
    side = side_of(entry, centroid) if centroid is not None else ("left" if entry[0] >= tip[0] else "right")
    return vertebra_name(label_id), side, round(length, 1)


def place_screw(labels: LabelMap, entry, tip, centroids: dict, pedicle_of=None,
                diameter_mm: float | None = None) -> Screw:
    """A screw the surgeon drew from ``entry`` to ``tip`` (LPS mm), not yet checked. ``centroids``: label id ->
    LPS centroid (for the side); ``pedicle_of(vertebra, side)``: its measured pedicle, for the diameter."""
    name, side, length = _geometry(labels, entry, tip, centroids)
    if diameter_mm is None:
        diameter_mm = fitting_diameter(pedicle_of(name, side) if pedicle_of else None)
    return Screw(name, side, _r(entry), _r(tip), float(diameter_mm), length, source="user")


def moved_screw(labels: LabelMap, screw: Screw, centroids: dict, entry=None, tip=None,
                diameter_mm: float | None = None) -> Screw:
    """``screw`` with a new entry, tip or diameter: placed by the surgeon now, its check cleared."""
    entry = screw.entry_lps if entry is None else entry
    tip = screw.tip_lps if tip is None else tip
    name, side, length = _geometry(labels, entry, tip, centroids)
    return replace(screw, vertebra=name, side=side, entry_lps=_r(entry), tip_lps=_r(tip), length_mm=length,
                   diameter_mm=float(screw.diameter_mm if diameter_mm is None else diameter_mm),
                   min_cortex_distance_mm=None, grade=None, source="user", notes=[])


def with_length(labels: LabelMap, screw: Screw, centroids: dict, length_mm: float) -> Screw:
    """``screw`` made ``length_mm`` long from the same entry, along the same axis."""
    entry, tip = np.asarray(screw.entry_lps, float), np.asarray(screw.tip_lps, float)
    axis = (tip - entry) / np.linalg.norm(tip - entry)
    return moved_screw(labels, screw, centroids, tip=entry + float(length_mm) * axis)


def unchecked(screw: Screw) -> Screw:
    """``screw`` with its check cleared (the labels it was checked on changed)."""
    return replace(screw, min_cortex_distance_mm=None, grade=None, notes=[n for n in screw.notes if n != NOT_CHECKED])


def sort_screws(screws) -> tuple[Screw, ...]:
    """Head to foot, left before right (the order of the screw table)."""
    order = {name: k for k, name in enumerate(vertebra_name(i) for i in CRANIOCAUDAL)}
    return tuple(sorted(screws, key=lambda s: (order.get(s.vertebra, len(order)), s.side != "left")))


def _r(x) -> list[float]:
    return [round(float(v), 2) for v in x]
