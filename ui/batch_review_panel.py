"""The Batch review dock's widget: the case queue, the selected case's QA, a note and the decisions.

A view only: it shows CaseRecords (spine_core.workflows.batch_folder) and emits what the reviewer
asked for; ui/batch_review.py decides what happens.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spine_core.review import CASE_FLAG_HELP

NEXT_KEY, PREVIOUS_KEY = "]", "["       # free: Ctrl+] / Ctrl+[ are label opacity, PageUp/Down page slices
COLUMNS = ("Status", "Case", "Levels", "Flags", "Decision")
STATUS, CASE, LEVELS, FLAGS, DECISION = range(5)
# badge: (text, background); amber and red as the vertebra table's flag cells
_BADGES = {"review": ("REVIEW", QColor(120, 84, 10)), "failed": ("FAILED", QColor(130, 30, 30)),
           "refused": ("REFUSED", QColor(130, 30, 30)), "ok": ("OK", QColor(28, 96, 52)),
           "running": ("RUNNING", QColor(58, 62, 70)), "queued": ("NOT RUN", QColor(58, 62, 70))}
_DECISION_COLOURS = {"accepted": "#7fd18b", "corrected": "#7fb2ff", "rejected": "#ff8a80"}
DECISION_BUTTONS = (("accepted", "Accept", "Accept the case as it is"),
                    ("corrected", "Save correction", "Save the labels as edited here as this case's result"),
                    ("rejected", "Reject", "Reject the case; say why in the note"))


def badge(record) -> str:
    """The queue's status word: the QA status of a finished case, else how far it got."""
    if record.state == "done":
        return record.status or "ok"
    return record.state if record.state in _BADGES else "queued"


def flag_kind(flag: str) -> str:
    return flag.split(":", 1)[0].strip()


def flags_summary(flags) -> str:
    kinds = list(dict.fromkeys(flag_kind(f) for f in flags))
    return f"{len(flags)}: {', '.join(kinds)}" if flags else ""


def flags_tooltip(flags) -> str:
    return "\n".join(f"\u2022 {f}\n   {CASE_FLAG_HELP[flag_kind(f)]}" if flag_kind(f) in CASE_FLAG_HELP
                     else f"\u2022 {f}" for f in flags)


def decision_text(review: dict | None) -> str:
    if not review:
        return ""
    who = f" by {review['reviewer']}" if review.get("reviewer") else ""
    note = f"\n{review['note']}" if review.get("note") else ""
    return f"{review['decision']}{who}, {review.get('time', '')}{note}"


class BatchReviewPanel(QWidget):
    case_selected = Signal(int)          # a row became current (click, arrow keys)
    case_activated = Signal(int)         # double-click or Enter on a row
    decision_clicked = Signal(str)       # accepted / corrected / rejected
    step_clicked = Signal(int)           # -1 previous, +1 next
    reviewer_changed = Signal(str)

    def __init__(self, reviewer: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = self._build_table()
        self.info = QLabel()
        self.info.setObjectName("CaseInfo")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note = QLineEdit()
        self.note.setPlaceholderText("What was corrected, or why the case is rejected")
        self.reviewer = QLineEdit(reviewer)
        self.reviewer.setPlaceholderText("Your name")
        self.reviewer.editingFinished.connect(lambda: self.reviewer_changed.emit(self.reviewer.text().strip()))
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Note", self.note)
        form.addRow("Reviewer", self.reviewer)
        self.buttons = {}
        decisions = QHBoxLayout()
        for decision, text, tip in DECISION_BUTTONS:
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _c=False, d=decision: self.decision_clicked.emit(d))
            decisions.addWidget(button)
            self.buttons[decision] = button
        steps = QHBoxLayout()
        self.previous_button = QPushButton("\u2039 Previous case")
        self.next_button = QPushButton("Next case \u203a")
        self.previous_button.setToolTip(f"Open the previous case in the list ({PREVIOUS_KEY})")
        self.next_button.setToolTip(f"Open the next case in the list ({NEXT_KEY})")
        self.previous_button.clicked.connect(lambda: self.step_clicked.emit(-1))
        self.next_button.clicked.connect(lambda: self.step_clicked.emit(+1))
        steps.addWidget(self.previous_button)
        steps.addWidget(self.next_button)
        for widget in (self.summary, self.table):
            layout.addWidget(widget)
        layout.setStretch(1, 1)
        layout.addWidget(self.info)
        layout.addLayout(form)
        layout.addLayout(decisions)
        layout.addLayout(steps)

    def _build_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(22)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(FLAGS, QHeaderView.ResizeMode.Stretch)
        table.setMinimumWidth(400)
        table.currentCellChanged.connect(self._on_current_cell_changed)
        table.cellActivated.connect(lambda row, _c: self.case_activated.emit(row))
        table.cellDoubleClicked.connect(lambda row, _c: self.case_activated.emit(row))
        return table

    def _on_current_cell_changed(self, row: int, _column: int, previous: int, _previous_column: int) -> None:
        if row != previous and row >= 0:
            self.case_selected.emit(row)

    # --- the queue ----------------------------------------------------------------------------
    def set_cases(self, records, title: str) -> None:
        self.title = title
        self.table.blockSignals(True)
        self.table.clearContents()
        self.table.setRowCount(len(records))
        for row, record in enumerate(records):
            self.update_row(row, record)
        self.table.blockSignals(False)
        self.update_summary(records)

    def update_row(self, row: int, record) -> None:
        status = badge(record)
        text, colour = _BADGES.get(status, (status.upper(), QColor(58, 62, 70)))
        review = record.review or {}
        cells = (text, record.case_id, record.levels, flags_summary(record.flags), review.get("decision", ""))
        for column, value in enumerate(cells):
            item = QTableWidgetItem(value)
            if column == STATUS:
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(QColor("#ffffff")))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(record.reason or status)
            elif column == LEVELS:
                item.setToolTip(f"{record.n_vertebrae} vertebrae" if record.state == "done" else "")
            elif column == FLAGS:
                item.setToolTip(flags_tooltip(record.flags) or "No QA flags")
            elif column == DECISION and review:
                item.setForeground(QBrush(QColor(_DECISION_COLOURS.get(review["decision"], "#d8dbe0"))))
                item.setToolTip(decision_text(review))
            self.table.setItem(row, column, item)

    def update_summary(self, records) -> None:
        undecided = [badge(r) for r in records if r.review is None and r.finished]
        failed = undecided.count("failed") + undecided.count("refused")
        not_run = sum(1 for r in records if not r.finished)
        self.summary.setText(f"<b>{html.escape(self.title)}</b>: {len(records)} cases, "
                             f"{len(records) - len(undecided) - not_run} decided. To do: "
                             f"{undecided.count('review')} to review, {failed} failed, {undecided.count('ok')} ok"
                             + (f"; {not_run} not run" if not_run else ""))

    def select_row(self, row: int) -> None:
        """Make ``row`` current without emitting ``case_selected``."""
        self.table.blockSignals(True)
        if 0 <= row < self.table.rowCount():
            self.table.setCurrentCell(row, CASE)
            self.table.scrollToItem(self.table.item(row, CASE))
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)

    # --- the selected case --------------------------------------------------------------------
    def show_case(self, record, why_closed: str = "") -> None:
        """The case's QA in words; ``why_closed`` says why it cannot be opened (failed, no result)."""
        esc = html.escape
        facts = [f"<b>{esc(record.case_id)}</b>", badge(record).upper()]
        if record.state == "done":
            facts += [esc(record.levels or "no levels"), f"{record.n_vertebrae} vertebrae"]
            facts += [f"{record.seconds:.0f} s"] if record.seconds else []
        lines = [" \u00b7 ".join(facts)]
        if why_closed:
            lines.append(f"<span style='color:#ff8a80'>{esc(why_closed)}</span>")
        for flag in record.flags:
            help_text = CASE_FLAG_HELP.get(flag_kind(flag), "")
            lines.append(f"\u26a0 {esc(flag)}" + (f" <span style='color:#9aa0a8'>({esc(help_text)})</span>"
                                                  if help_text else ""))
        if record.review:
            colour = _DECISION_COLOURS.get(record.review["decision"], "#d8dbe0")
            lines.append(f"<span style='color:{colour}'>Decision: {esc(decision_text(record.review))}</span>")
        self.info.setText("<br>".join(lines))
        self.note.setText((record.review or {}).get("note", ""))

    def set_decisions(self, allowed: dict[str, str]) -> None:
        """``{decision: why not}``: "" enables the button; a reason disables it and becomes its tooltip."""
        for decision, text, tip in DECISION_BUTTONS:
            why = allowed.get(decision, "")
            self.buttons[decision].setEnabled(not why)
            self.buttons[decision].setToolTip(why or tip)
