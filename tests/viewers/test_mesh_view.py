"""MeshView renders vertebra meshes in LPS, picks them by id, and frees its render window."""
import numpy as np
import pytest

from spine_core.meshes import mesh_labels
from spine_core.volume import LabelMap, affine_from_geometry
from viewers.mesh_view import STANDARD_VIEWS, mesh_rgb

LEFT_ID, RIGHT_ID = 20, 21       # L1 on the patient's left, L2 on the right


@pytest.fixture(scope="module")
def meshes():
    """Two 6 mm balls 12 mm either side of the midline (LPS x), on a 40^3 1 mm grid."""
    shape = (40, 40, 40)
    affine = affine_from_geometry((1.0, 1.0, 1.0), None, (-20.0, -20.0, -20.0))
    lps = np.indices(shape).reshape(3, -1).T - 20.0
    array = np.zeros(int(np.prod(shape)), np.int16)
    array[np.linalg.norm(lps - (12, 0, 0), axis=1) <= 6] = LEFT_ID
    array[np.linalg.norm(lps - (-12, 0, 0), axis=1) <= 6] = RIGHT_ID
    return mesh_labels(LabelMap(array.reshape(shape), affine))


def _display_xy(view, lps):
    """VTK display coordinates (origin bottom-left) of an LPS point."""
    renderer = view.plotter.renderer
    renderer.SetWorldPoint(*lps, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    return int(round(x)), int(round(y))


def _colour_columns(image, label_id, tolerance=60):
    """Columns of pixels close to the label's colour (lit surfaces vary around it)."""
    rgb = np.array(mesh_rgb(label_id)) * 255
    close = np.abs(image[..., :3].astype(float) - rgb).sum(axis=-1) < tolerance
    return np.nonzero(close)[1]


def test_renders_meshes_with_their_colours(mesh_view, meshes):
    background = mesh_view.screenshot()
    mesh_view.set_meshes(meshes)
    mesh_view.view_anterior()
    image = mesh_view.screenshot()
    assert image.shape[:2] == background.shape[:2]
    changed = np.any(image != background, axis=-1)
    assert 0.05 < changed.mean() < 0.9
    assert _colour_columns(image, LEFT_ID).size > 100 and _colour_columns(image, RIGHT_ID).size > 100
    assert mesh_view.mesh_ids() == [LEFT_ID, RIGHT_ID]


@pytest.mark.parametrize("view_name, left_on_right", [("anterior", True), ("posterior", False),
                                                      ("axial", True)])
def test_standard_views_put_the_patients_left_where_expected(mesh_view, meshes, view_name, left_on_right):
    mesh_view.set_meshes(meshes)
    mesh_view.set_names_visible(False)
    mesh_view.set_standard_view(view_name)
    np.testing.assert_allclose(mesh_view.plotter.camera.direction, STANDARD_VIEWS[view_name][0], atol=1e-6)
    image = mesh_view.screenshot()
    left, right = _colour_columns(image, LEFT_ID).mean(), _colour_columns(image, RIGHT_ID).mean()
    assert (left > right) == left_on_right


def test_lateral_view_looks_from_the_left(mesh_view, meshes):
    mesh_view.set_meshes(meshes)
    mesh_view.view_lateral()
    direction = np.array(mesh_view.plotter.camera.direction)
    np.testing.assert_allclose(direction, (-1, 0, 0), atol=1e-6)
    assert _display_xy(mesh_view, (0, -20, 0))[0] < _display_xy(mesh_view, (0, 20, 0))[0]  # anterior left


def test_picking_maps_to_the_vertebra_id(mesh_view, meshes, qtbot):
    mesh_view.set_meshes(meshes)
    mesh_view.view_anterior()
    for label_id in (LEFT_ID, RIGHT_ID):
        x, y = _display_xy(mesh_view, meshes[label_id].centroid)
        assert mesh_view.vertebra_at(x, y) == label_id
        assert mesh_view.id_of_actor(mesh_view._actors[label_id]) == label_id
    assert mesh_view.vertebra_at(2, 2) is None
    # A click (press and release without moving) emits the id.
    interactor = mesh_view.plotter.iren.interactor
    x, y = _display_xy(mesh_view, meshes[RIGHT_ID].centroid)
    with qtbot.waitSignal(mesh_view.vertebra_picked, timeout=2000) as blocker:
        interactor.SetEventInformation(x, y, 0, 0)
        interactor.InvokeEvent("LeftButtonPressEvent")
        interactor.InvokeEvent("LeftButtonReleaseEvent")
    assert blocker.args == [RIGHT_ID]


def test_show_hide_opacity_update_and_remove(mesh_view, meshes):
    mesh_view.set_meshes(meshes)
    mesh_view.view_anterior()
    actor = mesh_view._actors[LEFT_ID]
    mesh_view.set_mesh_visible(LEFT_ID, False)
    assert not mesh_view.is_mesh_visible(LEFT_ID)
    assert _colour_columns(mesh_view.screenshot(), LEFT_ID).size == 0
    x, y = _display_xy(mesh_view, meshes[LEFT_ID].centroid)
    assert mesh_view.vertebra_at(x, y) is None                   # hidden meshes are not picked
    mesh_view.set_mesh_visible(LEFT_ID, True)
    mesh_view.set_opacity(0.4, ids=[LEFT_ID])
    assert actor.prop.opacity == pytest.approx(0.4)
    assert mesh_view._actors[RIGHT_ID].prop.opacity == pytest.approx(1.0)
    mesh_view.set_meshes(dict(meshes))                           # unchanged meshes keep their actors
    assert mesh_view._actors[LEFT_ID] is actor
    mesh_view.remove_mesh(LEFT_ID)
    assert mesh_view.mesh_ids() == [RIGHT_ID]
    mesh_view.update_mesh(meshes[LEFT_ID])
    assert mesh_view.mesh_ids() == [LEFT_ID, RIGHT_ID]
    mesh_view.clear()
    assert mesh_view.mesh_ids() == []
