"""One Worker runs any long core function off the GUI thread and reports back by signal.

The function must accept a ``progress`` keyword (spine_core's protocol: ``progress.update(fraction,
message)`` raises ``Cancelled`` once ``cancel()`` was asked). Workers never touch widgets; the
result travels in the ``result`` signal, delivered on the GUI thread (queued connection).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from spine_core.errors import Cancelled
from spine_core.progress import CallbackProgress, CancelToken

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """Signals of one Worker (a QRunnable is not a QObject)."""

    started = Signal()
    progress = Signal(float, str)
    result = Signal(object)
    error = Signal(object)          # the exception
    cancelled = Signal()
    finished = Signal()             # always last, whatever the outcome


class Worker(QRunnable):
    """``Worker(fn, *args, **kwargs)`` runs ``fn(*args, progress=..., **kwargs)`` in a thread pool."""

    def __init__(self, fn: Callable[..., Any], *args, name: str = "", **kwargs) -> None:
        super().__init__()
        self.setAutoDelete(False)            # Python owns it: the window keeps it until finished
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "task")
        self.token = CancelToken()
        self.signals = WorkerSignals()
        self.done = False

    def cancel(self) -> None:
        """Ask the function to stop at its next progress update."""
        self.token.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self.token.cancelled

    def run(self) -> None:  # runs on a pool thread
        signals = self.signals
        try:
            signals.started.emit()
            if self.token.cancelled:
                raise Cancelled("cancelled before start")
            progress = CallbackProgress(signals.progress.emit, self.token)
            value = self.fn(*self.args, progress=progress, **self.kwargs)
        except Cancelled:
            log.info("%s cancelled", self.name)
            signals.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, never lost in a thread
            log.debug("%s failed", self.name, exc_info=exc)
            signals.error.emit(exc)
        else:
            signals.result.emit(value)
        finally:
            self.done = True
            signals.finished.emit()
