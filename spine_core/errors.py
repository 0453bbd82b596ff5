"""Errors a clinician can act on. spine_core raises these; the UI and CLI show them."""


class SpineError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class InputNotFound(SpineError):
    pass


class NoScanFound(SpineError):
    pass


class UnreadableFile(SpineError):
    pass


class UnsupportedImage(SpineError):
    pass


class MultipleSeries(SpineError):
    """The input holds several series and none was chosen."""

    def __init__(self, message, series=()):
        super().__init__(message)
        self.series = list(series)


class SeriesNotFound(SpineError):
    pass


class IncompleteSeries(SpineError):
    """Slices are missing or the series is otherwise inconsistent."""


class ModalityMismatch(SpineError):
    pass


class GridMismatch(SpineError):
    pass


class Cancelled(Exception):
    """Raised by a progress object once the user asked to cancel. Not a SpineError: not a fault."""
