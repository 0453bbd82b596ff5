"""The main window's controllers, each without a MainWindow: a Session, a stub host (a real
TaskController, the status lines and errors kept in lists) and real or stub widgets."""
import time

import numpy as np
import pytest
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QWidget

from spine_core.edits import delete_vertebra
from spine_core.errors import SpineError
from spine_core.io import load_scan
from spine_core.pipeline.api import SegmentOptions
from spine_core.plan import load_plan
from spine_core.progress import NullProgress
from spine_core.review import vertebra_rows
from tests.ui import fake_pipeline
from tests.ui.study import L1, T11, T12, synthetic_study
from ui.preferences import Preferences
from ui.session import Session
from ui.task_status import TaskStatusWidget
from ui.tasks import StudyReadiness, TaskController


class StubHost:
    """A ui.host.Host without a window."""

    show_dialogs = False

    def __init__(self) -> None:
        self.widget = QWidget()
        self.messages: list[str] = []
        self.errors: list[str] = []
        self.tasks = TaskController(TaskStatusWidget(), self.report_error, self.show_status, self.widget)

    def run_task(self, role, action, fn, *args, on_result=None, **kwargs):
        return self.tasks.run(role, action, fn, *args, on_result=on_result, **kwargs)

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        self.messages.append(message)

    def report_error(self, exc, action: str = "") -> str:
        self.errors.append(f"{action}: {exc}")
        return self.errors[-1]

    def window(self) -> QWidget:
        return self.widget


class StubSlice:
    def normal_array_axis(self) -> int:
        return 2                          # axial slices of the synthetic (LPS-aligned) study step along k


class StubViews(QObject):
    """What the EditController drives of a ViewsPanel."""

    stroke_started = Signal(str, float, float, float)
    stroke_moved = Signal(str, float, float, float)
    stroke_finished = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.slices = {"axial": StubSlice()}
        self.brush, self.shown = None, None

    def set_brush(self, radius_mm) -> None:
        self.brush = radius_mm

    def set_labels(self, labels) -> None:
        self.shown = labels


@pytest.fixture
def host(qtbot):
    host = StubHost()
    yield host
    host.tasks.shutdown()
    host.widget.deleteLater()
    qtbot.wait(10)


@pytest.fixture
def prefs(tmp_path):
    return Preferences(QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def study(tmp_path):
    """(scan path, labels path, a Session showing the scan and its labels)."""
    scan, labels, label_map = synthetic_study(tmp_path)
    session = Session()
    session.set_volume(load_scan(scan), str(scan))
    session.set_labels(label_map)
    return scan, labels, session


def _idle(qtbot, host):
    qtbot.waitUntil(lambda: not host.tasks.is_busy(), timeout=20000)


# --- tasks ------------------------------------------------------------------------------------------
def _double(n, progress):
    progress.update(0.5, "doubling")
    return 2 * n


def _fails(progress):
    raise SpineError("slice 47 is missing")


def _slow(progress):
    for i in range(1000):
        progress.update(i / 1000, "waiting")
        time.sleep(0.005)
    return "ran to the end"


def test_task_controller_reports_result_error_and_cancel(qtbot, host):
    tasks, results = host.tasks, []
    with qtbot.waitSignal(tasks.busy_changed, timeout=5000, check_params_cb=lambda busy: not busy):
        tasks.run("count", "Counting", _double, 21, on_result=results.append)
    assert results == [42] and tasks.current("count") is None and not tasks.is_busy()
    with qtbot.waitSignal(tasks.failed, timeout=5000) as failed:
        tasks.run("load", "Opening", _fails)
    assert failed.args == ["load", "Opening: slice 47 is missing"] and host.errors == ["Opening: slice 47 is missing"]
    worker = tasks.run("load", "Waiting", _slow, on_result=results.append)
    qtbot.waitUntil(lambda: tasks.status.bar.value() > 0, timeout=5000)
    with qtbot.waitSignal(tasks.cancelled, timeout=5000) as cancelled:
        tasks.status.cancel_button.click()
    _idle(qtbot, host)
    assert cancelled.args == ["load"] and worker.cancel_requested and results == [42]
    assert host.messages[-1] == "Waiting cancelled"


def test_a_new_task_of_a_role_replaces_the_running_one(qtbot, host):
    results = []
    first = host.run_task("load", "First", _slow, on_result=results.append)
    second = host.run_task("load", "Second", _double, 1, on_result=results.append)
    _idle(qtbot, host)
    assert first.cancel_requested and not second.cancel_requested and results == [2]


def test_study_readiness_waits_for_the_tasks_and_the_meshes(qtbot, host, study):
    _scan, _labels, session = study
    ready = StudyReadiness(host.tasks, session)
    ready.expect()
    host.run_task("load", "Opening", _double, 1)
    _idle(qtbot, host)
    assert ready.awaiting                                  # the meshes are not made yet
    session.set_meshes({}, session.labels, set(session.stale_mesh_ids))
    with qtbot.waitSignal(ready.ready, timeout=5000):
        host.run_task("mesh", "Meshing", _double, 1)
    ready.expect()
    with qtbot.waitSignal(ready.failed, timeout=5000) as failed:
        host.run_task("analyze", "Analysing", _fails)
    assert "slice 47" in failed.args[0] and not ready.awaiting


# --- analysis -------------------------------------------------------------------------------------
@pytest.fixture
def analysis(qtbot, host, prefs, study):
    """An AnalysisController with the test pipeline, filling a VertebraPanel of its own."""
    from ui.analysis_actions import AnalysisController
    from ui.vertebra_panel import VertebraPanel

    session = study[2]
    panel = VertebraPanel()
    qtbot.addWidget(panel)
    return AnalysisController(session, panel, host, prefs, StudyReadiness(host.tasks, session), fake_pipeline.segment)


def test_the_banner_counts_flagged_discs_as_discs(qtbot):
    from spine_core.review import VertebraRow
    from ui.vertebra_panel import VertebraPanel

    panel = VertebraPanel()
    qtbot.addWidget(panel)
    rows = [VertebraRow(i, name, 30.0, np.zeros(3), flags) for i, name, flags in
            ((23, "L4", ("low confidence",)), (123, "L4/L5", ("low confidence",)), (24, "L5", ()))]
    panel.set_warnings(["numbering not anchored"], rows)
    text = panel.warnings_text()
    assert "1 vertebra, 1 disc to review:" in text and "L4/L5: low confidence" in text
    assert "\u2022 L5" not in text                       # not flagged, not listed
    panel.set_warnings([], [rows[2]])
    assert panel.warnings_text() == ""


def test_analysis_controller_fills_rows_and_banner_from_a_segment_result(qtbot, host, analysis):
    session, panel = analysis.session, analysis.panel
    result = fake_pipeline.segment(session.volume, SegmentOptions(device="cpu"), NullProgress())
    with qtbot.waitSignal(analysis.analysis_shown):
        analysis.show_result(result)
    assert [r.name for r in analysis.rows] == ["T11", "T12", "L1"]
    assert [r.confidence for r in analysis.rows] == [0.93, 0.35, 0.93]
    assert panel.table.names() == ["T11", "T12", "L1"]
    banner = panel.warnings_text()
    assert "QA status: review" in banner and "T12: low confidence" in banner and "test pipeline" in banner
    assert "1 vertebra to review:" in banner
    assert host.messages[-1] == "Analysis done on fake (cpu): 3 vertebrae"
    session.apply(delete_vertebra(session.labels, L1))     # an edited vertebra's confidence no longer holds
    assert [r.confidence for r in analysis.rows] == [0.93, 0.35]
    analysis.drop_warnings()
    assert "QA status" not in panel.warnings_text() and "T12" in panel.warnings_text()
    session.set_volume(session.volume)                    # another scan, no labels yet: nothing stale shown
    assert analysis.rows == [] and panel.table.names() == [] and not panel.warnings_text()


def test_analysis_controller_runs_the_pipeline_and_says_why_not(qtbot, host, prefs, analysis):
    prefs.device = "cpu"
    with qtbot.waitSignal(analysis.analysis_shown, timeout=15000):
        analysis.analyze()
    assert "fake (cpu)" in host.messages[-1] and len(analysis.vertebrae) == 3
    with qtbot.waitSignal(analysis.availability_changed):
        analysis.set_pipeline(None, "not installed")
    assert analysis.analyze() is None and host.errors[-1] == "Analysis: Analysis is unavailable: not installed."


# --- plans ----------------------------------------------------------------------------------------
def test_plan_controller_saves_opens_and_autosaves_a_plan(qtbot, host, prefs, study, tmp_path):
    from ui.file_actions import FileController
    from ui.plan_actions import PlanController

    scan, _labels, session = study
    files = FileController(session, host, prefs, StudyReadiness(host.tasks, session))
    plans = PlanController(session, host, prefs, files, tmp_path / "autosave")
    session.apply(delete_vertebra(session.labels, L1))
    assert plans.autosave_timer.isActive()                  # the very first edit is autosaved too
    edited = session.labels.array.copy()
    plans.save_plan(tmp_path / "case")
    _idle(qtbot, host)
    assert plans.plan_path == tmp_path / "case.spineplan" and host.messages[-1].startswith("Saved plan")
    saved = load_plan(plans.plan_path)
    assert np.array_equal(saved.labels.array, edited) and saved.info.edits == ("Delete L1",)
    assert saved.info.scan_source == str(scan)
    session.apply(delete_vertebra(session.labels, T11))    # a second edit: an autosave is due
    assert plans.autosave_timer.isActive()
    plans.autosave_now()
    _idle(qtbot, host)
    assert plans.recovery_candidate() is not None
    with qtbot.waitSignal(files.scan_opened, timeout=20000):
        plans.open_plan(tmp_path / "case.spineplan")
    assert np.array_equal(session.labels.array, edited) and plans.plan_info.edits == ("Delete L1",)
    assert plans.plan_path == tmp_path / "case.spineplan" and prefs.recent_files[0].endswith("case.spineplan")
    plans.mark_clean_close()
    assert plans.recovery_candidate() is None and plans.autosave_now() is None


# --- edits ----------------------------------------------------------------------------------------
def test_edit_controller_applies_edits_and_undoes_them(qtbot, host, prefs, study):
    from ui.edit_tools import EditController

    _scan, _labels, session = study
    views = StubViews()
    edits = EditController(session, views, host, prefs, rows=lambda: [])
    original = session.labels.array.copy()
    assert edits.delete_vertebra(L1) and session.labels.ids() == [T11, T12]
    assert not edits.delete_vertebra(99) and "not in the label map" in host.errors[-1]
    edits.undo()
    assert np.array_equal(session.labels.array, original) and host.messages[-1] == "Undid: Delete L1"
    edits.redo()
    assert session.labels.ids() == [T11, T12] and host.messages[-1] == "Redid: Delete L1"
    edits.delete_selected()                                   # nothing selected: said, not done
    assert session.labels.ids() == [T11, T12] and "Select a vertebra" in host.messages[-1]


def test_edit_controller_paints_a_stroke_as_one_undoable_edit(qtbot, host, prefs, study):
    from ui.edit_tools import EditController

    _scan, _labels, session = study
    views = StubViews()
    edits = EditController(session, views, host, prefs, rows=lambda: [])
    modes = []
    edits.brush_mode_changed.connect(modes.append)
    session.select(T12)
    before = session.labels.array.copy()
    centre = session.labels.index_to_lps(np.argwhere(before == T11).mean(axis=0))
    edits.paint_stroke([centre, centre + (3, 0, 0)], plane="axial")
    assert modes == ["paint"] and views.brush == prefs.brush_radius_mm
    assert session.history.next_undo().description == "Paint T12"
    changed = session.labels.array != before
    assert changed.any() and np.all(session.labels.array[changed] == T12)
    assert len(np.unique(np.argwhere(changed)[:, 2])) == 1          # one axial slice
    edits.toggle_brush("paint")
    assert modes == ["paint", ""] and views.brush is None     # the brush toggled off
    edits.undo()
    assert np.array_equal(session.labels.array, before)


# --- files and display ----------------------------------------------------------------------------
def test_file_controller_opens_a_study_and_its_labels(qtbot, host, prefs, tmp_path):
    from ui.file_actions import FileController

    scan, labels, label_map = synthetic_study(tmp_path)
    session = Session()
    files = FileController(session, host, prefs, StudyReadiness(host.tasks, session))
    assert files.open_labels(labels) is None and "Open a scan" in host.errors[-1]
    recent = []
    files.recent_changed.connect(recent.append)
    with qtbot.waitSignal(files.scan_opened, timeout=20000) as opened:
        files.open_path(scan)
    assert opened.args == ["scan.nii.gz"] and session.volume is not None and session.labels is None
    assert recent[-1][0] == str(scan.resolve())
    with qtbot.waitSignal(files.labels_opened, timeout=20000):
        files.open_dropped(labels)                            # a labels file dropped on an open scan
    assert np.array_equal(session.labels.array, label_map.array)
    files.save_labels(tmp_path / "out.nii.gz")
    _idle(qtbot, host)
    assert host.messages[-1] == f"Saved {tmp_path / 'out.nii.gz'}"


def test_display_controller_meshes_new_labels_and_keeps_the_view_settings(qtbot, display, host, prefs, study):
    from ui.display import DisplayController
    from ui.results_panel import ResultsPanel
    from ui.views_panel import ViewsPanel

    _scan, _labels, session = study
    views, table = ViewsPanel(), ResultsPanel()
    qtbot.addWidget(table)
    views.resize(900, 400)
    views.show()
    qtbot.waitExposed(views)
    try:
        shown = DisplayController(session, views, table, host, prefs)
        presets = []
        shown.window_preset_changed.connect(presets.append)
        shown.set_window_preset("soft tissue")
        shown.set_window_preset("no such preset")
        assert presets == ["soft tissue"] and prefs.window_preset == "soft tissue"
        shown.reset_camera_on_next_meshes()
        session.set_labels(session.labels)                    # labels shown anew: every vertebra is meshed
        qtbot.waitUntil(lambda: not session.stale_mesh_ids, timeout=20000)
        assert sorted(session.meshes) == [T11, T12, L1] and views.mesh_view.mesh_ids() == [T11, T12, L1]
        table.set_rows(vertebra_rows(session.labels))
        table.vertebra_clicked.emit(L1)                       # as a click on its row does
        assert session.selected == L1 and table.currentRow() == 2 and host.messages[-1].startswith("L1:")
        views.mesh_opacity.setValue(40)
        assert prefs.mesh_opacity == 0.4
        assert shown.grab_window().width() > 0
    finally:
        views.close_views()
        views.deleteLater()
