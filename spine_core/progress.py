"""The progress/cancel protocol every long-running core function accepts."""
from __future__ import annotations

import threading
from typing import Protocol

from spine_core.errors import Cancelled


class Progress(Protocol):
    def update(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; raises Cancelled once cancellation was requested."""


class CancelToken:
    """Thread-safe flag shared between the GUI thread and a worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class NullProgress:
    """For scripts and tests: reports nothing, cancels only through an optional token."""

    def __init__(self, token: CancelToken | None = None) -> None:
        self.token = token

    def update(self, fraction: float, message: str = "") -> None:
        if self.token is not None and self.token.cancelled:
            raise Cancelled(message or "cancelled")


class CallbackProgress:
    """Forwards updates to a callback (CLI bars, Qt signals) and honours a cancel token."""

    def __init__(self, callback, token: CancelToken | None = None) -> None:
        self._callback = callback
        self.token = token or CancelToken()

    def update(self, fraction: float, message: str = "") -> None:
        if self.token.cancelled:
            raise Cancelled(message or "cancelled")
        self._callback(min(max(float(fraction), 0.0), 1.0), message)


class SubProgress:
    """Maps [0, 1] of a sub-task onto [start, stop] of a parent progress."""

    def __init__(self, parent: Progress, start: float, stop: float) -> None:
        self.parent, self.start, self.stop = parent, start, stop

    def update(self, fraction: float, message: str = "") -> None:
        self.parent.update(self.start + (self.stop - self.start) * fraction, message)
