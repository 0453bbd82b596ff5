"""Plans, autosave and crash recovery (PlanController); the file format is spine_core.plan.

The plan's screws are the Session's (``session.screws``): ``plan_info.screws`` follows them (as dicts), a
saved plan and the autosave carry them, and opening a plan puts its screws back into the Session.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from spine_core import plan as plans
from spine_core.planning.screws import Screw
from ui import jobs
from ui.file_actions import FileController
from ui.host import Host
from ui.preferences import Preferences
from ui.session import Session

PLAN_FILTER = "SpinePlan plans (*.spineplan);;All files (*)"


class PlanController(QObject):
    """Owns the open plan's record (where it was saved, the edits saved with it) and the autosave timer;
    opens plans through the FileController (the scan a plan was made on, with the plan's labels)."""

    def __init__(self, session: Session, host: Host, prefs: Preferences, files: FileController,
                 autosave_dir=None) -> None:
        """``autosave_dir``: where autosaves go (default: the per-user data folder)."""
        super().__init__(host.window())
        self.session, self.host, self.prefs, self.files = session, host, prefs, files
        self.autosave_dir = Path(autosave_dir) if autosave_dir else plans.data_dir()
        self.plan_info = plans.PlanInfo()
        self.plan_path: Path | None = None
        self.closed = False
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.timeout.connect(self._on_autosave_timer_timeout)
        session.volume_changed.connect(self._on_volume_changed)
        # the history, not labels_changed: the Session records an edit after announcing its labels
        session.history_changed.connect(self._on_history_changed)
        session.screws_changed.connect(self._on_screws_changed)

    def current_plan_info(self) -> plans.PlanInfo:
        volume = self.session.volume
        return plans.PlanInfo(
            scan_source=self.session.source, series_uid=volume.metadata.series_uid if volume else "",
            created=self.plan_info.created, screws=self._screw_dicts(),
            edits=self.plan_info.edits + tuple(e.description for e in self.session.history.done()))

    # --- save and open ------------------------------------------------------------------------
    def choose_save_plan(self) -> None:
        if self.session.labels is None:
            return
        start = self.plan_path or Path(self.prefs.last_dir) / "plan.spineplan"
        path, _ = QFileDialog.getSaveFileName(self.host.window(), "Save plan", str(start), PLAN_FILTER)
        if path:
            self.prefs.remember_dir(path)
            self.save_plan(path)

    def choose_open_plan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.host.window(), "Open plan", self.prefs.last_dir, PLAN_FILTER)
        if path:
            self.prefs.remember_dir(path)
            self.open_plan(path)

    def save_plan(self, path):
        """Labels + plan.json (scan source, series UID, edits, times), written atomically."""
        path = Path(path)
        if path.suffix == "" and not path.exists():
            path = path.with_suffix(plans.PLAN_SUFFIX)

        def saved(where) -> None:
            self.plan_path = Path(where)
            self.host.show_status(f"Saved plan {where}", 8000)

        return self.host.run_task("save", "Saving the plan", jobs.write_plan, path, self.session.labels,
                                  self.current_plan_info(), on_result=saved)

    def open_plan(self, path):
        """Open the scan a plan was made on, with the plan's labels."""
        path = Path(path)
        self.files.add_recent(str(path))
        keep = None if path == plans.autosave_path(self.autosave_dir) else path
        return self.files.open_study(jobs.load_plan_study, path, name=path.name,
                                     on_opened=lambda study: self._on_plan_opened(study, keep))

    def _on_plan_opened(self, study: jobs.LoadedStudy, path: Path | None) -> None:
        self.plan_info, self.plan_path = study.plan.info, path
        try:
            screws = [Screw.from_dict(dict(s)) for s in study.plan.info.screws]
        except (TypeError, ValueError, KeyError) as exc:
            screws = []
            self.host.report_error(plans.PlanError(f"The plan's screws cannot be read ({exc}); its labels are "
                                                   "open, plan the screws again."), "Opening the plan")
        self.session.set_screws(screws)
        edits = len(study.plan.info.edits)
        planned = f", {len(screws)} screws" if screws else ""
        self.host.show_status(f"Plan opened ({edits} edits recorded when it was saved{planned})", 8000)

    # --- autosave and recovery ----------------------------------------------------------------
    def schedule_autosave(self) -> None:
        if self.session.labels is not None and not self.closed:
            self.autosave_timer.start(1000 * self.prefs.autosave_s)

    def _on_autosave_timer_timeout(self) -> None:
        self.autosave_now()

    def autosave_now(self):
        if self.session.labels is None or self.closed:
            return None
        target = plans.autosave_path(self.autosave_dir)
        return self.host.run_task("autosave", "Autosaving", jobs.write_plan, target, self.session.labels,
                                  self.current_plan_info(),
                                  on_result=lambda p: self.host.show_status(f"Autosaved to {p}", 3000))

    def recovery_candidate(self) -> Path | None:
        return plans.recovery_candidate(self.autosave_dir)

    def offer_recovery(self) -> bool:
        """On start: an autosave newer than the last clean close is offered for restore."""
        found = self.recovery_candidate()
        if found is None:
            return False
        if self.host.show_dialogs:
            answer = QMessageBox.question(
                self.host.window(), "Restore unsaved work?",
                "SpinePlan did not close cleanly last time. Restore the autosaved plan?")
            if answer != QMessageBox.StandardButton.Yes:
                plans.discard_autosave(self.autosave_dir)
                return False
        self.restore_autosave(found)
        return True

    def restore_autosave(self, path=None):
        return self.open_plan(path or plans.autosave_path(self.autosave_dir))

    def mark_clean_close(self) -> None:
        """The window closed (its tasks done): no more autosaves; the next start offers none."""
        self.closed = True
        self.autosave_timer.stop()
        try:
            plans.mark_clean_close(self.autosave_dir)
        except OSError:
            pass

    # --- session ------------------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        self.plan_info, self.plan_path = plans.PlanInfo(), None

    def _screw_dicts(self) -> tuple[dict, ...]:
        return tuple(s.to_dict() for s in self.session.screws)

    def _on_screws_changed(self) -> None:
        self.plan_info = replace(self.plan_info, screws=self._screw_dicts())

    def _on_history_changed(self) -> None:
        history = self.session.history
        if history.can_undo() or history.can_redo():     # an edit, undo or redo (new labels start none)
            self.schedule_autosave()
