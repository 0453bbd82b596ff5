"""Pedicle screw planning (PlanningController): suggest, add, drag, resize and delete screws; each change one
undoable step of the Session's history (``spine_core.planning.edits.ScrewEdit``), drawn in 3D and on the
slices (viewers/screw_overlay.py), listed in the Screws panel with its live check (ui/screw_checks.py).

- Suggest runs ``spine_core.planning`` in a Worker (re-using the pedicles Measure found on the same labels);
  the suggestions replace the earlier suggested screws; a side where the surgeon placed a screw keeps it.
- Add: click the entry point on a slice, then the tip (the vertebra and side follow from where it runs).
- Drag the entry (ring) or tip (dot) of a screw on any slice: it moves within that slice, checked live;
  the release is the undoable step.
- Delete removes the selected screw (the Delete key, when a screw is selected, deletes it, not a vertebra).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from spine_core.errors import SpineError
from spine_core.planning.edits import (MIN_LENGTH_MM, ScrewEdit, ScrewPlacementError, moved_screw, place_screw,
                                       sort_screws, with_length)
from spine_core.planning.screws import DIAMETERS_MM
from ui import planning_jobs
from ui.host import Host
from ui.screw_checks import ScrewChecks
from ui.screws_panel import ScrewsPanel
from ui.session import Session
from ui.views_panel import ViewsPanel
from viewers.screw_overlay import describe, parse_handle, pending_items, screw_items

OVERLAY, PENDING = "screws", "screw-entry"
SEE_THROUGH = 25           # the 3D opacity (%) set once screws appear, so that they show inside the bone
MAX_LENGTH_MM = 120.0


class PlanningController(QObject):
    adding_changed = Signal(bool)

    def __init__(self, session: Session, panel: ScrewsPanel, views: ViewsPanel, host: Host,
                 centroids: Callable[[], dict]) -> None:
        """``centroids()``: label id -> LPS centroid of the vertebrae shown (for a drawn screw's side)."""
        super().__init__(host.window())
        self.session, self.panel, self.views, self.host, self.centroids = session, panel, views, host, centroids
        self.checks = ScrewChecks(session, host)
        self.selected = -1
        self.adding = False
        self.not_planned: list = []
        self._entry: np.ndarray | None = None
        self._drag: tuple | None = None            # (index, end, screws before the drag, preview or None)
        self._made_see_through = False
        for signal, slot in (
                (panel.suggest_clicked, self.suggest), (panel.add_toggled, self.set_adding),
                (panel.delete_clicked, self.delete_selected), (panel.screw_clicked, self.select),
                (panel.diameter_edited, self.set_diameter), (panel.length_edited, self.set_length),
                (views.point_picked, self._on_point_picked), (views.handle_pressed, self._on_handle_pressed),
                (views.handle_moved, self._on_handle_moved), (views.handle_released, self._on_handle_released),
                (session.screws_changed, self._on_screws_changed),
                (session.selection_changed, self._on_selection_changed),
                (session.volume_changed, self._on_volume_changed)):
            signal.connect(slot)

    # --- suggest ------------------------------------------------------------------------------
    def suggest(self):
        """Suggest screws on the labels shown in a Worker; returns the Worker (None without labels)."""
        labels = self.session.labels
        if labels is None:
            self.host.report_error(SpineError("Open or analyse a scan's labels before planning screws."),
                                   "Suggesting screws")
            return None
        return self.host.run_task("suggest", "Suggesting screws", planning_jobs.suggest, labels,
                                  self.checks.pedicles_of_labels(labels), on_result=self._on_suggested)

    def _on_suggested(self, value) -> None:
        plan, labels = value
        if labels is not self.session.labels:
            self.host.show_status("The labels were edited while the screws were planned: suggest again.", 10000)
            return
        if plan.bones is not None:
            self.checks.take_grids(plan.bones.grids, labels, plan.bones.boxes)
        self.checks.take_pedicles(plan.pedicles, labels)
        kept = [s for s in self.session.screws if s.source == "user"]
        taken = {(s.vertebra, s.side) for s in kept}
        self.not_planned = list(plan.not_planned)
        added = [s for s in plan.screws if (s.vertebra, s.side) not in taken]
        self._commit(f"Suggest {len(added)} screws", kept + added)
        self.host.show_status(f"{len(added)} screws suggested, {len(kept)} of yours kept; "
                              f"{len(plan.not_planned)} pedicles take none (see the Screws panel)", 10000)

    # --- add ----------------------------------------------------------------------------------
    def set_adding(self, on: bool) -> None:
        """"Add screw" mode: the next two clicks on a slice are the entry point and the tip."""
        on = bool(on) and self.session.labels is not None
        self.adding, self._entry = on, None
        self.views.set_pick_mode(on)
        self.views.set_overlay(PENDING, [])
        self.panel.set_adding(on)
        self.adding_changed.emit(on)
        if on:
            self.host.show_status("Add screw: click its entry point on a slice, then its tip.", 10000)

    def toggle_adding(self) -> None:
        self.set_adding(not self.adding)

    def _on_point_picked(self, _plane: str, x: float, y: float, z: float) -> None:
        if not self.adding:
            return
        point = np.array([x, y, z])
        if self._entry is None:
            self._entry = point
            self.views.set_overlay(PENDING, pending_items(point))
            return
        self.add_screw(self._entry, point)
        self.set_adding(False)

    def add_screw(self, entry, tip, diameter_mm: float | None = None) -> bool:
        """Place a screw from ``entry`` to ``tip`` (LPS mm) as one undoable step; it is selected."""
        if self.session.labels is None:
            return False
        try:
            screw = place_screw(self.session.labels, entry, tip, self.centroids(), self.checks.pedicle, diameter_mm)
        except ScrewPlacementError as exc:
            self.host.report_error(exc, "Adding a screw")
            return False
        screw = self.checks.check(screw) or screw
        self._commit(f"Add screw {screw.vertebra} {screw.side}", [*self.session.screws, screw], screw)
        return True

    # --- move, resize, delete -----------------------------------------------------------------
    def move_end(self, index: int, end: str, lps) -> bool:
        """Move a screw's "entry" or "tip" to ``lps`` as one undoable step (what a drag ends in)."""
        moved = self._moved(index, end, lps, self.session.screws)
        if moved is None:
            return False
        self._commit(f"Move the {end} of screw {moved.vertebra} {moved.side}",
                     self._replaced(self.session.screws, index, moved), moved)
        return True

    def _moved(self, index: int, end: str, lps, screws):
        if self.session.labels is None or not 0 <= index < len(screws):
            return None
        try:
            moved = moved_screw(self.session.labels, screws[index], self.centroids(), **{end: np.asarray(lps)})
        except ScrewPlacementError as exc:
            self.host.show_status(str(exc), 5000)
            return None
        return self.checks.check(moved) or moved

    def set_diameter(self, index: int, diameter_mm: float) -> bool:
        screws = self.session.screws
        if not 0 <= index < len(screws) or not 2.0 <= diameter_mm <= 10.0:
            self.host.show_status(f"A screw's diameter is a number of mm, {DIAMETERS_MM[0]:g}-{DIAMETERS_MM[-1]:g} "
                                  "standard.", 8000)
            self._redraw()
            return False
        moved = moved_screw(self.session.labels, screws[index], self.centroids(), diameter_mm=diameter_mm)
        moved = self.checks.check(moved) or moved
        self._commit(f"Make screw {moved.vertebra} {moved.side} {diameter_mm:g} mm thick",
                     self._replaced(screws, index, moved), moved)
        return True

    def set_length(self, index: int, length_mm: float) -> bool:
        screws = self.session.screws
        if not 0 <= index < len(screws) or not MIN_LENGTH_MM <= length_mm <= MAX_LENGTH_MM:
            self.host.show_status(f"A screw's length is {MIN_LENGTH_MM:g}-{MAX_LENGTH_MM:g} mm.", 8000)
            self._redraw()
            return False
        try:
            moved = with_length(self.session.labels, screws[index], self.centroids(), length_mm)
        except ScrewPlacementError as exc:
            self.host.report_error(exc, "Changing the length")
            self._redraw()
            return False
        moved = self.checks.check(moved) or moved
        self._commit(f"Make screw {moved.vertebra} {moved.side} {length_mm:g} mm long",
                     self._replaced(screws, index, moved), moved)
        return True

    def delete_selected(self) -> bool:
        """Delete the selected screw (one undoable step); False when no screw is selected."""
        screws = self.session.screws
        if not 0 <= self.selected < len(screws):
            return False
        gone = screws[self.selected]
        self.selected = -1
        self._commit(f"Delete screw {gone.vertebra} {gone.side}", [s for s in screws if s is not gone])
        return True

    @staticmethod
    def _replaced(screws, index: int, screw) -> list:
        return [screw if k == index else s for k, s in enumerate(screws)]

    def _commit(self, description: str, screws, chosen=None) -> None:
        after = sort_screws(screws)
        self.selected = next((k for k, s in enumerate(after) if s is chosen), -1)
        self.session.apply(ScrewEdit(description, self.session.screws, after))

    # --- dragging on the slices ---------------------------------------------------------------
    def _on_handle_pressed(self, name: str) -> None:
        found = parse_handle(name)
        if found is None or not 0 <= found[0] < len(self.session.screws):
            return
        self.select(found[0], go=False)
        self._drag = (found[0], found[1], self.session.screws, None)

    def _on_handle_moved(self, name: str, x: float, y: float, z: float) -> None:
        if self._drag is None:
            return
        index, end, before, _preview = self._drag
        moved = self._moved(index, end, (x, y, z), before)
        if moved is not None:
            preview = self._replaced(before, index, moved)
            self._drag = (index, end, before, preview)
            self._redraw(preview)

    def _on_handle_released(self, name: str, x: float, y: float, z: float) -> None:
        if self._drag is None:
            return
        self._on_handle_moved(name, x, y, z)
        index, end, before, preview = self._drag
        self._drag = None
        if preview is None or self.session.screws is not before:
            self._redraw()
            return
        moved = preview[index]
        self._commit(f"Move the {end} of screw {moved.vertebra} {moved.side}", preview, moved)

    # --- selection and display ----------------------------------------------------------------
    def select(self, index: int, go: bool = True) -> None:
        """Select a screw (-1: none); ``go``: move the slices to its middle."""
        screws = self.session.screws
        self.selected = index if 0 <= index < len(screws) else -1
        self._redraw()
        if go and self.selected >= 0:
            screw = screws[self.selected]
            self.views.set_crosshair((np.asarray(screw.entry_lps) + np.asarray(screw.tip_lps)) / 2)
            self.host.show_status(describe(screw), 8000)

    def _redraw(self, screws=None) -> None:
        screws = self.session.screws if screws is None else screws
        self.views.set_overlay(OVERLAY, screw_items(screws, self.selected))
        self.panel.set_screws(screws, self.selected)
        grades = Counter(s.grade for s in screws if s.grade)
        text = (f"{len(screws)} screws" + (": " + ", ".join(f"{n} grade {g}" for g, n in sorted(grades.items()))
                                           if grades else "")) if screws else "No screws planned."
        if self.not_planned:
            text += f"; {len(self.not_planned)} pedicles take none (hover for why)"
        self.panel.set_summary(text, "\n".join(f"{n.vertebra} {n.side}: {n.reason}" for n in self.not_planned))

    def _on_screws_changed(self) -> None:
        if self.selected >= len(self.session.screws):
            self.selected = -1
        self.checks.refresh()
        self._redraw()
        if self.session.screws and not self._made_see_through and self.views.mesh_opacity.value() > SEE_THROUGH:
            self._made_see_through = True
            self.views.mesh_opacity.setValue(SEE_THROUGH)
            self.host.show_status(f"3D opacity set to {SEE_THROUGH} % so that the screws show inside the bone", 8000)

    def _on_selection_changed(self, label_id: int) -> None:
        if label_id and self.selected >= 0 and self._drag is None:
            self.select(-1)

    def _on_volume_changed(self) -> None:
        self.set_adding(False)
        self.not_planned, self.selected, self._drag = [], -1, None
        self._redraw()
