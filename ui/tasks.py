"""The window's background tasks (TaskController) and whether the study being opened is shown yet
(StudyReadiness).

Every long task (load, analyse, mesh, save, export) runs in a ``Worker`` on the controller's own
thread pool; one task per role runs at a time (a new load cancels the previous one) and the results
of a replaced or cancelled task are ignored. Closing waits for the workers (each stops at its next
progress update).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

from ui.task_status import TaskStatusWidget
from ui.worker import Worker

STUDY_ROLES = ("load", "analyze", "mesh")                # their failure fails the study being opened
SHOWING_ROLES = ("load", "labels", "analyze", "mesh")     # while one runs, the study is not shown yet


class _TaskRelay(QObject):
    """Receives one Worker's signals on the GUI thread (a QObject receiver makes them queued)."""

    def __init__(self, tasks: "TaskController", role: str, worker: Worker, on_result, action: str) -> None:
        super().__init__(tasks)
        self.tasks, self.role, self.worker = tasks, role, worker
        self.on_result, self.action = on_result, action
        signals = worker.signals
        signals.progress.connect(self._on_progress)
        signals.result.connect(self._on_result)
        signals.error.connect(self._on_error)
        signals.cancelled.connect(self._on_cancelled)
        signals.finished.connect(self._on_finished)

    def _current(self) -> bool:
        return not self.tasks.closing and self.tasks.current(self.role) is self.worker

    def _on_progress(self, fraction: float, message: str) -> None:
        if self._current():
            self.tasks.status.update_progress(fraction, message)

    def _on_result(self, value) -> None:
        if self._current() and not self.worker.cancel_requested:
            try:
                self.on_result(value)
            except Exception as exc:  # noqa: BLE001 - a failing handler is reported like a task error
                self._on_error(exc)

    def _on_error(self, exc) -> None:
        if self._current():
            self.tasks.report_error(self.role, exc, self.action)

    def _on_cancelled(self) -> None:
        if self._current():
            self.tasks.show_status(f"{self.action} cancelled", 5000)
            self.tasks.cancelled.emit(self.role)

    def _on_finished(self) -> None:
        self.tasks.task_finished(self)


class TaskController(QObject):
    """``run(role, action, fn, ...)``: one Worker per role, its progress in ``status`` (whose Cancel
    button cancels every task), its errors to ``report_error(exc, action)``."""

    busy_changed = Signal(bool)
    failed = Signal(str, str)       # role, the error text shown
    cancelled = Signal(str)         # role
    settled = Signal()              # a task finished (the others may still run)

    def __init__(self, status: TaskStatusWidget, report_error: Callable[[BaseException, str], str],
                 show_status: Callable[[str, int], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status = status
        self._report_error, self.show_status = report_error, show_status
        self.closing = False
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.running: dict[str, Worker] = {}      # the current worker of each role
        self._relays: set[_TaskRelay] = set()     # every worker still running (current or not)
        status.cancel_clicked.connect(self.cancel_all)

    def run(self, role: str, action: str, fn, *args, on_result=None, **kwargs) -> Worker:
        """Run ``fn(*args, progress=..., **kwargs)`` in a Worker; a running task of the same role
        is cancelled and its result ignored."""
        previous = self.running.get(role)
        if previous is not None:
            previous.cancel()
        worker = Worker(fn, *args, name=action, **kwargs)
        relay = _TaskRelay(self, role, worker, on_result or (lambda _value: None), action)
        self._relays.add(relay)
        self.running[role] = worker
        self.status.start(f"{action}...")
        self.busy_changed.emit(True)
        self.pool.start(worker)
        return worker

    def current(self, role: str) -> Worker | None:
        return self.running.get(role)

    def is_busy(self) -> bool:
        return bool(self._relays)

    def cancel_all(self) -> None:
        for worker in self.running.values():
            worker.cancel()
        if self.running:
            self.status.cancelling()

    def report_error(self, role: str, exc: BaseException, action: str) -> str:
        text = self._report_error(exc, action)
        self.failed.emit(role, text)
        return text

    def task_finished(self, relay: _TaskRelay) -> None:
        self._relays.discard(relay)
        if self.running.get(relay.role) is relay.worker:
            del self.running[relay.role]
        relay.deleteLater()
        if self.closing:
            return
        if not self.running:
            self.status.stop()
            self.busy_changed.emit(False)
        self.settled.emit()

    def shutdown(self) -> None:
        """Cancel every task and wait for them; results that arrive later are ignored."""
        self.closing = True
        for relay in list(self._relays):
            relay.worker.cancel()
        self.pool.waitForDone()
        self.running.clear()


class StudyReadiness(QObject):
    """After ``expect()`` (a scan or labels are being opened, or analysed): ``ready`` once no load,
    labels, analysis or mesh task runs, a scan is shown and every mesh is made; ``failed(text)``
    where a load, analysis or mesh failed or was cancelled first."""

    ready = Signal()
    failed = Signal(str)

    def __init__(self, tasks: TaskController, session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks, self.session = tasks, session
        self.awaiting = False
        tasks.failed.connect(self._on_tasks_failed)
        tasks.cancelled.connect(self._on_tasks_cancelled)
        tasks.settled.connect(self._on_tasks_settled)

    def expect(self) -> None:
        self.awaiting = True

    def forget(self) -> None:
        """Nothing is awaited (e.g. the user picks a series first; the choice opens anew)."""
        self.awaiting = False

    def fail(self, text: str) -> None:
        if self.awaiting:
            self.awaiting = False
            self.failed.emit(text)

    def _on_tasks_failed(self, role: str, text: str) -> None:
        if role in STUDY_ROLES:
            self.fail(text)

    def _on_tasks_cancelled(self, role: str) -> None:
        if role in STUDY_ROLES:
            self.fail("cancelled")

    def _on_tasks_settled(self) -> None:
        busy = any(self.tasks.current(role) is not None for role in SHOWING_ROLES)
        if self.awaiting and not busy and self.session.volume is not None and not self.session.stale_mesh_ids:
            self.awaiting = False
            self.ready.emit()
