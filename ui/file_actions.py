"""File menu, preferences, drag and drop and edits of the main window (a mixin of MainWindow)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog

from spine_core.edits import delete_vertebra, merge_vertebrae, rename_vertebra, shift_levels
from spine_core.errors import SpineError
from spine_core.export import ExportOptions, export_meshes
from spine_core.labels import CRANIOCAUDAL, label_name
from ui import jobs
from ui.dialogs import ExportMeshesDialog, PreferencesDialog, SeriesPickerDialog
from viewers.slice_view import WINDOW_PRESETS

SCAN_FILTER = "Scans (*.nii *.nii.gz *.nrrd *.mha *.mhd *.dcm *.zip);;All files (*)"
LABEL_FILTER = "Label maps (*.nii *.nii.gz *.nrrd *.mha);;All files (*)"


class FileActionsMixin:
    batch_review = None          # ui.batch_review.BatchReviewController, once a batch was opened

    # --- file menu ----------------------------------------------------------------------------
    def _last_dir(self) -> str:
        return self.prefs.last_dir

    def _remember_dir(self, path) -> None:
        self.prefs.remember_dir(path)

    def choose_scan_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scan", self._last_dir(), SCAN_FILTER)
        if path:
            self._remember_dir(path)
            self.open_path(path)

    def choose_scan_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._last_dir())
        if path:
            self._remember_dir(path)
            self.open_path(path)

    def choose_labels_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open labels", self._last_dir(), LABEL_FILTER)
        if path:
            self._remember_dir(path)
            self.open_labels(path)

    def choose_batch_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open batch output folder", self._last_dir())
        if path:
            self._remember_dir(path)
            self.open_batch(path)

    def open_batch(self, path) -> bool:
        """List the cases of a batch output folder in the Batch review dock (ui/batch_review.py)."""
        from ui.batch_review import BatchReviewController

        if self.batch_review is None:
            self.batch_review = BatchReviewController(self)
        try:
            self.batch_review.open_folder(path)
        except SpineError as exc:
            self.errors.report(exc, "Opening the batch")
            return False
        return True

    def choose_labels_target(self) -> None:
        if self.session.labels is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save labels", str(Path(self._last_dir()) / "labels.nii.gz"),
                                              "NIfTI (*.nii.gz *.nii)")
        if path:
            self._remember_dir(path)
            self.save_labels(path)

    def save_labels(self, path):
        """Write the label map as NIfTI (atomically: a failure never leaves half a file)."""
        return self.run_task("save", "Saving labels", jobs.save_labels, self.session.labels, path,
                             on_result=lambda p: self.statusBar().showMessage(f"Saved {p}", 8000))

    def choose_export(self) -> None:
        dialog = ExportMeshesDialog(self.prefs.export_dir, self.prefs.export_format, self)
        if dialog.exec():
            self.prefs.export_dir = dialog.folder()
            self.prefs.export_format = dialog.format()
            self.export_meshes(dialog.folder(), dialog.format())

    def export_meshes(self, folder, fmt: str = "stl"):
        """One file per vertebra plus manifest.json, in LPS millimetres."""
        volume = self.session.volume
        options = ExportOptions(fmt, volume.metadata.series_uid if volume is not None else "")
        return self.run_task("export", "Exporting meshes", export_meshes, dict(self.session.meshes),
                             Path(folder), options,
                             on_result=lambda p: self.statusBar().showMessage(f"Exported meshes to {p}", 8000))

    def choose_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", str(Path(self._last_dir()) / "spineplan.png"),
                                              "PNG (*.png)")
        if path:
            try:
                self.save_screenshot(path)
            except SpineError as exc:
                self.errors.report(exc, "Saving the screenshot")

    def choose_screenshot_3d(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save 3D view picture",
                                              str(Path(self._last_dir()) / "spineplan-3d.png"), "PNG (*.png)")
        if path:
            try:
                self.save_3d_screenshot(path)
            except SpineError as exc:
                self.errors.report(exc, "Saving the 3D picture")

    def save_3d_screenshot(self, path) -> Path:
        """The 3D view alone, as rendered."""
        from PySide6.QtGui import QImage

        path = Path(path)
        image = self.views.mesh_view.screenshot()
        h, w = image.shape[:2]
        data = image[..., :3].copy(order="C")
        if not QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).save(str(path)):
            raise SpineError(f"Could not write '{path}'. Choose a .png file you can write.")
        return path

    def pick_series(self, study: jobs.LoadedStudy) -> None:
        """Several series in the folder: a (window-modal, non-blocking) picker; the choice opens."""
        dialog = SeriesPickerDialog(study.series, self)
        self.series_dialog = dialog

        def chosen(result: int) -> None:
            self.series_dialog = None
            uid = dialog.chosen_uid()
            dialog.deleteLater()
            if result and uid:
                self.open_path(study.paths.scan, study.paths.labels, series=uid)

        dialog.finished.connect(chosen)
        dialog.open()

    def _series_needed(self, study: jobs.LoadedStudy) -> None:
        listing = "; ".join(f"{s.uid} ({s.description or s.modality}, {s.n_slices} slices)" for s in study.series)
        self.task_error("load", SpineError(f"This folder holds {len(study.series)} series; choose one "
                                           f"with --series UID: {listing}"), "Opening")

    def choose_preferences(self) -> None:
        dialog = PreferencesDialog(self.device(), self.autosave_interval_s(), self, method=self.method())
        if dialog.exec():
            self.set_device(dialog.device())
            self.set_method(dialog.method())
            self.prefs.autosave_s = dialog.autosave_s()

    def _on_mesh_opacity_changed(self, value: int) -> None:
        self.prefs.mesh_opacity = value / 100.0

    # --- recent files and preferences ---------------------------------------------------------
    def recent_files(self) -> list[str]:
        return self.prefs.recent_files

    def add_recent(self, path: str) -> None:
        self.prefs.add_recent(path)
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        menu = self.actions.recent_menu
        menu.clear()
        for path in self.recent_files():
            menu.addAction(path).triggered.connect(lambda _c=False, p=path: self.open_path(p))
        menu.setEnabled(bool(self.recent_files()))

    def restore_preferences(self) -> None:
        geometry, state, splitter = self.prefs.window_layout()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if splitter is not None:
            self.views.splitter.restoreState(splitter)
        preset = self.prefs.window_preset
        self.set_window_preset(preset if preset in WINDOW_PRESETS else "bone")
        self.actions.opacity_slider.setValue(int(self.prefs.label_opacity * 100))
        self.views.mesh_opacity.setValue(int(self.prefs.mesh_opacity * 100))
        self._fill_recent_menu()

    def save_preferences(self) -> None:
        self.prefs.save_window_layout(self.saveGeometry(), self.saveState(), self.views.splitter.saveState())

    def set_window_preset(self, name: str) -> None:
        if name not in WINDOW_PRESETS:
            return
        self.views.set_window_preset(name)
        self.actions.presets[name].setChecked(True)
        if self.preset_combo.currentText() != name:
            self.preset_combo.setCurrentText(name)
        self.prefs.window_preset = name

    def set_label_opacity(self, opacity: float) -> None:
        self.views.set_label_opacity(opacity)
        self.prefs.label_opacity = opacity

    # --- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path = paths[0]
        if self.session.volume is not None and Path(path).is_file() and jobs.looks_like_labels(path):
            self.open_labels(path)
        else:
            self.open_path(path)

    # --- edits --------------------------------------------------------------------------------
    def make_edit(self, make, *args) -> bool:
        """Build an edit from the current labels and apply it; SpineErrors are shown, not raised."""
        if self.session.labels is None:
            return False
        try:
            self.session.apply(make(self.session.labels, *args))
        except SpineError as exc:
            self.errors.report(exc, "The edit")
            return False
        return True

    def undo(self) -> None:
        if self.session.history.can_undo():
            edit = self.session.undo()
            self.statusBar().showMessage(f"Undid: {edit.description}", 5000)

    def redo(self) -> None:
        if self.session.history.can_redo():
            edit = self.session.redo()
            self.statusBar().showMessage(f"Redid: {edit.description}", 5000)

    def rename_vertebra(self, old_id: int, new_id: int) -> bool:
        return self.make_edit(rename_vertebra, old_id, new_id)

    def shift_levels(self, step: int) -> bool:
        return self.make_edit(shift_levels, step)

    def merge_vertebrae(self, source: int, target: int) -> bool:
        return self.make_edit(merge_vertebrae, source, target)

    def delete_vertebra(self, label_id: int) -> bool:
        return self.make_edit(delete_vertebra, label_id)

    def delete_selected(self) -> None:
        if self.session.selected:
            self.delete_vertebra(self.session.selected)
        else:
            self.statusBar().showMessage("Select a vertebra to delete (click a row or a mesh).", 5000)

    def _ask_vertebra(self, title: str, prompt: str, ids: list[int]) -> int | None:
        names = [label_name(i) for i in ids]
        name, ok = QInputDialog.getItem(self, title, prompt, names, 0, False)
        return ids[names.index(name)] if ok and name in names else None

    def choose_rename(self) -> None:
        selected = self.session.selected
        if not selected:
            self.statusBar().showMessage("Select the vertebra to rename first.", 5000)
            return
        free = [i for i in CRANIOCAUDAL if i not in self.session.labels.ids()]
        new_id = self._ask_vertebra("Rename vertebra", f"Rename {label_name(selected)} to:", free)
        if new_id is not None:
            self.rename_vertebra(selected, new_id)

    def choose_merge(self) -> None:
        selected = self.session.selected
        if not selected:
            self.statusBar().showMessage("Select the vertebra to merge first.", 5000)
            return
        others = [r.label_id for r in self.rows if r.label_id != selected]
        target = self._ask_vertebra("Merge vertebra", f"Merge {label_name(selected)} into:", others)
        if target is not None:
            self.merge_vertebrae(selected, target)
