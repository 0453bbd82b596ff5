"""The SpinePlan main window: linked slices + 3D, the vertebra table, menus, background tasks.

Analysis, plans/autosave and the edit tools live in mixins (ui/analysis_actions.py,
ui/plan_actions.py, ui/edit_tools.py, ui/file_actions.py). Every long task (load, analyse, mesh,
save, export) runs in a ``Worker`` on the window's
own thread pool; one task per role runs at a time (a new load cancels the previous one) and stale
results are ignored. ``study_ready`` is emitted once a scan and its meshes are fully shown.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, QThreadPool, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from spine_core.errors import SpineError
from ui import jobs
from ui.preferences import Preferences
from ui.analysis_actions import AnalysisMixin
from ui.edit_tools import EditToolsMixin
from ui.file_actions import FileActionsMixin
from ui.menus import build_actions
from ui.plan_actions import PlanMixin
from ui.session import Session
from ui.task_status import TaskStatusWidget
from ui.vertebra_panel import VertebraPanel
from ui.views_panel import ViewsPanel
from ui.worker import Worker

log = logging.getLogger(__name__)
ORGANISATION = APPLICATION = "SpinePlan"


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class _TaskRelay(QObject):
    """Receives one Worker's signals on the GUI thread (a QObject receiver makes them queued)."""

    def __init__(self, window: "MainWindow", role: str, worker: Worker, on_result, action: str) -> None:
        super().__init__(window)
        self.window, self.role, self.worker = window, role, worker
        self.on_result, self.action = on_result, action
        signals = worker.signals
        signals.progress.connect(self._on_progress)
        signals.result.connect(self._on_result)
        signals.error.connect(self._on_error)
        signals.cancelled.connect(self._on_cancelled)
        signals.finished.connect(self._on_finished)

    def _current(self) -> bool:
        return not self.window.closing and self.window.tasks.get(self.role) is self.worker

    def _on_progress(self, fraction: float, message: str) -> None:
        if self._current():
            self.window.task_status.update_progress(fraction, message)

    def _on_result(self, value) -> None:
        if self._current() and not self.worker.cancel_requested:
            try:
                self.on_result(value)
            except Exception as exc:  # noqa: BLE001 - a failing handler is reported like a task error
                self._on_error(exc)

    def _on_error(self, exc) -> None:
        if self._current():
            self.window.task_error(self.role, exc, self.action)

    def _on_cancelled(self) -> None:
        if self._current():
            self.window.statusBar().showMessage(f"{self.action} cancelled", 5000)
            self.window.task_cancelled(self.role)

    def _on_finished(self) -> None:
        self.window.task_finished(self)


class MainWindow(AnalysisMixin, PlanMixin, EditToolsMixin, FileActionsMixin, QMainWindow):
    study_ready = Signal()          # scan shown, labels (if any) shown and meshed
    task_failed = Signal(str)       # a load/analysis/mesh failed or was cancelled: the message
    busy_changed = Signal(bool)

    def __init__(self, settings: QSettings | None = None, show_dialogs: bool = True,
                 parent: QWidget | None = None, segment=None, autosave_dir=None, crash_report=None) -> None:
        """``segment``: the analysis function (default: the installed pipeline, found lazily);
        ``autosave_dir``: where autosaves go (default: the per-user data folder);
        ``crash_report``: writes an unexpected error's traceback to a file (the app passes
        ``app.logs.write_crash_report``; default: the traceback goes to the log only)."""
        super().__init__(parent)
        self.setWindowTitle("SpinePlan")
        self.settings = settings if settings is not None else default_settings()
        self.prefs = Preferences(self.settings)
        self.show_dialogs = show_dialogs
        self.crash_report = crash_report
        self.ask_series = True           # several DICOM series: ask (False: fail with the listing)
        self.series_dialog = None
        self.closing = False
        self.session = Session(parent=self)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.tasks: dict[str, Worker] = {}        # the current worker of each role
        self._relays: set[_TaskRelay] = set()     # every worker still running (current or not)
        self._awaiting_ready = False
        self._reset_camera = False
        self.rows = []
        self._init_analysis(segment)
        self._build()
        self._init_plans(autosave_dir)
        self._init_edit_tools()
        self._connect_session()
        self.restore_preferences()
        self.setAcceptDrops(True)
        self._update_actions()

    def _build(self) -> None:
        from ui.errors import ErrorReporter

        self.views = ViewsPanel(self)
        self.setCentralWidget(self.views)
        self.vertebra_panel = VertebraPanel()
        self.results = self.vertebra_panel.table
        self.results_dock = QDockWidget("Vertebrae", self)
        self.results_dock.setObjectName("VertebraeDock")
        self.results_dock.setWidget(self.vertebra_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.results_dock)
        self.resizeDocks([self.results_dock], [440], Qt.Orientation.Horizontal)
        self.errors = ErrorReporter(self, self.show_dialogs, self.crash_report)
        self.task_status = TaskStatusWidget()
        self.task_status.cancel_clicked.connect(self.cancel_tasks)
        self.statusBar().addPermanentWidget(self.task_status)
        self.actions = build_actions(self)
        self.results.vertebra_clicked.connect(self._on_vertebra_clicked)
        self.views.vertebra_picked.connect(self._on_vertebra_clicked)
        self.results.visibility_changed.connect(self.views.mesh_view.set_mesh_visible)
        self.views.mesh_opacity.valueChanged.connect(self._on_mesh_opacity_changed)
        self.resize(1600, 900)

    def _connect_session(self) -> None:
        session = self.session
        session.volume_changed.connect(self._on_volume_changed)
        session.labels_changed.connect(self._on_labels_changed)
        session.meshes_changed.connect(self._on_meshes_changed)
        session.selection_changed.connect(self._on_selection_changed)
        session.history_changed.connect(self._update_actions)

    # --- tasks --------------------------------------------------------------------------------
    def run_task(self, role: str, action: str, fn, *args, on_result=None, **kwargs) -> Worker:
        """Run ``fn(*args, progress=..., **kwargs)`` in a Worker; a running task of the same role
        is cancelled and its result ignored."""
        previous = self.tasks.get(role)
        if previous is not None:
            previous.cancel()
        worker = Worker(fn, *args, name=action, **kwargs)
        relay = _TaskRelay(self, role, worker, on_result or (lambda _value: None), action)
        self._relays.add(relay)
        self.tasks[role] = worker
        self.task_status.start(f"{action}...")
        self.busy_changed.emit(True)
        self.pool.start(worker)
        return worker

    def is_busy(self) -> bool:
        return bool(self._relays)

    def cancel_tasks(self) -> None:
        for worker in self.tasks.values():
            worker.cancel()
        if self.tasks:
            self.task_status.cancelling()

    def task_finished(self, relay: _TaskRelay) -> None:
        self._relays.discard(relay)
        if self.tasks.get(relay.role) is relay.worker:
            del self.tasks[relay.role]
        relay.deleteLater()
        if self.closing:
            return
        if not self.tasks:
            self.task_status.stop()
            self.busy_changed.emit(False)
        self._check_ready()

    def task_error(self, role: str, exc: BaseException, action: str) -> None:
        text = self.errors.report(exc, action)
        if role in ("load", "analyze", "mesh") and self._awaiting_ready:
            self._awaiting_ready = False
            self.task_failed.emit(text)

    def task_cancelled(self, role: str) -> None:
        if role in ("load", "analyze", "mesh") and self._awaiting_ready:
            self._awaiting_ready = False
            self.task_failed.emit("cancelled")

    def _check_ready(self) -> None:
        busy = any(role in self.tasks for role in ("load", "labels", "analyze", "mesh"))
        if self._awaiting_ready and not busy and self.session.volume is not None \
                and not self.session.stale_mesh_ids:
            self._awaiting_ready = False
            self.study_ready.emit()

    # --- loading ------------------------------------------------------------------------------
    def open_path(self, path, labels=None, series: str | None = None) -> Worker:
        """Open a scan (file, DICOM folder or zip, or a study folder with dicom/ + labels)."""
        paths = jobs.resolve_study(path, labels)
        self._awaiting_ready = True
        self.add_recent(str(path))
        return self.run_task("load", f"Opening {paths.scan.name}", jobs.load_study, paths, series,
                             on_result=self._on_study_loaded)

    def open_study(self, load, *args, name: str, on_opened=None) -> Worker:
        """Open what ``load(*args, progress=...)`` reads (a ``jobs.LoadedStudy``) as ``open_path`` does,
        e.g. a batch case. ``on_opened(study)`` runs once it is shown and may set ``analysis`` and
        ``analysis_warnings`` (the vertebra table and its banner are refreshed after it)."""
        self._awaiting_ready = True

        def loaded(study: jobs.LoadedStudy) -> None:
            self._on_study_loaded(study)
            if on_opened is not None:
                on_opened(study)
            self.refresh_rows()

        return self.run_task("load", f"Opening {name}", load, *args, on_result=loaded)

    def open_labels(self, path) -> Worker | None:
        if self.session.volume is None:
            self.errors.report(SpineError("Open a scan before its labels."), "Opening labels")
            return None
        self._awaiting_ready = True
        return self.run_task("labels", f"Opening {Path(path).name}", jobs.read_labels, path,
                             self.session.volume, on_result=self._on_labels_loaded)

    def _on_study_loaded(self, study: jobs.LoadedStudy) -> None:
        if study.volume is None:
            if self.ask_series:
                self._awaiting_ready = False
                self.pick_series(study)
            else:
                self._series_needed(study)
            return
        self._reset_camera = True
        self.session.set_volume(study.volume, str(study.paths.scan))
        if study.labels is not None:
            self.session.set_labels(study.labels)
        for warning in study.warnings:
            self.statusBar().showMessage(f"Note: {warning}", 10000)
        self.setWindowTitle(f"SpinePlan - {study.paths.scan.name}")

    def _on_labels_loaded(self, value) -> None:
        labels, note = value
        self._reset_camera = True
        self.analysis_warnings = []
        self.session.set_labels(labels)
        if note:
            self.statusBar().showMessage(f"Note: {note}", 10000)

    # --- session -> views ---------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        from spine_core.plan import PlanInfo

        self.analysis, self.analysis_warnings = {}, []
        self.plan_info, self.plan_path = PlanInfo(), None
        self.views.set_volume(self.session.volume)
        self._update_actions()

    def _on_labels_changed(self, touched) -> None:
        labels = self.session.labels
        self.views.set_labels(labels)
        self._forget_analysis(touched)
        self.refresh_rows()
        stale = set(self.session.stale_mesh_ids)
        if labels is not None and stale:
            self.run_task("mesh", f"Meshing {len(stale)} vertebrae", jobs.make_meshes, labels, stale,
                          dict(self.session.meshes), on_result=self._on_meshes_made)
        if self.session.history.can_undo():
            self.schedule_autosave()
        self._update_actions()

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
        self._update_actions()

    def _on_selection_changed(self, label_id: int) -> None:
        self.results.select_vertebra(label_id)
        self.views.highlight(label_id)
        self._update_actions()

    def _on_vertebra_clicked(self, label_id: int) -> None:
        self.session.select(label_id)
        self.go_to_vertebra(label_id)

    def go_to_vertebra(self, label_id: int) -> None:
        """Move every slice to the vertebra's centroid."""
        for row in self.rows:
            if row.label_id == label_id:
                self.views.set_crosshair(row.centroid)
                self.statusBar().showMessage(f"{row.name}: {row.volume_ml:.1f} mL", 5000)

    def _update_actions(self) -> None:
        session, actions = self.session, self.actions
        has_labels = session.labels is not None and bool(session.labels.ids())
        actions.undo.setEnabled(session.history.can_undo())
        actions.redo.setEnabled(session.history.can_redo())
        undo, redo = session.history.next_undo(), session.history.next_redo()
        actions.undo.setText(f"&Undo {undo.description}" if undo else "&Undo")
        actions.redo.setText(f"&Redo {redo.description}" if redo else "&Redo")
        actions.undo.setToolTip(actions.undo.text().replace("&", "") + " (Ctrl+Z)")
        actions.redo.setToolTip(actions.redo.text().replace("&", "") + " (Ctrl+Shift+Z)")
        for action in actions.edits:
            action.setEnabled(has_labels)
        for action in actions.needs_scan:
            action.setEnabled(session.volume is not None)
        for action in actions.needs_meshes:
            action.setEnabled(bool(session.meshes))
        actions.save_plan.setEnabled(session.labels is not None)
        actions.analyze.setEnabled(session.volume is not None and self.segment_fn is not None)
        actions.analyze.setToolTip("Find, segment and number every vertebra (Ctrl+R)" if self.segment_fn
                                   else f"Analysis is unavailable: {self.segment_unavailable}")

    # --- pictures and closing -----------------------------------------------------------------
    def grab_window(self) -> QPixmap:
        """The whole window as shown, the 3D render included."""
        pixmap = self.grab()
        self.views.paint_3d_into(pixmap, self)
        return pixmap

    def save_screenshot(self, path) -> Path:
        path = Path(path)
        if not self.grab_window().save(str(path)):
            raise SpineError(f"Could not write the screenshot '{path}'. Choose a .png file you can write.")
        return path

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Cancel running tasks and wait for them (each stops at its next progress update)."""
        self.save_preferences()
        self.closing = True
        for relay in list(self._relays):
            relay.worker.cancel()
        self.pool.waitForDone()
        self.tasks.clear()
        self.mark_clean_close()
        self.views.close_views()
        super().closeEvent(event)
