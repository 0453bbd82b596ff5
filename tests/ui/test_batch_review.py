"""Batch QA: the review queue of a batch output folder in the workstation (ui/batch_review.py)."""
import json
import shutil
import sys
import types

import pytest
from PySide6.QtCore import Qt

from spine_core.io import load_labels
from spine_core.workflows.batch_folder import BatchFolder
from tests.ui.study import BATCH_ORDER, FAILURE, L1, T11, T12, synthetic_batch
from ui.batch_review_panel import CASE, DECISION, FLAGS, STATUS

L2 = 21


@pytest.fixture(scope="module")
def batch_template(tmp_path_factory):
    return synthetic_batch(tmp_path_factory.mktemp("template"))


@pytest.fixture
def batch(batch_template, tmp_path):
    """A fresh copy of the batch folder per test (its sources stay in the template's inputs)."""
    shutil.copytree(batch_template.root, tmp_path / "batch")
    return BatchFolder(tmp_path / "batch")


@pytest.fixture
def reports(monkeypatch):
    """Stands in for spine_core.workflows.batch_report: records each write_reports(folder) call."""
    calls = []
    monkeypatch.setitem(sys.modules, "spine_core.workflows.batch_report",
                        types.SimpleNamespace(write_reports=calls.append))
    return calls


def _open_batch(qtbot, window, batch):
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        assert window.open_batch(batch.root)
    window.activateWindow()                  # window shortcuts need the active window (no WM under Xvfb)
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    return window.batch_review


def _case_ids(review):
    table = review.panel.table
    return [table.item(row, CASE).text() for row in range(table.rowCount())]


def _shown_case(window):
    review = window.batch_review
    return review.record().case_id, review.open_case_id


def _decide(qtbot, window, decision, wait_for_next=True):
    button = window.batch_review.panel.buttons[decision]
    assert button.isEnabled(), button.toolTip()
    if wait_for_next:
        with qtbot.waitSignal(window.study_ready, timeout=20000):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    else:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not window.tasks.is_busy(), timeout=20000)


def test_open_batch_lists_the_queue_and_opens_the_first_case_with_its_flags(qtbot, window, batch):
    review = _open_batch(qtbot, window, batch)
    assert review.dock.isVisible() and window.dockWidgetArea(review.dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert _case_ids(review) == BATCH_ORDER
    table = review.panel.table
    assert [table.item(r, STATUS).text() for r in range(6)] == ["REVIEW", "REVIEW", "FAILED", "REFUSED", "OK",
                                                                 "NOT RUN"]
    assert table.item(0, FLAGS).text() == "2: low confidence, analysis note"
    assert "low confidence: T12" in table.item(0, FLAGS).toolTip()
    assert FAILURE in table.item(2, STATUS).toolTip()
    # the first case to review is open, as a scan with its labels, its QA flags in the banner
    assert _shown_case(window) == ("case-02", "case-02")
    assert window.session.labels.ids() == [T11, T12, L1]
    assert [r.name for r in window.analysis.rows] == ["T11", "T12", "L1"]
    assert [r.confidence for r in window.analysis.rows] == [0.93, 0.35, 0.93]  # the batch analysis' confidences
    assert "low confidence" in window.analysis.rows[1].flags
    assert "Batch QA: low confidence: T12" in window.vertebra_panel.warnings_text()
    assert "case-02" in window.windowTitle()
    assert "low confidence: T12" in review.panel.info.text()
    assert all(b.isEnabled() for b in review.panel.buttons.values())      # open: all three decisions allowed


def test_accept_saves_the_review_updates_the_report_and_opens_the_next_case(qtbot, window, batch, reports,
                                                                             settings):
    review = _open_batch(qtbot, window, batch)
    review.panel.note.setText("levels checked on the ribs")
    review.panel.reviewer.setText("Dr Ada")
    _decide(qtbot, window, "accepted")
    saved = json.loads(batch.review_path("case-02").read_text())
    assert saved["decision"] == "accepted" and saved["note"] == "levels checked on the ribs"
    assert saved["reviewer"] == "Dr Ada" and not batch.corrected_labels("case-02").exists()
    assert [c.root for c in reports] == [batch.root]                       # report.html rewritten
    assert review.panel.table.item(0, DECISION).text() == "accepted"
    assert _shown_case(window) == ("case-04", "case-04")                   # the next undecided case
    assert window.session.labels.ids() == [T11, T12, L1, L2]
    assert review.panel.note.text() == ""
    assert window.prefs.reviewer == "Dr Ada"                              # remembered for next time
    assert batch.sorted_for_review()[-1].case_id == "case-02"             # decided: last in a new queue


def test_correction_after_an_edit_is_saved_and_shown_on_reopening(qtbot, window, batch, reports):
    review = _open_batch(qtbot, window, batch)
    assert window.edits.delete_vertebra(L1)
    assert review.has_unsaved_edits()
    review.panel.note.setText("L1 was a sacral piece")
    _decide(qtbot, window, "corrected")
    saved = batch.read_review("case-02")
    assert saved["decision"] == "corrected" and saved["labels"] == "reviews/case-02/labels.nii.gz"
    assert load_labels(batch.corrected_labels("case-02")).ids() == [T11, T12]
    assert _shown_case(window)[0] == "case-04"
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        qtbot.keyClick(window, Qt.Key.Key_BracketLeft)                     # "[": back to case-02
    assert _shown_case(window) == ("case-02", "case-02")
    assert window.session.labels.ids() == [T11, T12]                      # the corrected labels
    assert [r.confidence for r in window.analysis.rows] == [None, None]    # no longer the analysis' own
    assert not review.has_unsaved_edits()
    assert review.panel.note.text() == "L1 was a sacral piece"
    assert "corrected" in review.panel.info.text()
    window.edits.undo()                                                    # nothing to undo: a fresh load
    assert window.session.labels.ids() == [T11, T12]


def test_a_failed_case_cannot_be_opened_or_accepted_and_a_rejection_needs_a_note(qtbot, window, batch, reports):
    review = _open_batch(qtbot, window, batch)
    review.panel.table.setCurrentCell(2, CASE)                             # case-03, failed
    assert _shown_case(window) == ("case-03", None)
    assert window.session.volume is None and window.analysis.rows == []   # case-02 no longer shown
    assert "no result to open" in review.panel.info.text() and FAILURE in review.panel.info.text()
    panel = review.panel
    assert not panel.buttons["accepted"].isEnabled() and "cannot be accepted" in panel.buttons["accepted"].toolTip()
    assert not panel.buttons["corrected"].isEnabled()
    review._on_case_activated(2)                                           # Enter / double-click: still nothing
    assert window.session.volume is None and not window.tasks.is_busy()
    assert review.decide("accepted") is None
    assert "cannot be accepted" in window.errors.last_message
    qtbot.mouseClick(panel.buttons["rejected"], Qt.MouseButton.LeftButton)  # no note: refused
    assert "why the case is rejected" in window.errors.last_message and batch.read_review("case-03") is None
    panel.note.setText("rerun on the GPU machine")
    qtbot.mouseClick(panel.buttons["rejected"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: review.current == 3, timeout=20000)          # the next undecided: case-05
    assert batch.read_review("case-03")["note"] == "rerun on the GPU machine"
    assert batch.read_review("case-03")["decision"] == "rejected"
    assert panel.table.item(2, DECISION).text() == "rejected" and [c.root for c in reports] == [batch.root]
    assert _shown_case(window) == ("case-05", None) and panel.note.text() == ""
    assert "refused" in panel.info.text() and panel.buttons["rejected"].isEnabled()
    panel.table.setCurrentCell(5, CASE)                                    # case-06, never run
    assert window.session.volume is None and not any(b.isEnabled() for b in panel.buttons.values())
    review.go_to(4)                                                        # case-01 starts loading ...
    review.go_to(5)                                                        # ... and is left at once
    qtbot.waitUntil(lambda: not window.tasks.is_busy(), timeout=20000)
    qtbot.wait(50)
    assert _shown_case(window) == ("case-06", None) and window.session.volume is None


def test_next_and_previous_keys_and_the_unsaved_edits_question(qtbot, window, batch):
    review = _open_batch(qtbot, window, batch)
    assert review.next_action.shortcut().toString() == "]" and "(])" in review.panel.next_button.toolTip()
    assert review.previous_action.shortcut().toString() == "[" and "([)" in review.panel.previous_button.toolTip()
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert _shown_case(window) == ("case-04", "case-04")
    review.panel.note.setFocus()
    qtbot.keyClicks(review.panel.note, "]")                                # typing in the note stays typing
    assert review.panel.note.text() == "]" and _shown_case(window)[0] == "case-04"
    window.setFocus()
    assert window.edits.delete_vertebra(T11)
    asked = []
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)                         # no dialogs: edits are kept
    assert _shown_case(window) == ("case-04", "case-04") and window.session.labels.ids() == [T12, L1, L2]
    assert "unsaved label edits" in window.statusBar().currentMessage()
    review.ask_unsaved = lambda case_id: asked.append(case_id) or "cancel"
    review.panel.table.setCurrentCell(4, CASE)                             # a click on another row: same question
    assert asked == ["case-04"] and review.panel.table.currentRow() == 1
    review.ask_unsaved = lambda case_id: asked.append(case_id) or "discard"
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert asked == ["case-04", "case-04"] and _shown_case(window) == ("case-02", "case-02")
    assert batch.read_review("case-04") is None
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)                         # the first case: stays
    assert _shown_case(window)[0] == "case-02" and "first case" in window.statusBar().currentMessage()


def test_leaving_with_save_stores_the_correction_then_goes_where_asked(qtbot, window, batch, reports):
    review = _open_batch(qtbot, window, batch)
    assert window.edits.delete_vertebra(T11)
    review.ask_unsaved = lambda case_id: "save"
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        review.panel.table.setCurrentCell(4, CASE)                         # case-01
    assert batch.read_review("case-02")["decision"] == "corrected"
    assert _shown_case(window) == ("case-01", "case-01")


def test_a_folder_that_is_not_a_batch_is_refused(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Open &batch...")
    (tmp_path / "scans").mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "scans"))
    with qtbot.waitSignal(window.errors.reported) as reported:
        action.trigger()
    assert "Opening the batch failed" in reported.args[0] and "not a batch output folder" in reported.args[0]
    assert "journal.jsonl" in reported.args[0]
    assert window.batch_review is None or not window.batch_review.dock.isVisible()
