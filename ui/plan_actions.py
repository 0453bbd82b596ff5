"""Plans, autosave and crash recovery (a mixin of MainWindow); file formats in spine_core.plan."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from spine_core import plan as plans
from ui import jobs

PLAN_FILTER = "SpinePlan plans (*.spineplan);;All files (*)"


class PlanMixin:
    def _init_plans(self, autosave_dir=None) -> None:
        self.autosave_dir = Path(autosave_dir) if autosave_dir else plans.data_dir()
        self.plan_info = plans.PlanInfo()
        self.plan_path: Path | None = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.timeout.connect(self._on_autosave_timer_timeout)

    def autosave_interval_s(self) -> int:
        return self.prefs.autosave_s

    def current_plan_info(self) -> plans.PlanInfo:
        volume = self.session.volume
        return plans.PlanInfo(
            scan_source=self.session.source, series_uid=volume.metadata.series_uid if volume else "",
            created=self.plan_info.created,
            edits=self.plan_info.edits + tuple(e.description for e in self.session.history.done()))

    # --- save and open ------------------------------------------------------------------------
    def choose_save_plan(self) -> None:
        if self.session.labels is None:
            return
        start = self.plan_path or Path(self._last_dir()) / "plan.spineplan"
        path, _ = QFileDialog.getSaveFileName(self, "Save plan", str(start), PLAN_FILTER)
        if path:
            self._remember_dir(path)
            self.save_plan(path)

    def choose_open_plan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open plan", self._last_dir(), PLAN_FILTER)
        if path:
            self._remember_dir(path)
            self.open_plan(path)

    def save_plan(self, path):
        """Labels + plan.json (scan source, series UID, edits, times), written atomically."""
        path = Path(path)
        if path.suffix == "" and not path.exists():
            path = path.with_suffix(plans.PLAN_SUFFIX)

        def saved(where) -> None:
            self.plan_path = Path(where)
            self.statusBar().showMessage(f"Saved plan {where}", 8000)

        return self.run_task("save", "Saving the plan", jobs.write_plan, path, self.session.labels,
                             self.current_plan_info(), on_result=saved)

    def open_plan(self, path):
        """Open the scan a plan was made on, with the plan's labels."""
        self._awaiting_ready = True
        self.add_recent(str(path))
        keep = None if Path(path) == plans.autosave_path(self.autosave_dir) else Path(path)
        return self.run_task("load", f"Opening {Path(path).name}", jobs.load_plan_study, Path(path),
                             on_result=lambda study: self._on_plan_loaded(study, keep))

    def _on_plan_loaded(self, study: jobs.LoadedStudy, path: Path | None) -> None:
        self._on_study_loaded(study)
        self.plan_info, self.plan_path = study.plan.info, path
        edits = len(study.plan.info.edits)
        self.statusBar().showMessage(f"Plan opened ({edits} edits recorded when it was saved)", 8000)

    # --- autosave and recovery ----------------------------------------------------------------
    def schedule_autosave(self) -> None:
        if self.session.labels is not None and not self.closing:
            self.autosave_timer.start(1000 * self.autosave_interval_s())

    def _on_autosave_timer_timeout(self) -> None:
        self.autosave_now()

    def autosave_now(self):
        if self.session.labels is None or self.closing:
            return None
        target = plans.autosave_path(self.autosave_dir)
        return self.run_task("autosave", "Autosaving", jobs.write_plan, target, self.session.labels,
                             self.current_plan_info(),
                             on_result=lambda p: self.statusBar().showMessage(f"Autosaved to {p}", 3000))

    def recovery_candidate(self) -> Path | None:
        return plans.recovery_candidate(self.autosave_dir)

    def offer_recovery(self) -> bool:
        """On start: an autosave newer than the last clean close is offered for restore."""
        found = self.recovery_candidate()
        if found is None:
            return False
        if self.show_dialogs:
            answer = QMessageBox.question(
                self, "Restore unsaved work?",
                "SpinePlan did not close cleanly last time. Restore the autosaved plan?")
            if answer != QMessageBox.StandardButton.Yes:
                plans.discard_autosave(self.autosave_dir)
                return False
        self.restore_autosave(found)
        return True

    def restore_autosave(self, path=None):
        return self.open_plan(path or plans.autosave_path(self.autosave_dir))

    def mark_clean_close(self) -> None:
        self.autosave_timer.stop()
        try:
            plans.mark_clean_close(self.autosave_dir)
        except OSError:
            pass
