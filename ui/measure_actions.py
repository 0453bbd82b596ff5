"""Measurements of the labels shown (MeasureController): ``spine_core.measure`` in a Worker, the numbers in the
Measurements panel, and the geometry of the row clicked drawn on the slices and in 3D.

Numbers describe the labels they were measured on: after an edit (or new labels) the panel says they are
stale until Measure runs again; the table keeps them meanwhile, and a click still draws them.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from spine_core.errors import SpineError
from ui import planning_jobs
from ui.host import Host
from ui.measurements_panel import MeasurementsPanel
from ui.session import Session
from ui.views_panel import ViewsPanel
from viewers.measure_overlay import angle_focus, angle_items, level_focus, level_items

OVERLAY = "measure"
TRANSLUCENT = 0.35          # the measured vertebra in 3D, so that its endplates and heights show


class MeasureController(QObject):
    measured = Signal(object, object)      # the document, the labels it was measured on

    def __init__(self, session: Session, panel: MeasurementsPanel, views: ViewsPanel, host: Host) -> None:
        super().__init__(host.window())
        self.session, self.panel, self.views, self.host = session, panel, views, host
        self.doc: dict | None = None
        self.labels = None                 # the labels self.doc was measured on
        self.stale = False
        self._see_through = 0              # the vertebra made translucent in 3D
        panel.measure_clicked.connect(self.measure)
        panel.level_clicked.connect(self.show_level)
        panel.angle_clicked.connect(self.show_angle)
        session.volume_changed.connect(self._on_volume_changed)
        session.labels_changed.connect(self._on_labels_changed)

    def measure(self):
        """Measure the labels shown in a Worker; returns the Worker (None without labels)."""
        if self.session.labels is None:
            self.host.report_error(SpineError("Open or analyse a scan's labels before measuring."), "Measuring")
            return None
        self.panel.set_status("Measuring...", stale=self.stale)
        return self.host.run_task("measure", "Measuring", planning_jobs.measure_labels, self.session.labels,
                                  self.session.volume, on_result=self._on_measured)

    def _on_measured(self, value) -> None:
        doc, labels = value
        self.doc, self.labels = doc, labels
        self.stale = labels is not self.session.labels
        self.panel.set_document(doc)
        self._say_status()
        self.clear_overlay()
        self.measured.emit(doc, labels)
        levels = sum(1 for row in doc["vertebrae"] if row.get("body_found"))
        self.host.show_status(f"Measured {levels} vertebral bodies and {len(doc['pedicles'])} pedicles", 8000)

    def _say_status(self) -> None:
        if self.doc is None:
            self.panel.set_status("Not measured yet: press Measure.")
        elif self.stale:
            self.panel.set_status("The labels were edited after these numbers were measured: they may be out "
                                  "of date. Press Measure to update them.", stale=True)
        else:
            density = "" if self.session.volume is not None else " (no scan: no bone density)"
            self.panel.set_status(f"Measured on the labels shown{density}. Click a row to see its geometry.")

    # --- geometry of a row --------------------------------------------------------------------
    def _rows_by_name(self) -> dict[str, dict]:
        return {row["name"]: row for row in self.doc["vertebrae"]}

    def show_level(self, index: int) -> None:
        """Draw a level's endplates, heights and pedicles; move the slices to it."""
        if self.doc is None or not 0 <= index < len(self.doc["vertebrae"]):
            return
        row = self.doc["vertebrae"][index]
        pedicles = [p for p in self.doc["pedicles"] if p["label_id"] == row["label_id"]]
        self.panel.select_level(index)
        self._draw(level_items(row, pedicles), level_focus(row, pedicles), row["label_id"])
        if self.session.labels is not None and row["label_id"] in self.session.labels.names:
            self.session.select(row["label_id"])
        if not row.get("body_found"):
            self.host.show_status(f"{row['name']}: {'; '.join(row.get('notes', [])) or 'not measured'}", 8000)

    def show_angle(self, index: int) -> None:
        """Draw the two endplates an alignment angle was measured between."""
        if self.doc is None or not 0 <= index < len(self.panel.angles):
            return
        angle = self.panel.angles[index]
        self.panel.select_angle(index)
        if angle is None:
            self.clear_overlay()
            return
        rows = self._rows_by_name()
        self._draw(angle_items(angle, rows), angle_focus(angle, rows), 0)
        self.host.show_status(f"{angle['name']}: {angle['degrees']:.1f} degrees, between {angle['upper']} "
                              f"{angle['upper_plane']} and {angle['lower']} {angle['lower_plane']}", 10000)

    def _draw(self, items, focus, label_id: int) -> None:
        self.views.set_overlay(OVERLAY, items)
        self._see_into(label_id)
        if focus is not None:
            self.views.set_crosshair(focus)

    def _see_into(self, label_id: int) -> None:
        """Make the measured vertebra translucent in 3D (the one before opaque again)."""
        mesh_view = self.views.mesh_view
        if mesh_view.plotter is None:
            return
        if self._see_through:
            mesh_view.set_opacity(mesh_view.opacity, ids=[self._see_through])
        self._see_through = label_id
        if label_id:
            mesh_view.set_opacity(min(TRANSLUCENT, mesh_view.opacity), ids=[label_id])

    def clear_overlay(self) -> None:
        self.views.set_overlay(OVERLAY, [])
        self._see_into(0)

    # --- session ------------------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        self.doc, self.labels, self.stale = None, None, False
        self.panel.clear()
        self.clear_overlay()

    def _on_labels_changed(self, _touched) -> None:
        if self.doc is not None and self.labels is not self.session.labels:
            self.stale = True
            self._say_status()
