"""Tools > Adapt to local scans: a site's imaging physicist adapts the CT or MR models to the hospital's own
scanners with `spineplan retrain`, run in a subprocess (ui/retrain_process.py) while the window stays
usable.

The dialog is not modal. It takes the site's scans (required), its corrections (optional: saved plans or
batch review folders), which models (auto: CT when the folder holds CT scans, else MR), a time budget, the device and an output folder; shows the stage, progress and time
left while training runs; and at the end the check's before/after table. A model that passed the check is
not in use until **Use this model** registers it in the site registry and makes it active (Preferences >
Models or `spineplan models rollback` go back); **Discard** leaves the active models as they are. Cancel
(or closing the dialog, after asking) stops the training; the last checkpoint is kept and Start with the
same output folder resumes.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontDatabase
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spine_core.errors import SpineError
from spine_core.pipeline.runtime import DEVICES
from ui.retrain_process import (ACCEPTED, BAD_INPUT, FAILED, REFUSED, STOPPED, RetrainOutcome, RetrainProcess,
                                RetrainRequest, activate_adapted_model, default_output_folder, retrain_command)
from ui.tables import style_rows

STAGES = {"scans": "Reading the site's scans", "pseudo-labels": "Making pseudo-labels", "training": "Training",
          "export": "Exporting the model", "check": "Checking against the reference sets", "done": "Done"}
MODALITIES = (("auto: CT if the folder holds CT scans, else MR", "auto"), ("CT: vertebra segmentation", "ct"),
              ("MR: vertebral bodies and discs", "mr"))
COLUMNS = ("Set", "Metric", "Before", "Adapted", "Verdict")
RESUME_NOTE = "Cancel keeps the last checkpoint: Start with the same output folder resumes."
USED_NOTE = ("New analyses use the adapted model; Preferences > Models or `spineplan models rollback` "
             "go back.")
WORSE, BETTER = QColor("#c62828"), QColor("#2e7d32")


def time_left(eta_s: float | None) -> str:
    if eta_s is None:
        return "Time left: estimating..."
    if eta_s < 60:
        return "Less than a minute left"
    minutes = round(eta_s / 60)
    return f"About {minutes} min left" if minutes < 90 else f"About {minutes // 60} h {minutes % 60:02d} min left"


def _number(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value or "-")


class AdaptDialog(QDialog):
    """``command(request) -> (program, arguments)`` builds the subprocess (tests run a fake script);
    ``site`` is the SiteModels that Use this model writes (default: the site folder)."""

    notice = Signal(str)              # a line for the window's status bar (stopped, used, discarded)
    model_activated = Signal(str)     # the id whose adapted model is now active

    def __init__(self, parent: QWidget | None = None, command: Callable = retrain_command, device: str = "auto",
                 start_dir: str = "", site=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Adapt to local scans")
        self.setModal(False)
        self.start_dir, self.site = start_dir, site
        self.run = RetrainProcess(command, self)
        self.run.progress.connect(self._on_progress)
        self.run.finished.connect(self._on_run_finished)
        self.outcome: RetrainOutcome | None = None
        self.confirm_stop: Callable[[], bool] = self._ask_stop
        self.last_error = ""
        self._used = False                # the accepted model was put in use
        layout = QVBoxLayout(self)
        intro = QLabel("Trains the CT or MR models further on this hospital's own scans (and the cases its clinicians "
                       "corrected), then checks the result against the reference sets: a worse model is refused. "
                       "The models in use stay as they are until you choose <b>Use this model</b>.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self._build_inputs(device))
        layout.addWidget(self._build_progress())
        layout.addWidget(self._build_result())
        layout.addStretch(1)
        layout.addLayout(self._build_buttons())
        self._show_state()
        self.setMinimumWidth(720)
        self.resize(780, 430)

    # --- building -----------------------------------------------------------------------------
    def _folder_row(self, form: QFormLayout, label: str, edit: QLineEdit, title: str) -> None:
        row = QHBoxLayout()
        browse = QPushButton("Browse...")
        browse.clicked.connect(lambda _c=False: self._on_browse_clicked(edit, title))
        row.addWidget(edit, 1)
        row.addWidget(browse)
        form.addRow(label, row)

    def _build_inputs(self, device: str) -> QGroupBox:
        box = QGroupBox("Training data and budget")
        form = QFormLayout(box)
        self.scans_edit = QLineEdit()
        self.scans_edit.setPlaceholderText("required: a folder of the site's scans (DICOM folders, NIfTI, ...)")
        self._folder_row(form, "Site's scans", self.scans_edit, "Folder of the site's scans")
        self.corrections_edit = QLineEdit()
        self.corrections_edit.setPlaceholderText("optional: saved plans or batch review folders")
        self._folder_row(form, "Corrections", self.corrections_edit, "Folder of corrections (plans, batch reviews)")
        self.modality_box = QComboBox()
        for text, value in MODALITIES:
            self.modality_box.addItem(text, value)
        self.modality_box.setToolTip("One run adapts one modality; scans of the other are set aside "
                                     "(`spineplan retrain --modality`)")
        form.addRow("Models", self.modality_box)
        self.budget_box = QSpinBox()
        self.budget_box.setRange(1, 1440)
        self.budget_box.setValue(30)
        self.budget_box.setSuffix(" min")
        self.budget_box.setToolTip("How long the training may run (`spineplan retrain --budget-minutes`)")
        form.addRow("Time budget", self.budget_box)
        self.device_box = QComboBox()
        self.device_box.addItems(list(DEVICES))
        self.device_box.setCurrentText(device if device in DEVICES else "auto")
        self.device_box.setToolTip("auto: the GPU where torch finds one, else the CPU")
        form.addRow("Device", self.device_box)
        self.out_edit = QLineEdit(str(default_output_folder()))
        self.out_edit.setToolTip("Checkpoints, the adapted model and retrain.json go here; the same folder resumes")
        self._folder_row(form, "Output folder", self.out_edit, "Output folder of the adaptation")
        self.inputs = box
        return box

    def _build_progress(self) -> QGroupBox:
        box = QGroupBox("Progress")
        layout = QVBoxLayout(box)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setFormat("%p %")
        layout.addWidget(self.progress_bar)
        row = QHBoxLayout()
        self.stage_label = QLabel("Not started")
        bold = QFont(self.stage_label.font())
        bold.setBold(True)
        self.stage_label.setFont(bold)
        self.eta_label = QLabel("")
        row.addWidget(self.stage_label, 1)
        row.addWidget(self.eta_label)
        layout.addLayout(row)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        self.resume_label = QLabel(RESUME_NOTE)
        italic = QFont(self.resume_label.font())
        italic.setItalic(True)
        self.resume_label.setFont(italic)
        layout.addWidget(self.resume_label)
        return box

    def _build_result(self) -> QGroupBox:
        box = QGroupBox("Result")
        layout = QVBoxLayout(box)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.status_label)
        self.table = style_rows(QTableWidget(0, len(COLUMNS)))
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for column, text in enumerate(COLUMNS):
            self.table.setHorizontalHeaderItem(column, QTableWidgetItem(text))
        layout.addWidget(self.table)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumHeight(140)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.log_view)
        box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)   # room to spare: below
        self.result_box = box
        return box

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop training; the last checkpoint is kept")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Register the adapted model at this site and run it by default")
        self.use_button.clicked.connect(self._on_use_clicked)
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Keep the models in use as they are (the output folder stays)")
        self.discard_button.clicked.connect(self._on_discard_clicked)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for button in (self.start_button, self.cancel_button):
            row.addWidget(button)
        row.addStretch(1)
        for button in (self.use_button, self.discard_button, self.close_button):
            row.addWidget(button)
        return row

    # --- state --------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.run.running()

    def _show_state(self) -> None:
        running, outcome = self.running(), self.outcome
        self.inputs.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and not self.run.stop_requested)
        self.resume_label.setVisible(running or (outcome is not None and outcome.status == STOPPED))
        decided = outcome is not None and outcome.status in (ACCEPTED, REFUSED) and not running
        self.use_button.setVisible(decided and outcome.status == ACCEPTED)
        self.use_button.setEnabled(decided and outcome.status == ACCEPTED and not self._used)
        self.discard_button.setVisible(decided and not self._used)
        self.result_box.setVisible(bool(self.status_label.text()))
        self.table.setVisible(decided)
        self.log_view.setVisible(outcome is not None and outcome.status == FAILED and bool(outcome.stderr_tail)
                                 and not running)

    def request(self) -> RetrainRequest | None:
        """The run the inputs describe; None (saying why) when they are incomplete."""
        scans, corrections = self.scans_edit.text().strip(), self.corrections_edit.text().strip()
        out = self.out_edit.text().strip()
        if not scans or not Path(scans).expanduser().is_dir():
            return self._refuse("Choose the folder of the site's scans (it must exist).")
        if corrections and not Path(corrections).expanduser().is_dir():
            return self._refuse(f"The corrections folder '{corrections}' does not exist; choose it again or leave "
                                "it empty.")
        if not out:
            return self._refuse("Choose an output folder.")
        return RetrainRequest(Path(scans).expanduser(), Path(corrections).expanduser() if corrections else None,
                              self.budget_box.value(), self.device_box.currentText(), Path(out).expanduser(),
                              self.modality_box.currentData())

    def _refuse(self, text: str) -> None:
        self._say(text, WORSE)
        self._show_state()
        return None

    def _say(self, text: str, colour: QColor | None = None) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {colour.name()};" if colour is not None else "")

    # --- slots --------------------------------------------------------------------------------
    def _on_browse_clicked(self, edit: QLineEdit, title: str) -> None:
        start = edit.text().strip() or self.start_dir
        chosen = QFileDialog.getExistingDirectory(self, title, start)
        if chosen:
            edit.setText(chosen)

    def _on_start_clicked(self) -> None:
        request = self.request()
        if request is None:
            return
        self.outcome, self._used = None, False
        self.table.setRowCount(0)
        self.log_view.clear()
        self._say("")
        self.progress_bar.setValue(0)
        self.stage_label.setText("Starting...")
        self.message_label.setText(f"Output: {request.out}")
        self.eta_label.setText(time_left(None))
        self.run.start(request)
        self._show_state()

    def _on_cancel_clicked(self) -> None:
        if self.running():
            self.run.stop()
            self.stage_label.setText("Stopping...")
            self.message_label.setText("Saving the last checkpoint before the training ends.")
            self.eta_label.setText("")
        self._show_state()

    def _on_progress(self, fraction: float, stage: str, message: str, eta_s) -> None:
        if self.run.stop_requested:
            return
        self.progress_bar.setValue(round(fraction * 1000))
        self.stage_label.setText(STAGES.get(stage, stage.capitalize() or "Working"))
        self.message_label.setText(message)
        self.eta_label.setText(time_left(eta_s) if stage != "done" else "")

    def _on_run_finished(self, outcome: RetrainOutcome) -> None:
        self.outcome = outcome
        titles = {ACCEPTED: "Passed the check", REFUSED: "Refused by the check", BAD_INPUT: "Not started",
                  STOPPED: "Stopped", FAILED: "Failed"}
        self.stage_label.setText(titles[outcome.status])
        self.eta_label.setText("")
        if outcome.status in (ACCEPTED, REFUSED):
            self.progress_bar.setValue(1000)
            self.message_label.setText(self._summary(outcome.result))
            self._fill_table(outcome.comparison)
        else:
            self.message_label.setText("")
        self.log_view.setPlainText("\n".join(outcome.stderr_tail[-12:]))
        colour = {ACCEPTED: BETTER, BAD_INPUT: WORSE, FAILED: WORSE}.get(outcome.status)
        self._say(outcome.message, colour)
        self._show_state()
        if outcome.status == STOPPED:
            self.notice.emit(outcome.message)

    @staticmethod
    def _summary(result: dict) -> str:
        steps, wall = result.get("steps"), result.get("wall_s")
        parts = [f"{result.get('model_id', 'the model')}"]
        if isinstance(steps, int):
            parts.append(f"{steps} training steps")
        if isinstance(wall, (int, float)):
            parts.append(f"{wall / 60:.0f} min")
        if result.get("tolerance") is not None:
            parts.append(f"tolerance {result['tolerance']}")
        return ", ".join(parts)

    def _fill_table(self, rows: list[dict]) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            verdict = str(row.get("verdict", ""))
            cells = (str(row.get("set", "")), str(row.get("metric", "")), _number(row.get("parent")),
                     _number(row.get("candidate")), verdict)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 4:
                    worse = "worse" in verdict.lower() and not verdict.lower().startswith("not")
                    item.setForeground(QBrush(WORSE if worse else BETTER))
                self.table.setItem(r, c, item)
        shown = min(max(len(rows), 1), 6)               # more rows scroll
        height = (self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
                  + sum(self.table.rowHeight(r) for r in range(shown)) + 2)
        self.table.setFixedHeight(height)

    def _on_use_clicked(self) -> None:
        try:
            model_id = activate_adapted_model(self.outcome, self.site)
        except SpineError as exc:
            self._warn(f"The adapted model was not put in use.\n\n{exc}")
            return
        self._used = True
        self._say(USED_NOTE, BETTER)
        self._show_state()
        self.model_activated.emit(model_id)
        self.notice.emit(f"Adapted model '{model_id}' in use. {USED_NOTE}")

    def _on_discard_clicked(self) -> None:
        text = "Nothing changed: the active models are as they were"
        if self.outcome is not None:
            text += f" (the adapted model stays in {self.outcome.out})"
        self._say(text + ".")
        self.outcome = None
        self._show_state()
        self.notice.emit(text + ".")
        super().reject()

    def _warn(self, text: str) -> None:
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Warning, "SpinePlan", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # --- closing ------------------------------------------------------------------------------
    def _ask_stop(self) -> bool:
        answer = QMessageBox.question(self, "Adapt to local scans", "Stop the adaptation? The last checkpoint is "
                                      "kept: Start with the same output folder resumes.")
        return answer == QMessageBox.StandardButton.Yes

    def reject(self) -> None:
        """Close (also Escape and the title bar's button): while training runs, ask to stop it first."""
        if self.running():
            if not self.confirm_stop():
                return
            self._on_cancel_clicked()
        super().reject()

    def shutdown(self) -> None:
        """The window closes: stop the training and wait for its checkpoint (killed after 20 s)."""
        self.run.wait_stopped()
