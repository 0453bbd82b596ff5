"""Planning overlays: what a slice draws of a segment (the part in its slab), markers as draggable handles that
keep the coordinate across the slice, pick mode, and the same items in 3D."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.viewers.test_slice_view import _show, grab_rgb, with_labels
from viewers.overlay import Disc, Marker, Rod, Segment, clip_to_slab

RED, CYAN = (255, 40, 40), (0, 220, 255)


def test_a_segment_is_clipped_to_the_slab_around_the_slice():
    origin, normal = np.zeros(3), np.array([0.0, 0.0, 1.0])
    a, b = clip_to_slab((0, 0, -10), (0, 10, 10), origin, normal, 1.0)
    np.testing.assert_allclose(a, (0, 4.5, -1))
    np.testing.assert_allclose(b, (0, 5.5, 1))
    assert clip_to_slab((0, 0, 3), (5, 0, 8), origin, normal, 1.0) is None
    assert clip_to_slab((0, 0, 0.5), (5, 0, 0.5), origin, normal, 1.0) is not None       # lying in it


def _share(rgb, color, tolerance=30) -> int:
    return int((np.abs(rgb.astype(int) - np.array(color)).max(axis=-1) <= tolerance).sum())


def test_slice_overlay_draws_what_crosses_the_slice_and_drags_handles_within_it(qtbot, label_grid):
    scan, array = label_grid()
    view = _show(qtbot, "axial", scan, with_labels(scan, array), at=scan.index_to_lps((12, 12, 12)))
    z = float(view.crosshair()[2])
    crossing = Segment((2.0, 4.0, z), (20.0, 4.0, z), RED, width=3.0, near_mm=1.0)
    elsewhere = Segment((2.0, 16.0, z + 6), (20.0, 16.0, z + 6), CYAN, width=3.0, near_mm=1.0)
    handle = Marker((6.0, 10.0, z + 0.4), CYAN, radius_px=6.0, handle="h")
    view.set_overlay("test", [crossing, elsewhere, handle])
    rgb = grab_rgb(view)
    assert _share(rgb, RED) > 50                                   # the segment in the slice
    row = int(view.lps_to_widget((2.0, 16.0, z)).y())
    assert _share(rgb[row - 3:row + 4], CYAN) == 0                 # the one 6 mm off: not drawn
    [(name, at, lps)] = view.handles()
    assert name == "h" and lps[2] == pytest.approx(z + 0.4)
    target = view.lps_to_widget((14.0, 12.0, z))
    with qtbot.waitSignal(view.handle_released) as released:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(round(at.x()), round(at.y())))
        qtbot.mouseMove(view, QPoint(round(target.x()), round(target.y())))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    x, y, moved_z = released.args[1:]
    assert (x, y) == pytest.approx((14.0, 12.0), abs=0.8) and moved_z == pytest.approx(z + 0.4)  # kept across
    view.set_overlay("test", [])
    assert view.handles() == [] and not view.overlay("test")
    view.set_pick_mode(True)
    with qtbot.waitSignal(view.point_picked) as picked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    assert picked.args[:2] == pytest.approx([14.0, 12.0], abs=0.8)


def test_mesh_view_draws_rods_and_discs_and_replaces_them_by_key(mesh_view):
    items = [Rod((0, 0, 0), (30, 0, 0), 3.0, RED), Disc((0, 0, 10), (0, 0, 1), 15.0, CYAN),
             Segment((0, 0, 0), (0, 0, 20), CYAN), Marker((0, 0, 0), RED, views=("3d",)),
             Marker((5, 5, 5), RED)]                                   # (a slice marker: not in 3D)
    mesh_view.set_overlay("plan", items)
    assert mesh_view.overlay_count("plan") == 4
    mesh_view.plotter.reset_camera()
    mesh_view.set_standard_view("anterior")
    assert _share(mesh_view.screenshot(), RED, 90) > 50
    mesh_view.set_overlay("plan", items[:1])
    assert mesh_view.overlay_count("plan") == 1
    mesh_view.set_overlay("plan", [])
    assert mesh_view.overlay_count("plan") == 0
