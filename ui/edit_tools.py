"""Label edits (EditController): rename, shift, merge, delete, split, the paint/erase brush, undo and
redo. The voxel logic is spine_core.edits; each edit is one undoable step of the Session.

A brush stroke paints into a private copy of the labels, shown live on the slices; on release
it becomes one undoable voxel diff, and only the vertebrae it touched are re-meshed.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog

from spine_core.edits import (BrushStroke, EditError, delete_vertebra, merge_vertebrae, rename_vertebra,
                              shift_levels, split_vertebra)
from spine_core.errors import SpineError
from spine_core.labels import CRANIOCAUDAL, label_name
from spine_core.review import VertebraRow
from ui.host import Host
from ui.preferences import Preferences
from ui.session import Session
from ui.views_panel import ViewsPanel


class EditController(QObject):
    """``rows()`` gives the vertebrae as the table lists them (the choices of Merge)."""

    brush_mode_changed = Signal(str)     # "", "paint" or "erase"

    def __init__(self, session: Session, views: ViewsPanel, host: Host, prefs: Preferences,
                 rows: Callable[[], list[VertebraRow]]) -> None:
        super().__init__(host.window())
        self.session, self.views, self.host, self.prefs, self.rows = session, views, host, prefs, rows
        self.brush_mode = ""
        self.stroke: BrushStroke | None = None
        views.stroke_started.connect(self._on_stroke_started)
        views.stroke_moved.connect(self._on_stroke_moved)
        views.stroke_finished.connect(self._on_stroke_finished)

    # --- edits --------------------------------------------------------------------------------
    def make_edit(self, make, *args) -> bool:
        """Build an edit from the current labels and apply it; SpineErrors are shown, not raised."""
        if self.session.labels is None:
            return False
        try:
            self.session.apply(make(self.session.labels, *args))
        except SpineError as exc:
            self.host.report_error(exc, "The edit")
            return False
        return True

    def undo(self) -> None:
        if self.session.history.can_undo():
            edit = self.session.undo()
            self.host.show_status(f"Undid: {edit.description}", 5000)

    def redo(self) -> None:
        if self.session.history.can_redo():
            edit = self.session.redo()
            self.host.show_status(f"Redid: {edit.description}", 5000)

    def rename_vertebra(self, old_id: int, new_id: int) -> bool:
        return self.make_edit(rename_vertebra, old_id, new_id)

    def shift_levels(self, step: int) -> bool:
        return self.make_edit(shift_levels, step)

    def merge_vertebrae(self, source: int, target: int) -> bool:
        return self.make_edit(merge_vertebrae, source, target)

    def delete_vertebra(self, label_id: int) -> bool:
        return self.make_edit(delete_vertebra, label_id)

    def split_vertebra(self, label_id: int, method: str = "plane") -> bool:
        return self.make_edit(split_vertebra, label_id, method)

    # --- on the selected vertebra -------------------------------------------------------------
    def _selected(self, why: str) -> int:
        """The selected vertebra, or 0 with ``why`` in the status bar."""
        if not self.session.selected:
            self.host.show_status(why, 5000)
        return self.session.selected

    def delete_selected(self) -> None:
        if self._selected("Select a vertebra to delete (click a row or a mesh)."):
            self.delete_vertebra(self.session.selected)

    def split_selected(self, method: str = "plane") -> None:
        if self._selected("Select the vertebra to split first."):
            self.split_vertebra(self.session.selected, method)

    def choose_rename(self) -> None:
        selected = self._selected("Select the vertebra to rename first.")
        if selected:
            free = [i for i in CRANIOCAUDAL if i not in self.session.labels.ids()]
            new_id = self._ask_vertebra("Rename vertebra", f"Rename {label_name(selected)} to:", free)
            if new_id is not None:
                self.rename_vertebra(selected, new_id)

    def choose_merge(self) -> None:
        selected = self._selected("Select the vertebra to merge first.")
        if selected:
            others = [r.label_id for r in self.rows() if r.label_id != selected]
            target = self._ask_vertebra("Merge vertebra", f"Merge {label_name(selected)} into:", others)
            if target is not None:
                self.merge_vertebrae(selected, target)

    def _ask_vertebra(self, title: str, prompt: str, ids: list[int]) -> int | None:
        names = [label_name(i) for i in ids]
        name, ok = QInputDialog.getItem(self.host.window(), title, prompt, names, 0, False)
        return ids[names.index(name)] if ok and name in names else None

    # --- brush --------------------------------------------------------------------------------
    def set_brush_radius(self, radius_mm: float) -> None:
        self.prefs.brush_radius_mm = radius_mm
        if self.brush_mode:
            self.views.set_brush(float(radius_mm))

    def set_brush_mode(self, mode: str) -> None:
        """'paint' or 'erase' the selected vertebra on the slices; '' for crosshair clicks."""
        self.brush_mode = mode if mode in ("paint", "erase") else ""
        self.views.set_brush(self.prefs.brush_radius_mm if self.brush_mode else None)
        self.brush_mode_changed.emit(self.brush_mode)
        if self.brush_mode and not self.session.selected:
            self.host.show_status("Select the vertebra to paint (a row or a mesh), then drag.", 8000)

    def toggle_brush(self, mode: str) -> None:
        self.set_brush_mode("" if self.brush_mode == mode else mode)

    def _on_stroke_started(self, plane: str, x: float, y: float, z: float) -> None:
        labels = self.session.labels
        if labels is None or not self.brush_mode:
            return
        try:
            self.stroke = BrushStroke(labels, self.session.selected, self.prefs.brush_radius_mm,
                                      erase=self.brush_mode == "erase",
                                      normal_axis=self.views.slices[plane].normal_array_axis())
        except EditError as exc:
            self.host.report_error(exc, "Painting")
            return
        self._on_stroke_moved(plane, x, y, z)

    def _on_stroke_moved(self, plane: str, x: float, y: float, z: float) -> None:
        if self.stroke is None:
            return
        if self.stroke.add((x, y, z)):
            self.views.set_labels(self.stroke.preview())

    def _on_stroke_finished(self, _plane: str = "") -> None:
        stroke, self.stroke = self.stroke, None
        if stroke is None:
            return
        edit = stroke.finish()
        if edit is None:
            return
        self.session.apply(edit)

    def paint_stroke(self, points_lps, plane: str = "axial", erase: bool = False) -> None:
        """Script a stroke (tests, macros): as if dragged through ``points_lps`` on ``plane``."""
        self.set_brush_mode("erase" if erase else "paint")
        points = [tuple(float(v) for v in p) for p in points_lps]
        self._on_stroke_started(plane, *points[0])
        for point in points[1:]:
            self._on_stroke_moved(plane, *point)
        self._on_stroke_finished(plane)
