"""What the main window's controllers ask of the window around them: this, and nothing else.

Each controller (ui/tasks.py, analysis_actions.py, plan_actions.py, edit_tools.py, file_actions.py,
display.py) gets the Session, the widgets it drives and a ``Host`` in its constructor. ``MainWindow``
is the host of the workstation; tests pass a stub (tests/ui/test_controllers.py), so each controller
runs without a window.
"""
from __future__ import annotations

from typing import Callable, Protocol

from PySide6.QtWidgets import QWidget

from ui.worker import Worker


class Host(Protocol):
    show_dialogs: bool          # False when scripted or tested: no modal dialogs, errors are signalled

    def run_task(self, role: str, action: str, fn: Callable, *args, on_result=None, **kwargs) -> Worker:
        """Run ``fn(*args, progress=..., **kwargs)`` in a Worker (``TaskController.run``)."""

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        """A line in the status bar."""

    def report_error(self, exc: BaseException, action: str = "") -> str:
        """Show an error (``ErrorReporter.report``); returns the text shown."""

    def window(self) -> QWidget:
        """The top-level window: the parent of controllers and dialogs, what a screenshot grabs."""
