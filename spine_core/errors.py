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


class ImplausibleGeometry(UnsupportedImage):
    """Spacing, orientation, origin or extent a real scan cannot have (zero, negative, NaN, sheared...)."""


class ImplausibleValues(UnsupportedImage):
    """Voxel values a scan of that modality cannot hold (NaN, 1e30 HU, CT without its rescale)."""


class ScanTooLarge(UnsupportedImage):
    """The header announces more voxels or bytes than SpinePlan allocates."""


class CorruptPixelData(UnreadableFile):
    """The pixel data are shorter than, longer than or different from what the header announces."""


class MixedSeries(IncompleteSeries):
    """Images under one series UID that do not belong to one volume (other size, spacing, frame)."""


class UnsafeInput(SpineError):
    """A header pointing outside its own folder (``ElementDataFile = /etc/passwd``) or at a device."""


class Cancelled(Exception):
    """Raised by a progress object once the user asked to cancel. Not a SpineError: not a fault."""
