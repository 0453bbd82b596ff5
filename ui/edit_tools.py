"""Split and the paint/erase brush (a mixin of MainWindow); the voxel logic is spine_core.edits.

A brush stroke paints into a private copy of the labels, shown live on the slices; on release
it becomes one undoable voxel diff, and only the vertebrae it touched are re-meshed.
"""
from __future__ import annotations

from spine_core.edits import BrushStroke, EditError, split_vertebra


class EditToolsMixin:
    def _init_edit_tools(self) -> None:
        self.brush_mode = ""                  # "", "paint" or "erase"
        self.stroke: BrushStroke | None = None
        views = self.views
        views.stroke_started.connect(self._on_stroke_started)
        views.stroke_moved.connect(self._on_stroke_moved)
        views.stroke_finished.connect(self._on_stroke_finished)

    # --- split --------------------------------------------------------------------------------
    def split_vertebra(self, label_id: int, method: str = "plane") -> bool:
        return self.make_edit(split_vertebra, label_id, method)

    def split_selected(self, method: str = "plane") -> None:
        if not self.session.selected:
            self.statusBar().showMessage("Select the vertebra to split first.", 5000)
            return
        self.split_vertebra(self.session.selected, method)

    # --- brush --------------------------------------------------------------------------------
    def brush_radius_mm(self) -> float:
        return self.prefs.brush_radius_mm

    def set_brush_radius(self, radius_mm: float) -> None:
        self.prefs.brush_radius_mm = radius_mm
        if self.brush_mode:
            self.views.set_brush(float(radius_mm))

    def set_brush_mode(self, mode: str) -> None:
        """'paint' or 'erase' the selected vertebra on the slices; '' for crosshair clicks."""
        self.brush_mode = mode if mode in ("paint", "erase") else ""
        self.views.set_brush(self.brush_radius_mm() if self.brush_mode else None)
        actions = self.actions
        actions.paint.setChecked(self.brush_mode == "paint")
        actions.erase.setChecked(self.brush_mode == "erase")
        if self.brush_mode and not self.session.selected:
            self.statusBar().showMessage("Select the vertebra to paint (a row or a mesh), then drag.", 8000)

    def _on_stroke_started(self, plane: str, x: float, y: float, z: float) -> None:
        labels = self.session.labels
        if labels is None or not self.brush_mode:
            return
        try:
            self.stroke = BrushStroke(labels, self.session.selected, self.brush_radius_mm(),
                                      erase=self.brush_mode == "erase",
                                      normal_axis=self.views.slices[plane].normal_array_axis())
        except EditError as exc:
            self.errors.report(exc, "Painting")
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
