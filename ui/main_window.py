"""The SpinePlan main window: linked slices + 3D, the vertebra table, menus; wiring only.

The window builds the widgets and hands them, with the Session and itself as their ``ui.host.Host``, to
controllers that own the state and the work: ``tasks`` (Workers, progress, cancel; ui/tasks.py),
``analysis`` (ui/analysis_actions.py), ``display`` (what the views show; ui/display.py), ``files``
(ui/file_actions.py), ``plans`` (plans and autosave; ui/plan_actions.py), ``edits``
(ui/edit_tools.py), ``measure`` and ``planning`` (measurements and screws, in docks beside the vertebra
table; ui/measure_actions.py, ui/planning_actions.py), ``adapt`` (Tools > Adapt to local scans, a training
subprocess; ui/adapt_actions.py). The menus (ui/menus.py, ui/planning_menu.py) call
the controllers. ``study_ready`` is emitted once a scan and its meshes are fully shown.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from spine_core.errors import SpineError
from ui.adapt_actions import AdaptController
from ui.analysis_actions import AnalysisController
from ui.display import DisplayController
from ui.edit_tools import EditController
from ui.errors import ErrorReporter
from ui.export_actions import ExportController
from ui.file_actions import FileController
from ui.measure_actions import MeasureController
from ui.measurements_panel import MeasurementsPanel
from ui.menus import build_actions, build_tools_menu
from ui.plan_actions import PlanController
from ui.planning_actions import PlanningController
from ui.planning_menu import add_planning_docks, build_planning_menu
from ui.preferences import Preferences
from ui.screws_panel import ScrewsPanel
from ui.session import Session
from ui.task_status import TaskStatusWidget
from ui.tasks import StudyReadiness, TaskController
from ui.vertebra_panel import VertebraPanel
from ui.views_panel import ViewsPanel
from ui.worker import Worker

ORGANISATION = APPLICATION = "SpinePlan"


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class MainWindow(QMainWindow):
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
        self.session = Session(parent=self)
        self._build(crash_report)
        session, prefs = self.session, self.prefs
        self.tasks = TaskController(self.task_status, self.errors.report, self.show_status, self)
        self.ready = StudyReadiness(self.tasks, session, self)
        self.analysis = AnalysisController(session, self.vertebra_panel, self, prefs, self.ready, segment)
        self.display = DisplayController(session, self.views, self.results, self, prefs)
        self.files = FileController(session, self, prefs, self.ready)
        self.plans = PlanController(session, self, prefs, self.files, autosave_dir)
        self.edits = EditController(session, self.views, self, prefs, lambda: self.analysis.rows)
        self.exports = ExportController(session, self, prefs, self.analysis.analysis_record,
                                        lambda: self.planning.not_planned)
        self.measure = MeasureController(session, self.measurements_panel, self.views, self)
        self.planning = PlanningController(session, self.screws_panel, self.views, self, self._centroids)
        self.measure.measured.connect(lambda doc, labels: self.planning.checks.take_pedicles(doc["pedicles"], labels))
        self.batch_review = None        # ui.batch_review.BatchReviewController, once a batch was opened
        self.adapt = AdaptController(self, prefs)
        self.actions = build_actions(self)
        self.planning_actions = build_planning_menu(self, self.planning_docks)
        self.tools_menu = build_tools_menu(self)
        self._connect()
        self.restore_preferences()
        self.setAcceptDrops(True)
        self._update_actions()

    def _build(self, crash_report) -> None:
        self.views = ViewsPanel(self)
        self.setCentralWidget(self.views)
        self.vertebra_panel = VertebraPanel()
        self.results = self.vertebra_panel.table
        self.results_dock = QDockWidget("Vertebrae", self)
        self.results_dock.setObjectName("VertebraeDock")
        self.results_dock.setWidget(self.vertebra_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.results_dock)
        self.resizeDocks([self.results_dock], [440], Qt.Orientation.Horizontal)
        self.measurements_panel, self.screws_panel = MeasurementsPanel(), ScrewsPanel()
        self.planning_docks = add_planning_docks(self, self.results_dock, {"Measurements": self.measurements_panel,
                                                                           "Screws": self.screws_panel})
        self.errors = ErrorReporter(self, self.show_dialogs, crash_report)
        self.task_status = TaskStatusWidget()
        self.statusBar().addPermanentWidget(self.task_status)
        self.resize(1600, 900)

    def _connect(self) -> None:
        actions = self.actions
        self.tasks.busy_changed.connect(self.busy_changed)
        self.ready.ready.connect(self.study_ready)
        self.ready.failed.connect(self.task_failed)
        for signal in (self.files.scan_opened, self.files.labels_opened, self.analysis.analysis_shown):
            signal.connect(self.display.reset_camera_on_next_meshes)
        self.files.scan_opened.connect(lambda name: self.setWindowTitle(f"SpinePlan - {name}"))
        self.files.labels_opened.connect(self.analysis.drop_warnings)
        self.files.recent_changed.connect(lambda paths: actions.fill_recent(paths, self.files.open_path))
        self.files.batch_folder_chosen.connect(self.open_batch)
        self.analysis.analysis_shown.connect(self.plans.schedule_autosave)
        self.edits.brush_mode_changed.connect(actions.show_brush_mode)
        self.display.window_presets_changed.connect(actions.offer_window_presets)
        self.display.window_preset_changed.connect(actions.show_window_preset)
        for signal in (self.session.volume_changed, self.session.labels_changed, self.session.meshes_changed,
                       self.session.selection_changed, self.session.history_changed,
                       self.analysis.availability_changed):
            signal.connect(self._update_actions)

    def _update_actions(self, *_args) -> None:
        self.actions.update(self.session, self.analysis.segment_fn is not None, self.analysis.segment_unavailable)

    def _centroids(self) -> dict:
        return {row.label_id: row.centroid for row in self.analysis.rows}

    # --- the Host of the controllers (ui/host.py) ---------------------------------------------
    def run_task(self, role: str, action: str, fn, *args, on_result=None, **kwargs) -> Worker:
        return self.tasks.run(role, action, fn, *args, on_result=on_result, **kwargs)

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    def report_error(self, exc: BaseException, action: str = "") -> str:
        return self.errors.report(exc, action)

    # --- what the launcher (app/gui.py) and the batch review call -----------------------------
    @property
    def ask_series(self) -> bool:
        """Several DICOM series in a folder: ask which (False: fail with the listing)."""
        return self.files.ask_series

    @ask_series.setter
    def ask_series(self, ask: bool) -> None:
        self.files.ask_series = ask

    def open_path(self, path, labels=None, series: str | None = None) -> Worker:
        return self.files.open_path(path, labels, series)

    def open_plan(self, path) -> Worker:
        return self.plans.open_plan(path)

    def analyze(self) -> Worker | None:
        return self.analysis.analyze()

    def offer_recovery(self) -> bool:
        return self.plans.offer_recovery()

    def save_screenshot(self, path) -> Path:
        return self.display.save_screenshot(path)

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

    # --- preferences, drag and drop, closing --------------------------------------------------
    def restore_preferences(self) -> None:
        geometry, state, splitter = self.prefs.window_layout()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if splitter is not None:
            self.views.splitter.restoreState(splitter)
        self.display.restore()
        self.actions.opacity_slider.setValue(int(self.prefs.label_opacity * 100))
        self.actions.fill_recent(self.files.recent_files(), self.files.open_path)

    def save_preferences(self) -> None:
        self.prefs.save_window_layout(self.saveGeometry(), self.saveState(), self.views.splitter.saveState())

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files.open_dropped(paths[0])

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Cancel running tasks and wait for them (each stops at its next progress update)."""
        self.save_preferences()
        self.adapt.shutdown()           # a running adaptation is stopped; its checkpoint is kept
        self.tasks.shutdown()
        self.plans.mark_clean_close()
        self.views.close_views()
        super().closeEvent(event)
