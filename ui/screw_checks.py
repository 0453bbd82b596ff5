"""The live check of every planned screw (ScrewChecks): its least distance to the cortex and expected
Gertzbein-Robbins grade (``spine_core.planning.check_screw``) against the labels shown.

A check needs the bone grid of the screw's vertebra (its distance to the cortex, ``spine_core.measure.bone_grid``):
about a second to make on a 0.8 mm scan, so grids are made in a Worker the first time a vertebra needs one and
kept for the labels shown; with its grid a check takes a few milliseconds and runs on the spot, while a screw
is dragged. An edit drops the grids (and measured pedicles) of the vertebrae it touched and clears the checks
of the screws in them: they are checked again, and a screw now in another vertebra (renamed, shifted) belongs to
that one. The pedicles (from Measure or Suggest) say where grading starts (spine_core.planning.clearance).
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject

from spine_core.labels import NAME_TO_ID, vertebra_name
from spine_core.measure.pedicles import Pedicle
from spine_core.planning.edits import NOT_CHECKED, unchecked, vertebra_along
from spine_core.planning.screws import Screw, VertebraBones, check_screw
from ui import planning_jobs
from ui.host import Host
from ui.session import Session


class ScrewChecks(QObject):
    def __init__(self, session: Session, host: Host) -> None:
        super().__init__(host.window())
        self.session, self.host = session, host
        self.labels = None                                   # the labels the grids and pedicles are of
        self.grids: dict = {}                                # label id -> BoneGrid
        self.boxes: list | None = None                       # every label's bounding box
        self.pedicles: dict[tuple[str, str], Pedicle] = {}   # (vertebra, side) -> measured pedicle
        self.all_pedicles = False                            # every vertebra's pedicles are in self.pedicles
        self.worker = None
        self._building: set[int] = set()
        session.labels_changed.connect(self._on_labels_changed)
        session.volume_changed.connect(self._forget)

    # --- what is known of the labels shown ----------------------------------------------------
    def pedicle(self, vertebra: str, side: str) -> Pedicle | None:
        return self.pedicles.get((vertebra, side))

    def pedicles_of_labels(self, labels) -> list[Pedicle] | None:
        """Every pedicle measured on ``labels`` (None where they were not all measured on them: not measured,
        or a vertebra was edited since)."""
        if labels is not self.labels or not self.all_pedicles:
            return None
        return list(self.pedicles.values())

    def take_pedicles(self, pedicles, labels) -> None:
        """Pedicles measured (Measure: dicts; Suggest: Pedicle) on ``labels``, if they are the labels shown."""
        if labels is not self.session.labels or labels is not self.labels:
            return
        for p in pedicles:
            p = p if isinstance(p, Pedicle) else Pedicle(**p)
            self.pedicles[(p.name, p.side)] = p
        self.all_pedicles = True                 # (Measure and Suggest measure every vertebra's)

    def take_grids(self, grids: dict, labels, boxes: list | None = None) -> None:
        if labels is self.session.labels and labels is self.labels:
            self.grids.update(grids)
            self.boxes = boxes if boxes is not None else self.boxes

    def _forget(self) -> None:
        """A new scan: nothing known of its labels yet."""
        self.labels, self.grids, self.pedicles, self._building = self.session.labels, {}, {}, set()
        self.boxes, self.all_pedicles = None, False

    # --- checking -----------------------------------------------------------------------------
    def check(self, screw: Screw) -> Screw | None:
        """``screw`` checked now if its vertebra's grid is at hand, else None."""
        labels = self.session.labels
        label_id = NAME_TO_ID.get(screw.vertebra)
        if labels is None or labels is not self.labels or label_id not in self.grids:
            return None
        return check_screw(VertebraBones(labels, self.grids, self.boxes), screw,
                           self.pedicle(screw.vertebra, screw.side))

    def refresh(self) -> None:
        """Check every unchecked screw whose grid is at hand; make the missing grids in a Worker."""
        labels, screws = self.session.labels, self.session.screws
        if labels is None or not screws:
            return
        if labels is not self.labels:               # (labels are announced before they change again)
            self._forget()
        out, missing = [], set()
        for screw in screws:
            if screw.min_cortex_distance_mm is not None or NOT_CHECKED in screw.notes:
                out.append(screw)
                continue
            screw = self._in_its_vertebra(labels, screw)
            checked = self.check(screw) if NOT_CHECKED not in screw.notes else screw
            if checked is None:
                missing.add(NAME_TO_ID[screw.vertebra])
            out.append(checked or screw)
        self.session.set_screws(out)
        if missing:
            self._build(missing)

    @staticmethod
    def _in_its_vertebra(labels, screw: Screw) -> Screw:
        """The vertebra an unchecked screw runs through now (a rename or a shift of the levels moves it)."""
        found = vertebra_along(labels, screw.entry_lps, screw.tip_lps)
        if found is None:
            return replace(screw, notes=[*screw.notes, NOT_CHECKED])
        return screw if vertebra_name(found) == screw.vertebra else replace(screw, vertebra=vertebra_name(found))

    def pending(self) -> bool:
        return self.worker is not None and not self.worker.done

    def _build(self, ids: set[int]) -> None:
        if ids <= self._building and self.pending():
            return
        self._building = set(ids) | (self._building if self.pending() else set())
        self.worker = self.host.run_task("screw-check", "Preparing the screw check", planning_jobs.bone_grids,
                                         self.session.labels, sorted(self._building), self.boxes,
                                         on_result=self._on_grids)

    def _on_grids(self, value) -> None:
        grids, boxes, labels = value
        self._building = set()
        if labels is self.session.labels:
            self.take_grids(grids, labels, boxes)
            self.refresh()

    def _remap(self, remap: dict[int, int]) -> None:
        """Grids and pedicles follow their bone to its new id (a remap renames, it never merges)."""
        self.grids = {remap.get(i, i): g for i, g in self.grids.items()}
        renamed = (replace(p, label_id=remap.get(p.label_id, p.label_id),
                           name=vertebra_name(remap.get(p.label_id, p.label_id))) for p in self.pedicles.values())
        self.pedicles = {(p.name, p.side): p for p in renamed}

    # --- session ------------------------------------------------------------------------------
    def _on_labels_changed(self, touched) -> None:
        labels = self.session.labels
        whole = labels is None or self.labels is None or not labels.same_grid(self.labels)
        touched = {int(i) for i in touched}
        self.boxes = None                        # the edited labels' boxes moved
        if whole:
            self.grids, self.pedicles, self.all_pedicles = {}, {}, False
        elif self.session.last_remap:            # a rename or shift: the same bones under other names
            self._remap(self.session.last_remap)
        else:
            self.grids = {i: g for i, g in self.grids.items() if i not in touched}
            names = {vertebra_name(i) for i in touched}
            self.pedicles = {k: p for k, p in self.pedicles.items() if k[0] not in names}
            self.all_pedicles = False
        self.labels = labels
        if labels is None or not self.session.screws:
            return
        self.session.set_screws(
            unchecked(s) if whole or NAME_TO_ID.get(s.vertebra) in touched or NOT_CHECKED in s.notes else s
            for s in self.session.screws)
