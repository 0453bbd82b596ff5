"""SpinePlan imaging core: Qt-free, torch-free."""
from spine_core.errors import SpineError
from spine_core.volume import LabelMap, Volume

__all__ = ["LabelMap", "SpineError", "Volume"]
