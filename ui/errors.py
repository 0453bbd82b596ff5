"""The one error reporter: clinician-readable SpineErrors as they are; anything else is logged
with its traceback to a file, and shown as a short message with that file's path.

The crash report writer comes from the app (``app.logs.write_crash_report``): ui never imports app.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from spine_core.errors import Cancelled, SpineError

log = logging.getLogger(__name__)


class ErrorReporter(QObject):
    """``report(exc, action)``; ``reported(str)`` carries the text shown (tests listen to it)."""

    reported = Signal(str)

    def __init__(self, parent: QWidget, show_dialogs: bool = True,
                 crash_report: Callable[[BaseException], Path] | None = None) -> None:
        """``crash_report`` writes an unexpected exception's traceback to a file and returns its
        path; without one the traceback goes to the log only."""
        super().__init__(parent)
        self._parent = parent
        self.show_dialogs = show_dialogs
        self.crash_report = crash_report
        self.last_message = ""

    def message_for(self, exc: BaseException, action: str = "") -> tuple[str, bool]:
        """(text, expected): expected errors are the SpineError family."""
        prefix = f"{action} failed.\n\n" if action else ""
        if isinstance(exc, SpineError):
            return prefix + str(exc), True
        if self.crash_report is None:
            where = "The details are in the log."
        else:
            try:
                where = f"Details were written to:\n{self.crash_report(exc)}"
            except OSError:
                where = "The details could not be written to the log folder."
        log.error("unexpected error during %s", action or "a task", exc_info=exc)
        return (f"{prefix}An unexpected error occurred ({type(exc).__name__}: {exc}).\n{where}"), False

    def report(self, exc: BaseException, action: str = "") -> str:
        if isinstance(exc, Cancelled):
            return ""
        text, expected = self.message_for(exc, action)
        self.last_message = text
        self.reported.emit(text)
        if self.show_dialogs:
            icon = QMessageBox.Icon.Warning if expected else QMessageBox.Icon.Critical
            box = QMessageBox(icon, "SpinePlan", text, QMessageBox.StandardButton.Ok, self._parent)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()                       # window-modal, never blocks the event loop
        return text
