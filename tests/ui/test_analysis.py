"""Analyze in a Worker (test pipeline): table, flags, banner; cancel and close mid-analysis."""
import time

import numpy as np

from tests.ui import fake_pipeline
from tests.ui.study import L1, T11, T12, open_and_wait, synthetic_study


def _slow_segment(calls):
    def segment(volume, options, progress):
        calls.append(options.device)
        for i in range(1000):
            progress.update(i / 1000, "Segmenting vertebrae")
            time.sleep(0.005)
        calls.append("ran to the end")
        return fake_pipeline.segment(volume, options, progress)
    return segment


def _column(window, c):
    return [window.results.item(r, c).text() for r in range(window.results.rowCount())]


def test_analysis_fills_table_flags_and_banner(qtbot, window, tmp_path):
    scan, _labels, reference = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan)
    assert window.actions.analyze.isEnabled() and window.results.rowCount() == 0
    window.prefs.device = "cpu"
    progress = []
    shown = window.task_status.update_progress
    # recorded where the window shows them: connecting to the worker after it started would race it
    window.task_status.update_progress = lambda f, m: (progress.append(m), shown(f, m))
    with qtbot.waitSignal(window.study_ready, timeout=15000):
        window.analyze()
    assert "Numbering" in progress                                  # stage messages came through
    assert _column(window, 0) == ["T11", "T12", "L1"]              # cranio-caudal
    assert _column(window, 2) == ["0.93", "0.35", "0.93"]
    assert "low confidence" in _column(window, 3)[1]
    assert window.results.item(1, 3).background().color().red() > 100     # a coloured flag cell
    banner = window.vertebra_panel.banner
    assert banner.isVisible() and "T12: low confidence" in banner.text() and "test pipeline" in banner.text()
    # the case's QA status, as segment and batch runs write it
    assert "QA status: review" in banner.text()
    assert np.array_equal(window.session.labels.array, reference.array)
    assert sorted(window.session.meshes) == [T11, T12, L1]
    assert "fake (cpu)" in window.statusBar().currentMessage()


def test_cancel_mid_analysis_leaves_the_state_untouched(qtbot, window, tmp_path):
    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    before = window.session.labels
    window.edits.delete_vertebra(L1)
    qtbot.waitUntil(lambda: not window.tasks.is_busy(), timeout=15000)
    calls = []
    window.analysis.set_pipeline(_slow_segment(calls))
    worker = window.analyze()
    qtbot.waitUntil(lambda: window.task_status.bar.value() > 0, timeout=15000)
    assert window.task_status.label.text() == "Segmenting vertebrae"
    with qtbot.waitSignal(worker.signals.finished, timeout=15000):
        window.task_status.cancel_button.click()
    qtbot.waitUntil(lambda: not window.tasks.is_busy(), timeout=15000)
    assert window.session.labels.ids() == [T11, T12] and window.session.history.can_undo()
    window.edits.undo()
    assert np.array_equal(window.session.labels.array, before.array)
    assert _column(window, 2) == ["", "", ""] and not window.vertebra_panel.banner.isVisible()


def test_closing_mid_analysis_cancels_cleanly(qtbot, display, settings, tmp_path):
    from ui.main_window import MainWindow

    scan, _labels, _ = synthetic_study(tmp_path)
    calls = []
    win = MainWindow(settings=settings, show_dialogs=False, segment=_slow_segment(calls))
    win.show()
    qtbot.waitExposed(win)
    open_and_wait(qtbot, win, scan)
    worker = win.analyze()
    qtbot.waitUntil(lambda: win.task_status.bar.value() > 0, timeout=15000)
    win.close()
    assert worker.done and worker.cancel_requested and win.tasks.pool.activeThreadCount() == 0
    assert "ran to the end" not in calls, "the analysis stopped at a progress update"
    assert win.session.labels is None
    win.deleteLater()
    qtbot.wait(20)


def test_analyze_is_disabled_with_a_reason_when_no_pipeline(qtbot, window, tmp_path):
    scan, _labels, _ = synthetic_study(tmp_path)
    window.analysis.set_pipeline(None, "automatic analysis is not installed")
    open_and_wait(qtbot, window, scan)
    assert not window.actions.analyze.isEnabled()
    assert "not installed" in window.actions.analyze.toolTip()
    assert window.analyze() is None and "unavailable" in window.errors.last_message


def test_bad_input_to_the_pipeline_is_reported(qtbot, window, tmp_path):
    from spine_core.io import save_volume
    from tests.conftest import make_volume

    volume = make_volume()
    volume.array[:] = 0                                           # no bone: "No spine was found"
    path = save_volume(volume, tmp_path / "blank.nii.gz")
    open_and_wait(qtbot, window, path)
    with qtbot.waitSignal(window.task_failed, timeout=15000) as blocker:
        window.analyze()
    assert "No spine" in blocker.args[0] and window.session.labels is None


def test_find_segment_reads_the_pipeline_variable(monkeypatch):
    from spine_core.workflows.analysis import find_segment

    monkeypatch.setenv("SPINEPLAN_PIPELINE", "tests.ui.fake_pipeline:segment")
    assert find_segment() == (fake_pipeline.segment, "")
    monkeypatch.setenv("SPINEPLAN_PIPELINE", "no_such_module:segment")
    fn, why = find_segment()
    assert fn is None and "could not be loaded" in why
