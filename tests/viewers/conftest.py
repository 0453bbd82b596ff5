"""Viewer tests render under Xvfb (pytest-xvfb starts it) and check pixels of real renders."""
import gc
import os
import warnings
import weakref

import numpy as np
import pytest
import shiboken6
from vtkmodules.vtkCommonCore import vtkObjectBase

from spine_core.volume import Volume, affine_from_geometry


@pytest.fixture
def display():
    """Skip cleanly where no X display could be made (OpenGL needs one; see STACK.md)."""
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        pytest.skip("no X display (install Xvfb and pytest-xvfb)")


def _alive(obj, tracked: tuple) -> bool:
    """A VTK object, or a viewer widget whose C++ side still exists (pytest keeps the Python
    wrappers of fixture values until the test item is done; a deleted widget is not a leak)."""
    try:
        if isinstance(obj, weakref.ProxyTypes):
            return False
        if isinstance(obj, tracked):
            return shiboken6.isValid(obj)
        return isinstance(obj, vtkObjectBase)       # VTK objects and pyvista's subclasses
    except Exception:  # noqa: BLE001 - some objects cannot even report their type
        return False


def _alive_objects(tracked: tuple) -> list:
    # Scanning every live object touches deprecated module attributes (torch) that warn.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [o for o in gc.get_objects() if _alive(o, tracked)]


@pytest.fixture(autouse=True)
def check_gc():
    """After each viewer test, no VTK object or MeshView made in it may still be alive
    (adapted from pyvistaqt's own ``check_gc``). Autouse fixtures tear down last, so the
    test's other fixtures have released their widgets by then."""
    from pyvistaqt import QtInteractor

    from viewers.mesh_view import MeshView

    tracked = (MeshView, QtInteractor)
    gc.collect()
    before = {id(o) for o in _alive_objects(tracked)}
    yield
    gc.collect()
    leaked = [o for o in _alive_objects(tracked) if id(o) not in before]
    assert not leaked, f"{len(leaked)} VTK objects / viewers outlived the test: " + ", ".join(
        sorted({type(o).__name__ for o in leaked}))


@pytest.fixture
def mesh_view(qtbot, display):
    """A shown MeshView; closed (plotter.close()) and deleted after the test."""
    from viewers.mesh_view import MeshView

    view = MeshView()
    view.resize(320, 320)
    view.show()
    qtbot.waitExposed(view)
    yield view
    plotter = view.plotter
    view.close()
    assert plotter._closed and view.plotter is None
    assert getattr(plotter, "_surface", None) is None      # no wrapper left to outlive the GL surface Qt frees
    del plotter
    view.deleteLater()
    del view
    qtbot.wait(10)            # runs the deferred delete


def _label_grid(shape=(24, 24, 24), spacing=(1.0, 1.0, 1.0), direction=None, origin=(0.0, 0.0, 0.0)):
    affine = affine_from_geometry(spacing, direction, origin)
    return Volume(np.full(shape, 400, np.int16), affine), np.zeros(shape, np.int16)


@pytest.fixture
def label_grid():
    """Factory: an empty scan (uniform 400 HU) and a zero label array on one grid."""
    return _label_grid
