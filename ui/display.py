"""What the views and the vertebra table show of the Session (DisplayController).

The scan and labels on the slices, the vertebra meshes in 3D (made in a Worker for the vertebrae whose
voxels changed), the selection in the table and the views, the window preset and opacities (kept in
the preferences), and pictures of the window or of the 3D view.

Window presets follow the scan's modality (spine_core.windowing.display_modality): a CT gets the HU
presets (WINDOW_PRESETS), an MR, whose units are arbitrary, "MR auto" and "MR contrast" computed from its
own values. Only a CT preset is kept in the preferences, so an MR's window never carries over to a CT:
opening a CT after an MR restores the last CT preset.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFileDialog

from spine_core.errors import SpineError
from spine_core.windowing import MR_WINDOW_PERCENTILES, auto_window, display_modality, width_level
from ui import jobs
from ui.host import Host
from ui.preferences import Preferences
from ui.results_panel import ResultsPanel
from ui.session import Session
from ui.views_panel import ViewsPanel
from viewers.slice_view import WINDOW_PRESETS


class DisplayController(QObject):
    window_preset_changed = Signal(str)
    window_presets_changed = Signal(list)        # the preset names the open scan's modality offers

    def __init__(self, session: Session, views: ViewsPanel, table: ResultsPanel, host: Host,
                 prefs: Preferences) -> None:
        super().__init__(host.window())
        self.session, self.views, self.table, self.host, self.prefs = session, views, table, host, prefs
        self._reset_camera = False
        self.modality = "CT"                     # of the scan shown (CT before any is opened)
        session.volume_changed.connect(self._on_volume_changed)
        session.labels_changed.connect(self._on_labels_changed)
        session.meshes_changed.connect(self._on_meshes_changed)
        session.selection_changed.connect(self._on_selection_changed)
        table.vertebra_clicked.connect(self.pick_vertebra)
        table.visibility_changed.connect(views.mesh_view.set_mesh_visible)
        views.vertebra_picked.connect(self.pick_vertebra)
        views.mesh_opacity.valueChanged.connect(self._on_mesh_opacity_changed)

    def reset_camera_on_next_meshes(self) -> None:
        """New labels or a new scan: the 3D view frames the meshes once they are made."""
        self._reset_camera = True

    # --- session -> views ---------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        volume = self.session.volume
        self.views.set_volume(volume)
        if volume is None:
            return
        was, self.modality = self.modality, display_modality(volume)
        if self.modality != was:
            self.window_presets_changed.emit(self.preset_names())
        if self.modality == "MR":
            self.set_window_preset("MR auto")                # from this scan's own values
        elif was == "MR":
            self._restore_ct_preset()

    def _on_labels_changed(self, _touched) -> None:
        labels = self.session.labels
        self.views.set_labels(labels)
        stale = set(self.session.stale_mesh_ids)
        if labels is not None and stale:
            self.host.run_task("mesh", f"Meshing {len(stale)} vertebrae", jobs.make_meshes, labels, stale,
                               dict(self.session.meshes), on_result=self._on_meshes_made)

    def _on_meshes_made(self, value) -> None:
        meshes, labels, ids = value
        self.session.set_meshes(meshes, labels, ids)

    def _on_meshes_changed(self) -> None:
        if self.views.mesh_view.plotter is None:
            return
        reset = self._reset_camera and bool(self.session.meshes)
        if reset:
            self._reset_camera = False
        self.views.set_meshes(self.session.meshes, reset_camera=reset)
        if reset:
            self.views.mesh_view.set_standard_view("anterior")
        self.views.highlight(self.session.selected)

    def _on_selection_changed(self, label_id: int) -> None:
        self.table.select_vertebra(label_id)
        self.views.highlight(label_id)

    def pick_vertebra(self, label_id: int) -> None:
        """Select a vertebra (a row clicked, a mesh picked) and move the slices to it."""
        self.session.select(label_id)
        self.go_to_vertebra(label_id)

    def go_to_vertebra(self, label_id: int) -> None:
        """Move every slice to the vertebra's centroid."""
        for row in self.table.rows:
            if row.label_id == label_id:
                self.views.set_crosshair(row.centroid)
                self.host.show_status(f"{row.name}: {row.volume_ml:.1f} mL", 5000)

    # --- display settings ---------------------------------------------------------------------
    def restore(self) -> None:
        """The window preset and 3D opacity of the last session."""
        self._restore_ct_preset()
        self.views.mesh_opacity.setValue(int(self.prefs.mesh_opacity * 100))

    def _restore_ct_preset(self) -> None:
        preset = self.prefs.window_preset
        self.set_window_preset(preset if preset in WINDOW_PRESETS else "bone")

    def preset_names(self) -> list[str]:
        """The window presets for the scan shown: HU presets for a CT, the MR ones for an MR."""
        return list(MR_WINDOW_PERCENTILES if self.modality == "MR" else WINDOW_PRESETS)

    def set_window_preset(self, name: str) -> None:
        """Show the slices in preset ``name``; a preset of the other modality is ignored."""
        if name not in self.preset_names():
            return
        if name in MR_WINDOW_PERCENTILES:
            if self.session.volume is None:
                return
            self.views.set_window(*width_level(*auto_window(self.session.volume, *MR_WINDOW_PERCENTILES[name])))
        else:
            self.views.set_window_preset(name)
            self.prefs.window_preset = name              # CT presets only: never an MR's
        self.window_preset_changed.emit(name)

    def set_label_opacity(self, opacity: float) -> None:
        self.views.set_label_opacity(opacity)
        self.prefs.label_opacity = opacity

    def _on_mesh_opacity_changed(self, value: int) -> None:
        self.prefs.mesh_opacity = value / 100.0

    # --- pictures -----------------------------------------------------------------------------
    def grab_window(self) -> QPixmap:
        """The whole window as shown, the 3D render included."""
        window = self.host.window()
        pixmap = window.grab()
        self.views.paint_3d_into(pixmap, window)
        return pixmap

    def save_screenshot(self, path) -> Path:
        path = Path(path)
        if not self.grab_window().save(str(path)):
            raise SpineError(f"Could not write the screenshot '{path}'. Choose a .png file you can write.")
        return path

    def save_3d_screenshot(self, path) -> Path:
        """The 3D view alone, as rendered."""
        path = Path(path)
        image = self.views.mesh_view.screenshot()
        h, w = image.shape[:2]
        data = image[..., :3].copy(order="C")
        if not QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).save(str(path)):
            raise SpineError(f"Could not write '{path}'. Choose a .png file you can write.")
        return path

    def choose_screenshot(self) -> None:
        self._choose_picture("Save screenshot", "spineplan.png", self.save_screenshot, "Saving the screenshot")

    def choose_screenshot_3d(self) -> None:
        self._choose_picture("Save 3D view picture", "spineplan-3d.png", self.save_3d_screenshot,
                             "Saving the 3D picture")

    def _choose_picture(self, title: str, name: str, save, action: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self.host.window(), title, str(Path(self.prefs.last_dir) / name),
                                              "PNG (*.png)")
        if path:
            try:
                save(path)
            except SpineError as exc:
                self.host.report_error(exc, action)
