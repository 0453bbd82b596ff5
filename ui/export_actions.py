"""File > Export plan (ExportController): what the surgeon sees, exported for navigation, PACS and the
patient's file, through the workflow `spineplan export` uses (spine_core.workflows.plan_export).

What is exported is the workstation's current state, never a result folder on disk: the labels shown
(edited, saved or not), the scan they are on, the plan's screws, and what the analysis recorded (QA status
and flags of the labels as they are now, pipeline, models). The export runs in a Worker; the written
files are listed in the status bar.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from spine_core.errors import SpineError
from spine_core.exports import DICOM_FORMATS
from spine_core.planning import Screw
from spine_core.workflows.plan_export import TARGETS, dicom_source, export_formats, session_source
from ui.export_dialog import ExportPlanDialog
from ui.host import Host
from ui.preferences import Preferences
from ui.report_pdf import print_pdf
from ui.session import Session
from ui.worker import Worker


class ExportController(QObject):
    exported = Signal(list)          # the paths written (files and folders)

    def __init__(self, session: Session, host: Host, prefs: Preferences, analysis_record: Callable[[], dict],
                 not_planned: Callable[[], list] | None = None) -> None:
        """``analysis_record()``: what the analysis recorded of the labels shown (AnalysisController);
        ``not_planned()``: the sides the last screw suggestion left without a screw, and why."""
        super().__init__(host.window())
        self.session, self.host, self.prefs = session, host, prefs
        self.analysis_record, self.not_planned = analysis_record, not_planned or list
        self.dialog: ExportPlanDialog | None = None

    def unavailable(self) -> dict[str, str]:
        """Format -> why it cannot be exported now (DICOM-SEG and RTSTRUCT need the scan's DICOM series)."""
        why = dicom_source(self.session.volume)[1]
        return {fmt: why for fmt in DICOM_FORMATS} if why else {}

    def plan_screws(self) -> list[Screw]:
        """The screws of the plan shown (the Session's, edited or not)."""
        return [s if isinstance(s, Screw) else Screw.from_dict(dict(s)) for s in self.session.screws]

    def summary(self) -> str:
        edits, screws = len(self.session.history.done()), len(self.plan_screws())
        labels = f"with {edits} edit{'s' if edits != 1 else ''}, saved or not" if edits else "as opened or analysed"
        planned = (f"its {screws} planned screw{'s' if screws != 1 else ''}" if screws else
                   "no screws planned yet (the report then suggests screws, marked as suggestions)")
        return f"Exports what is shown: the current labels ({labels}) and {planned}."

    def choose_export(self) -> None:
        if self.session.labels is None:
            return
        dialog = ExportPlanDialog(self.prefs.plan_export_dir, self.prefs.plan_export_formats, self.unavailable(),
                                  self.summary(), self.host.window())
        self.dialog = dialog
        if dialog.exec():
            self.prefs.plan_export_dir, self.prefs.plan_export_formats = dialog.folder(), dialog.chosen_formats()
            self.export(dialog.folder(), dialog.chosen_formats())
        self.dialog = None

    def export(self, folder, formats) -> Worker | None:
        """Write ``formats`` into ``folder`` (each under its name in TARGETS) in a Worker."""
        session = self.session
        if session.labels is None:
            self.host.report_error(SpineError("There are no labels to export: analyse the scan or open labels."),
                                   "Exporting the plan")
            return None
        refused = {fmt: why for fmt, why in self.unavailable().items() if fmt in formats}
        if refused:
            fmt, why = next(iter(refused.items()))
            self.host.report_error(SpineError(f"{fmt.upper()} cannot be exported: {why}."), "Exporting the plan")
            return None
        screws = self.plan_screws()
        source = session_source(session.labels, session.volume, self.analysis_record(), screws or None,
                                len(session.history.done()))
        source.not_planned = list(self.not_planned()) if screws else []
        folder = Path(folder).expanduser()
        return self.host.run_task("export-plan", "Exporting the plan", export_formats, source, folder,
                                  [f for f in TARGETS if f in formats], dicom_source(session.volume)[0], pdf=print_pdf,
                                  on_result=lambda summaries: self._on_exported(folder, summaries))

    def _on_exported(self, folder: Path, summaries) -> None:
        names = ", ".join(s.path.name + ("/" if s.path.is_dir() else "") for s in summaries)
        notes = [n for s in summaries for n in s.notes]
        self.host.show_status(f"Exported to {folder}: {names}" + (f" (note: {notes[0]})" if notes else ""), 20000)
        self.exported.emit([str(s.path) for s in summaries])
