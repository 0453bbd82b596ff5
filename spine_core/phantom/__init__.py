"""Seeded synthetic spine CT phantoms with exact vertebra labels (training data, demo study, tests).

    from spine_core.phantom import PhantomOptions, generate_phantom, write_phantom
    phantom = generate_phantom(PhantomOptions(seed=3, first_level="T10", last_level="L5"))
"""
from spine_core.phantom.generate import Phantom, PhantomOptions, generate_phantom
from spine_core.phantom.layout import CurveShape
from spine_core.phantom.real_shapes import ShapeLibrary, VertebraShape

__all__ = ["CurveShape", "Phantom", "PhantomOptions", "ShapeLibrary", "VertebraShape", "generate_phantom",
           "write_phantom"]


def __getattr__(name: str):
    # The writer needs the DICOM stack; generating phantoms (training, on a GPU host too) does not.
    if name == "write_phantom":
        from spine_core.phantom.writer import write_phantom

        return write_phantom
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
