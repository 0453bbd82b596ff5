"""Opening and saving (FileController): scans, labels and studies in Workers, the series picker,
labels and meshes out, recent files, the file dialogs and the Preferences dialog."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from spine_core.errors import SpineError
from spine_core.export import ExportOptions, export_meshes
from ui import jobs
from ui.dialogs import ExportMeshesDialog, PreferencesDialog, SeriesPickerDialog
from ui.host import Host
from ui.preferences import Preferences
from ui.session import Session
from ui.tasks import StudyReadiness
from ui.worker import Worker

SCAN_FILTER = "Scans (*.nii *.nii.gz *.nrrd *.mha *.mhd *.dcm *.zip);;All files (*)"
LABEL_FILTER = "Label maps (*.nii *.nii.gz *.nrrd *.mha);;All files (*)"


class FileController(QObject):
    scan_opened = Signal(str)            # a scan is shown (its file name)
    labels_opened = Signal()             # labels from a file replaced those shown
    recent_changed = Signal(list)        # the recent files, newest first
    batch_folder_chosen = Signal(str)

    def __init__(self, session: Session, host: Host, prefs: Preferences, ready: StudyReadiness) -> None:
        super().__init__(host.window())
        self.session, self.host, self.prefs, self.ready = session, host, prefs, ready
        self.ask_series = True           # several DICOM series: ask (False: fail with the listing)
        self.series_dialog: SeriesPickerDialog | None = None

    # --- opening ------------------------------------------------------------------------------
    def open_path(self, path, labels=None, series: str | None = None) -> Worker:
        """Open a scan (file, DICOM folder or zip, or a study folder with dicom/ + labels)."""
        paths = jobs.resolve_study(path, labels)
        self.ready.expect()
        self.add_recent(str(path))
        return self.host.run_task("load", f"Opening {paths.scan.name}", jobs.load_study, paths, series,
                                  on_result=self._on_study_loaded)

    def open_study(self, load, *args, name: str, on_opened=None) -> Worker:
        """Open what ``load(*args, progress=...)`` reads (a ``jobs.LoadedStudy``) as ``open_path`` does,
        e.g. a plan or a batch case; ``on_opened(study)`` runs once it is shown."""
        self.ready.expect()

        def loaded(study: jobs.LoadedStudy) -> None:
            self._on_study_loaded(study)
            if on_opened is not None:
                on_opened(study)

        return self.host.run_task("load", f"Opening {name}", load, *args, on_result=loaded)

    def open_labels(self, path) -> Worker | None:
        if self.session.volume is None:
            self.host.report_error(SpineError("Open a scan before its labels."), "Opening labels")
            return None
        self.ready.expect()
        return self.host.run_task("labels", f"Opening {Path(path).name}", jobs.read_labels, path,
                                  self.session.volume, on_result=self._on_labels_loaded)

    def open_dropped(self, path) -> Worker | None:
        """A file or folder dropped on the window: labels for the open scan, else a scan."""
        if self.session.volume is not None and Path(path).is_file() and jobs.looks_like_labels(path):
            return self.open_labels(path)
        return self.open_path(path)

    def _on_study_loaded(self, study: jobs.LoadedStudy) -> None:
        if study.volume is None:
            if self.ask_series:
                self.ready.forget()
                self.pick_series(study)
            else:
                self._series_needed(study)
            return
        self.session.set_volume(study.volume, str(study.paths.scan))
        if study.labels is not None:
            self.session.set_labels(study.labels)
        for warning in study.warnings:
            self.host.show_status(f"Note: {warning}", 10000)
        self.scan_opened.emit(study.paths.scan.name)

    def _on_labels_loaded(self, value) -> None:
        labels, note = value
        self.session.set_labels(labels)
        self.labels_opened.emit()
        if note:
            self.host.show_status(f"Note: {note}", 10000)

    def pick_series(self, study: jobs.LoadedStudy) -> None:
        """Several series in the folder: a (window-modal, non-blocking) picker; the choice opens."""
        dialog = SeriesPickerDialog(study.series, self.host.window())
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
        text = self.host.report_error(SpineError(f"This folder holds {len(study.series)} series; choose one "
                                                 f"with --series UID: {listing}"), "Opening")
        self.ready.fail(text)

    # --- saving -------------------------------------------------------------------------------
    def save_labels(self, path) -> Worker:
        """Write the label map as NIfTI (atomically: a failure never leaves half a file)."""
        return self.host.run_task("save", "Saving labels", jobs.save_labels, self.session.labels, path,
                                  on_result=lambda p: self.host.show_status(f"Saved {p}", 8000))

    def export_meshes(self, folder, fmt: str = "stl") -> Worker:
        """One file per vertebra plus manifest.json, in LPS millimetres."""
        volume = self.session.volume
        meta = volume.metadata if volume is not None else None
        options = ExportOptions(fmt, meta.series_uid if meta else "", meta.frame_of_reference_uid if meta else "")
        return self.host.run_task("export", "Exporting meshes", export_meshes, dict(self.session.meshes),
                                  Path(folder), options,
                                  on_result=lambda p: self.host.show_status(f"Exported meshes to {p}", 8000))

    # --- recent files -------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return self.prefs.recent_files

    def add_recent(self, path: str) -> None:
        self.prefs.add_recent(path)
        self.recent_changed.emit(self.recent_files())

    # --- dialogs ------------------------------------------------------------------------------
    def _chosen(self, path: str) -> str:
        if path:
            self.prefs.remember_dir(path)
        return path

    def choose_scan_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.host.window(), "Open scan", self.prefs.last_dir, SCAN_FILTER)
        if self._chosen(path):
            self.open_path(path)

    def choose_scan_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.host.window(), "Open DICOM folder", self.prefs.last_dir)
        if self._chosen(path):
            self.open_path(path)

    def choose_labels_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.host.window(), "Open labels", self.prefs.last_dir, LABEL_FILTER)
        if self._chosen(path):
            self.open_labels(path)

    def choose_batch_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.host.window(), "Open batch output folder", self.prefs.last_dir)
        if self._chosen(path):
            self.batch_folder_chosen.emit(path)

    def choose_labels_target(self) -> None:
        if self.session.labels is None:
            return
        start = str(Path(self.prefs.last_dir) / "labels.nii.gz")
        path, _ = QFileDialog.getSaveFileName(self.host.window(), "Save labels", start, "NIfTI (*.nii.gz *.nii)")
        if self._chosen(path):
            self.save_labels(path)

    def choose_export(self) -> None:
        dialog = ExportMeshesDialog(self.prefs.export_dir, self.prefs.export_format, self.host.window())
        if dialog.exec():
            self.prefs.export_dir = dialog.folder()
            self.prefs.export_format = dialog.format()
            self.export_meshes(dialog.folder(), dialog.format())

    def choose_preferences(self, tab: str = "general") -> None:
        """``tab``: "general" or "models" (Tools > Models...)."""
        prefs = self.prefs
        dialog = PreferencesDialog(prefs.device, prefs.autosave_s, self.host.window(), method=prefs.method, tab=tab,
                                   mr_method=prefs.mr_method)
        if dialog.exec():
            prefs.device, prefs.method, prefs.autosave_s = dialog.device(), dialog.method(), dialog.autosave_s()
            prefs.mr_method = dialog.mr_method()
