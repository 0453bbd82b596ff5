"""A whole screw plan from a label map, and its file: ``screws.json`` (LPS mm), written atomically.

``plan_screws(labels)`` measures the vertebrae and their pedicles and suggests the screws;
``write_screws`` / ``read_screws`` keep them (suggested and user-placed alike) in a result folder, where
``spineplan export --format markups`` finds them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.measure.pedicles import Pedicle, measure_pedicles
from spine_core.measure.vertebra import VertebraMeasures, measure_vertebrae
from spine_core.planning.screws import (DIAMETERS_MM, FILL, LENGTHS_MM, SAFETY_MM, TIP_DEPTH, NotPlanned, Screw,
                                        VertebraBones, suggest_screws)
from spine_core.volume import LabelMap

SCREWS_JSON = "screws.json"
FORMAT_VERSION = 1
METHOD = {
    "pedicle": "the isthmus is the narrowest cross-section across the pedicle axis between the body's "
               "posterior wall and the lamina (spine_core.measure.pedicles)",
    "entry": "where the pedicle axis leaves the posterior cortex; trajectory: the axis, through the isthmus",
    "diameter": f"the largest of {', '.join(f'{d:g}' for d in DIAMETERS_MM)} mm at most {FILL:.0%} of the "
                "pedicle's narrowest dimension",
    "length": f"tip at {TIP_DEPTH:.0%} of the body's depth along the trajectory, to 5 mm "
              f"({LENGTHS_MM[0]}-{LENGTHS_MM[-1]} mm); shorter where the tip would come near the vertebra's "
              "midline (found half-way between its two pedicles)",
    "check": f"signed distance from the screw's surface to the label's cortex (negative: breach), graded "
             f"from the pedicle's start; a suggestion keeps at least {SAFETY_MM:g} mm, else it is made shorter "
             "or thinner",
    "grade": "expected Gertzbein-Robbins grade: A no breach, B < 2 mm, C 2-4 mm, D 4-6 mm, E > 6 mm",
}


@dataclass
class ScrewPlan:
    screws: list[Screw]
    not_planned: list[NotPlanned]
    pedicles: list[Pedicle] = field(default_factory=list)
    bones: VertebraBones | None = field(default=None, repr=False)

    def pedicle(self, vertebra: str, side: str) -> Pedicle | None:
        return next((p for p in self.pedicles if p.name == vertebra and p.side == side), None)


def plan_screws(labels: LabelMap, vertebrae: list[VertebraMeasures] | None = None) -> ScrewPlan:
    """Pedicles of every vertebra, and a suggested screw for each thoracic and lumbar one that takes it."""
    vertebrae = measure_vertebrae(labels) if vertebrae is None else vertebrae
    bones = VertebraBones(labels)
    pedicles = measure_pedicles(labels, vertebrae, bones.grids)
    screws, skipped = suggest_screws(bones, pedicles)
    return ScrewPlan(screws, skipped, pedicles, bones)


def screws_document(screws: list[Screw], not_planned: list[NotPlanned] = (), **extra) -> dict:
    return {"format_version": FORMAT_VERSION, "coordinate_system": "LPS",
            "units": {"length": "mm"}, **extra, "method": METHOD,
            "screws": [s.to_dict() for s in screws], "not_planned": [n.to_dict() for n in not_planned]}


def write_screws(path, screws: list[Screw], not_planned: list[NotPlanned] = (), **extra) -> Path:

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(screws_document(screws, not_planned, **extra), indent=2) + "\n", encoding="utf-8")
    return path


def read_screws(path) -> list[Screw]:
    return read_screw_plan(path)[0]


def read_screw_plan(path) -> tuple[list[Screw], list[NotPlanned]]:
    """The screws of a screws.json and the sides it planned none for, with the reason."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if int(doc.get("format_version", 0)) > FORMAT_VERSION:
            raise SpineError(f"'{path}' was written by a newer SpinePlan; update SpinePlan to read it.")
        return ([Screw.from_dict(s) for s in doc.get("screws", [])],
                [NotPlanned(str(n["vertebra"]), str(n["side"]), str(n["reason"])) for n in doc.get("not_planned", [])])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SpineError(f"'{path}' is not a readable screw plan ({exc}); plan the screws again with "
                         "`spineplan screws`.") from exc
