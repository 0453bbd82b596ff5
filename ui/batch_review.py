"""Batch QA in the workstation: a review queue over a batch output folder, in a dock beside the views.

The folder is spine_core.workflows.batch_folder.BatchFolder. Its cases are listed as
``sorted_for_review()`` gives them (review first, then failed, then ok; undecided before decided) and
keep that order while the dock is open, so rows do not jump as decisions are made. Selecting a case
opens its scan and labels (the corrected ones where a reviewer saved some) through the window's own
load path (``FileController.open_study``, in a Worker), with its QA flags in the banner above the
vertebra table. A case without a result (failed, refused, not run) cannot be opened; a failed one can
only be rejected, with a note.

Each decision is saved at once (``BatchFolder.save_review``, atomic) in a Worker, the batch report is
rewritten, and the next undecided case opens. A decision is a saved record, not an undo step; the
label edits made on a case stay undoable as every edit is. Leaving a case whose labels were edited
and not saved asks first (save as its correction, discard, or stay).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMessageBox

from spine_core.errors import SpineError
from spine_core.progress import NullProgress
from spine_core.workflows.batch_folder import BatchFolder, CaseRecord
from ui import jobs
from ui.batch_review_panel import NEXT_KEY, PREVIOUS_KEY, BatchReviewPanel

log = logging.getLogger(__name__)
STAY = -2                                  # ``then_go`` of a decision: stay on the selected case


# --- the work done in Workers (no Qt) ------------------------------------------------------------
@dataclass
class CaseStudy(jobs.LoadedStudy):
    """A batch case as the window opens it, with the batch analysis' confidences per vertebra id."""

    analysis: dict = field(default_factory=dict)


def load_case(folder: BatchFolder, record: CaseRecord, progress=None) -> CaseStudy:
    """A finished case's scan and labels (the corrected ones where saved), as the window's loads
    deliver them; the analysis' confidences only for the labels the analysis made."""
    (progress or NullProgress()).update(0.0, f"Reading case {record.case_id}")
    scan, labels = folder.load_case(record)
    corrected = folder.read_review(record.case_id) or {}
    return CaseStudy(jobs.StudyPaths(Path(record.source)), scan, labels, warnings=list(scan.metadata.warnings),
                     analysis={} if corrected.get("labels") else case_analysis(folder.case_dir(record.case_id)))


def case_analysis(result_folder: Path) -> dict:
    """{id: VertebraResult} from a result folder's centroids.json: confidence and the pipeline's own
    flags (those read from the label map are left out: the table derives them again, after edits too)."""
    from spine_core.pipeline.api import VertebraResult
    from spine_core.review import FROM_LABELS
    try:
        vertebrae = json.loads((result_folder / "centroids.json").read_text(encoding="utf-8"))["vertebrae"]
        return {int(v["id"]): VertebraResult(int(v["id"]), str(v["name"]), np.asarray(v["position"], float),
                                             float(v["confidence"]), 0.0,
                                             tuple(f for f in v.get("flags", ()) if f not in FROM_LABELS))
                for v in vertebrae}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("no confidences from %s: %s", result_folder / "centroids.json", exc)
        return {}


def save_decision(folder: BatchFolder, case_id: str, decision: str, note: str, reviewer: str,
                  labels=None, progress=None) -> tuple[dict, str]:
    """Save the decision (atomically), then rewrite the batch report; returns (review, report problem)."""
    (progress or NullProgress()).update(0.0, f"Saving the review of {case_id}")
    review = folder.save_review(case_id, decision, note, reviewer, labels=labels)
    return review, update_reports(folder)          # no progress.update past here: a cancel must not
                                                   # make a saved decision look unsaved


def update_reports(folder: BatchFolder) -> str:
    """Rewrite report.html and the summaries with the decisions; "" or why they were not rewritten.
    The report is derived from the saved reviews: failing to rewrite it never undoes a decision."""
    try:
        from spine_core.workflows.batch_report import write_reports
    except ImportError:
        log.warning("spine_core.workflows.batch_report is not available: the batch report was not updated")
        return "the batch report could not be updated (no report writer installed)"
    try:
        write_reports(folder)
    except Exception as exc:  # noqa: BLE001 - logged with its traceback; the decision itself is saved
        log.error("rewriting the report of %s failed", folder.root, exc_info=exc)
        return f"the batch report could not be updated ({type(exc).__name__}: {exc})"
    return ""


def why_not_openable(folder: BatchFolder, record: CaseRecord) -> str:
    """"" when the case has a result to open, else why not (in the reviewer's words)."""
    if record.state in ("failed", "refused"):
        return f"This case {record.state}: {record.reason or 'no reason was recorded'}. It has no result to open."
    if record.state != "done":
        return f"This case has no result yet ({record.state}): the batch has not finished it."
    if not (folder.case_dir(record.case_id) / "labels.nii.gz").is_file():
        return f"This case's result folder is missing ({folder.case_dir(record.case_id)})."
    return ""


class BatchReviewController(QObject):
    """The Batch review dock of a MainWindow and what its buttons and keys do."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.folder: BatchFolder | None = None
        self.records: list[CaseRecord] = []
        self.current = -1                      # the selected row
        self.open_case_id: str | None = None   # the case shown in the window, if any
        self._saved_labels = None              # its labels as loaded or last saved
        self.ask_unsaved = self._ask_unsaved   # (case_id) -> "save" / "discard" / "cancel"; tests replace it
        self.panel = BatchReviewPanel(window.prefs.reviewer)
        self.dock = QDockWidget("Batch review", window)
        self.dock.setObjectName("BatchReviewDock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        window.resizeDocks([self.dock], [430], Qt.Orientation.Horizontal)
        self.next_action = self._key_action("Next case", NEXT_KEY, +1)
        self.previous_action = self._key_action("Previous case", PREVIOUS_KEY, -1)
        panel = self.panel
        panel.case_selected.connect(self._on_case_selected)
        panel.case_activated.connect(self._on_case_activated)
        panel.decision_clicked.connect(self._on_decision_clicked)
        panel.step_clicked.connect(self.step)
        panel.reviewer_changed.connect(self._on_reviewer_changed)
        self.dock.visibilityChanged.connect(self._on_dock_visibility_changed)
        window.session.volume_changed.connect(self._on_volume_changed)

    def _key_action(self, text: str, key: str, step: int) -> QAction:
        """A window-wide key (the dock too, when floating); a line edit with focus keeps its typing."""
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(key))
        action.triggered.connect(lambda _checked=False: self.step(step))
        self.window.addAction(action)
        self.dock.addAction(action)
        return action

    # --- the queue ----------------------------------------------------------------------------
    def open_folder(self, path) -> None:
        """List a batch folder's cases and open the first undecided one; SpineError if not a batch."""
        folder = BatchFolder(path)
        if not folder.is_batch():
            raise SpineError(f"'{folder.root}' is not a batch output folder: it holds no journal.jsonl. "
                             "Choose the folder a batch run wrote its results to (journal.jsonl, cases/).")
        records = folder.sorted_for_review()
        if not records:
            raise SpineError(f"The batch folder '{folder.root}' lists no cases yet.")
        if not self._may_leave(STAY):
            return
        self.folder, self.records, self.current = folder, records, -1
        self.open_case_id, self._saved_labels = None, None
        self.panel.set_cases(records, folder.root.name)
        self.dock.show()
        self.dock.raise_()
        first = self.next_undecided(-1)
        self.go_to(0 if first is None else first)

    def record(self) -> CaseRecord | None:
        return self.records[self.current] if 0 <= self.current < len(self.records) else None

    def row_of(self, case_id: str) -> int:
        return next((n for n, r in enumerate(self.records) if r.case_id == case_id), -1)

    def next_undecided(self, row: int) -> int | None:
        """The first finished case without a decision after ``row`` (wrapping round), or None."""
        count = len(self.records)
        for offset in range(1, count + 1):
            candidate = (row + offset) % count
            if self.records[candidate].review is None and self.records[candidate].finished:
                return candidate
        return None

    def step(self, delta: int) -> bool:
        """The previous (-1) or next (+1) case in the list, decided or not."""
        if not self.records or not self.dock.isVisible():
            return False
        row = self.current + delta
        if not 0 <= row < len(self.records):
            self.window.statusBar().showMessage("The first case of the batch" if row < 0
                                                else "The last case of the batch", 4000)
            return False
        return self.go_to(row)

    def go_to(self, row: int, reopen: bool = False) -> bool:
        """Select case ``row`` and open it (ask first when the open case has unsaved label edits)."""
        if not 0 <= row < len(self.records) or (row == self.current and not reopen):
            return row == self.current
        if not self._may_leave(row):
            self.panel.select_row(self.current)
            return False
        self.current = row
        record = self.records[row]
        self.panel.select_row(row)
        why = why_not_openable(self.folder, record)
        self.panel.show_case(record, why)
        if why:
            self._show_nothing(record)
        else:
            self.window.files.open_study(load_case, self.folder, record, name=f"case {record.case_id}",
                                         on_opened=lambda study, r=record: self._on_case_opened(r, study))
        self._update_buttons()
        return True

    def _show_nothing(self, record: CaseRecord) -> None:
        """A case without a result: the previous case must not stay on screen as if it were this one
        (nor arrive there from a load still running)."""
        loading = self.window.tasks.current("load")
        if loading is not None:
            loading.cancel()
        session = self.window.session
        if session.volume is not None:
            session.set_volume(None)
            session.set_labels(None)
        self.window.setWindowTitle(f"SpinePlan - batch {self.folder.root.name} - {record.case_id} (no result)")

    def _on_case_opened(self, record: CaseRecord, study: CaseStudy) -> None:
        """Shown: the batch's confidences in the vertebra table, the case's QA flags in its banner."""
        window = self.window
        window.analysis.show_known(study.analysis, [f"Batch QA: {flag}" for flag in record.flags])
        self.open_case_id = record.case_id
        self._saved_labels = window.session.labels
        window.setWindowTitle(f"SpinePlan - batch {self.folder.root.name} - {record.case_id}")
        self._update_buttons()

    def _on_volume_changed(self) -> None:
        """Another scan (or none) is shown: no batch case is open until a case load says so."""
        self.open_case_id, self._saved_labels = None, None
        self._update_buttons()

    # --- unsaved edits ------------------------------------------------------------------------
    def has_unsaved_edits(self) -> bool:
        labels, saved = self.window.session.labels, self._saved_labels
        if self.open_case_id is None or labels is saved:
            return False
        if labels is None or saved is None:
            return True
        return labels.names != saved.names or not np.array_equal(labels.array, saved.array)

    def _may_leave(self, row: int) -> bool:
        """True to go on. "save" starts saving the correction: going to another case waits until it is
        saved (a failed save keeps the edits on screen); opening another batch (``row`` STAY) goes on."""
        if not self.has_unsaved_edits():
            return True
        answer = self.ask_unsaved(self.open_case_id)
        if answer == "save":
            return self.decide("corrected", then_go=row) is not None and row == STAY
        return answer == "discard"

    def _ask_unsaved(self, case_id: str) -> str:
        if not self.window.show_dialogs:         # scripted: never drop edits silently
            self.window.statusBar().showMessage(f"Case {case_id} has unsaved label edits: save the "
                                                "correction or undo them first.", 8000)
            return "cancel"
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.window, "Unsaved label edits",
            f"The labels of case {case_id} were edited and not saved.\n\n"
            "Save them as this case's correction before leaving it?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    # --- decisions ----------------------------------------------------------------------------
    def allowed(self) -> dict[str, str]:
        """{decision: "" if allowed now, else why not} for the selected case."""
        record = self.record()
        if record is None:
            return {d: "No case is selected." for d in ("accepted", "corrected", "rejected")}
        is_open = self.open_case_id == record.case_id
        why_closed = why_not_openable(self.folder, record) or ("" if is_open else "The case is still opening.")
        return {"accepted": ("A failed case cannot be accepted: reject it with a note, or skip it."
                             if record.status == "failed" or record.state in ("failed", "refused")
                             else why_closed),
                "corrected": why_closed,
                "rejected": "" if record.finished else "This case has not been run yet."}

    def decide(self, decision: str, then_go: int | None = None):
        """Save ``decision`` for the selected case in a Worker; once saved, the row is updated and the
        next undecided case (or row ``then_go``; STAY: none) opens. Returns the Worker, None if refused."""
        record = self.record()
        note = self.panel.note.text().strip()
        why = self._refusal(decision, note)
        if why:
            where = record.case_id if record is not None else "the case"
            self.window.errors.report(SpineError(why), f"Saving the decision on {where}")
            return None
        if decision == "accepted" and self.has_unsaved_edits():
            answer = self.ask_unsaved(record.case_id)
            if answer == "cancel":
                return None
            decision = "corrected" if answer == "save" else decision
        labels = self.window.session.labels if record.case_id == self.open_case_id else None
        reviewer = self.panel.reviewer.text().strip()
        self.window.prefs.reviewer = reviewer
        return self.window.run_task(
            f"review {record.case_id}", f"Saving the review of {record.case_id}", save_decision, self.folder,
            record.case_id, decision, note, reviewer, labels if decision == "corrected" else None,
            on_result=lambda out: self._on_decision_saved(record.case_id, labels, out, then_go))

    def _refusal(self, decision: str, note: str) -> str:
        why = self.allowed().get(decision, f"Unknown decision '{decision}'.")
        if not why and decision == "rejected" and not note:
            why = "Say in the note why the case is rejected."
        if not why and decision == "corrected" and not self.has_unsaved_edits():
            why = "The labels were not edited: accept the case as it is, or edit the labels first."
        return why

    def _on_decision_saved(self, case_id: str, labels, out: tuple[dict, str], then_go: int | None) -> None:
        review, report_problem = out
        row = self.row_of(case_id)
        if row < 0:                               # another batch was opened meanwhile
            return
        record = self.records[row]
        record.review = review
        self.panel.update_row(row, record)
        self.panel.update_summary(self.records)
        if case_id == self.open_case_id:
            self._saved_labels = labels           # what was decided on is no longer "unsaved"
        message = f"Case {case_id}: {review['decision']}, saved to {self.folder.review_path(case_id).name}"
        self.window.statusBar().showMessage(message + (f"; {report_problem}" if report_problem else ""), 10000)
        if row != self.current or then_go == STAY:     # the reviewer moved on meanwhile: stay there
            return
        self.panel.show_case(record, why_not_openable(self.folder, record))
        target = then_go if then_go is not None else self.next_undecided(row)
        if target is None:
            self.window.statusBar().showMessage(f"Every finished case of this batch has a decision. {message}",
                                                10000)
        else:
            self.go_to(target)

    # --- slots --------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        self.panel.set_decisions(self.allowed())
        self.panel.previous_button.setEnabled(self.current > 0)
        self.panel.next_button.setEnabled(0 <= self.current < len(self.records) - 1)

    def _on_case_selected(self, row: int) -> None:
        self.go_to(row)

    def _on_case_activated(self, row: int) -> None:
        record = self.records[row] if 0 <= row < len(self.records) else None
        if record is not None and not (row == self.current and self.open_case_id == record.case_id):
            self.go_to(row, reopen=True)

    def _on_decision_clicked(self, decision: str) -> None:
        self.decide(decision)

    def _on_reviewer_changed(self, name: str) -> None:
        self.window.prefs.reviewer = name

    def _on_dock_visibility_changed(self, visible: bool) -> None:
        for action in (self.next_action, self.previous_action):
            action.setEnabled(visible)
