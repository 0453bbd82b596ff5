"""SliceView renders the right pixels, in the radiological convention, for any input orientation."""
import sys

import numpy as np
import PySide6
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from spine_core.errors import GridMismatch
from spine_core.labels import label_color
from spine_core.volume import LabelMap
from viewers.slice_geometry import SliceGeometry
from viewers.slice_view import WINDOW_PRESETS, SliceView

LEFT, ANTERIOR, SUPERIOR = 20, 9, 26          # L1 (orange), T2 (green), sacrum (magenta)
MARKERS = {LEFT: (7.0, 0.0, 0.0), ANTERIOR: (0.0, -7.0, 0.0), SUPERIOR: (0.0, 0.0, 7.0)}  # LPS mm


def _rotation_z(degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "PIR": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),   # verse009's grid
    "LPI-oblique": _rotation_z(12) @ np.diag([1.0, 1.0, -1.0]),
}


def grab_rgb(widget) -> np.ndarray:
    """The widget painted into a 24-bit image (``grab()`` would take the X screen's depth,
    16 bits under pytest-xvfb's default, which rounds colours)."""
    image = QImage(widget.size(), QImage.Format.Format_RGB888)
    image.fill(0)
    widget.render(image)
    width, height = image.width(), image.height()
    return np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())[
        :, : width * 3].reshape(height, width, 3).copy()


def with_labels(scan, array):
    return LabelMap(array, scan.affine)


def pixels_of(rgb, label_id):
    rows, cols = np.nonzero(np.all(rgb == label_color(label_id), axis=-1))
    return rows, cols


def _marker_scan(label_grid, direction, spacing=(1.0, 0.8, 1.25)):
    """A grid centred on LPS (0, 0, 0) with three 5 mm cubes: left, anterior, superior."""
    shape = (24, 24, 24)
    centre_index = (np.array(shape) - 1) / 2
    origin = -direction @ (np.array(spacing) * centre_index)
    scan, array = label_grid(shape, spacing, direction, origin)
    lps = scan.index_to_lps(np.indices(shape).reshape(3, -1).T).reshape(*shape, 3)
    for label_id, point in MARKERS.items():
        array[np.abs(lps - point).max(axis=-1) <= 2.6] = label_id
    return scan, with_labels(scan, array)


def _show(qtbot, plane, scan, labels, size=(300, 300), at=(0.0, 0.0, 0.0)):
    view = SliceView(plane)
    qtbot.addWidget(view)
    view.resize(*size)
    view.set_volume(scan)
    view.set_labels(labels)
    view.set_label_opacity(1.0)
    view.set_crosshair_visible(False)
    view.set_names_visible(False)
    view.set_crosshair(at)
    view.show()
    qtbot.waitExposed(view)
    return view


EXPECTED = {  # plane: {marker: (sign of column offset, sign of row offset)} from the image centre
    "axial": {LEFT: (+1, 0), ANTERIOR: (0, -1)},
    "sagittal": {ANTERIOR: (-1, 0), SUPERIOR: (0, -1)},
    "coronal": {LEFT: (+1, 0), SUPERIOR: (0, -1)},
}


@pytest.mark.parametrize("grid", list(DIRECTIONS))
@pytest.mark.parametrize("plane", list(EXPECTED))
def test_radiological_orientation_for_any_input_grid(qtbot, plane, grid, label_grid):
    scan, labels = _marker_scan(label_grid, DIRECTIONS[grid])
    view = _show(qtbot, plane, scan, labels)
    rgb = grab_rgb(view)
    centre = view.lps_to_widget((0.0, 0.0, 0.0))
    for label_id, (col_sign, row_sign) in EXPECTED[plane].items():
        rows, cols = pixels_of(rgb, label_id)
        assert rows.size > 50, f"{plane}/{grid}: marker {label_id} not drawn"
        d_col, d_row = cols.mean() - centre.x(), rows.mean() - centre.y()
        main, across = (d_col, d_row) if col_sign else (d_row, d_col)
        # An oblique grid is shown on its own axes, so a marker may sit off-axis by the tilt (12 deg).
        assert np.sign(main) == (col_sign or row_sign) and abs(main) > 40, (label_id, d_col, d_row)
        assert abs(across) < 0.3 * abs(main), (label_id, d_col, d_row)
        for other in set(MARKERS) - set(EXPECTED[plane]):
            assert pixels_of(rgb, other)[0].size == 0


def test_label_colour_and_grey_where_the_structure_is(qtbot, label_grid):
    scan, array = label_grid()
    array[8:16, 8:16, 8:16] = LEFT
    labels = with_labels(scan, array)
    view = _show(qtbot, "axial", scan, labels, at=scan.index_to_lps((12, 12, 12)))
    rgb = grab_rgb(view)
    inside = view.lps_to_widget(scan.index_to_lps((12, 12, 12)))
    outside = view.lps_to_widget(scan.index_to_lps((3, 3, 12)))
    assert tuple(rgb[int(inside.y()), int(inside.x())]) == label_color(LEFT)
    grey = rgb[int(outside.y()), int(outside.x())]
    assert np.ptp(grey) == 0 and abs(int(grey[0]) - 127) <= 1          # 400 HU in the bone window
    rows, cols = pixels_of(rgb, LEFT)
    rect = view.image_rect()
    assert rows.size == pytest.approx((rect.width() / 3) * (rect.height() / 3), rel=0.1)  # 8 of 24 px
    view.set_label_opacity(0.5)
    blended = grab_rgb(view)[int(inside.y()), int(inside.x())].astype(float)
    np.testing.assert_allclose(blended, 0.5 * np.array(label_color(LEFT)) + 0.5 * 127, atol=3)
    view.set_labels_visible(False)
    assert pixels_of(grab_rgb(view), LEFT)[0].size == 0


def test_window_presets_change_the_grey(qtbot, label_grid):
    scan, array = label_grid()
    view = _show(qtbot, "coronal", scan, with_labels(scan, array))
    middle = view.rect().center()
    view.set_window_preset("soft tissue")
    assert view.window == WINDOW_PRESETS["soft tissue"] == (400.0, 40.0)
    assert tuple(grab_rgb(view)[middle.y(), middle.x()]) == (255, 255, 255)   # 400 HU > L+W/2
    view.set_window(1000, 900)
    assert tuple(grab_rgb(view)[middle.y(), middle.x()]) == (0, 0, 0)         # 400 HU = L-W/2


def test_physical_aspect_ratio_with_anisotropic_voxels(qtbot, label_grid):
    scan, array = label_grid(shape=(40, 40, 10), spacing=(0.5, 0.5, 3.0))
    view = _show(qtbot, "sagittal", scan, with_labels(scan, array), size=(400, 400))
    rect = view.image_rect()
    assert rect.width() / rect.height() == pytest.approx(20.0 / 30.0, rel=0.01)   # 20 mm P x 30 mm S
    assert max(rect.width(), rect.height()) == pytest.approx(400, abs=1)


def test_crosshair_signal_click_and_scroll(qtbot, label_grid):
    scan, array = label_grid(spacing=(1.0, 1.0, 2.0))
    view = _show(qtbot, "axial", scan, with_labels(scan, array))
    with qtbot.waitSignal(view.crosshair_changed) as blocker:
        view.set_crosshair((3.0, 4.0, 10.0))
    assert blocker.args == [3.0, 4.0, 10.0] and view.slice_index == 5
    target = view.lps_to_widget((15.0, 2.0, 10.0))
    with qtbot.waitSignal(view.crosshair_changed) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    np.testing.assert_allclose(blocker.args, (15.0, 2.0, 10.0), atol=0.7)
    with qtbot.waitSignal(view.slice_changed) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Up)
    assert blocker.args == [6]
    np.testing.assert_allclose(view.crosshair(), (15.0, 2.0, 12.0), atol=0.7)   # one 2 mm slice up
    edited = array.copy()
    edited[10:14, 10:14, 6] = LEFT
    view.set_labels(with_labels(scan, edited))          # an edit on the same grid keeps the place
    assert view.slice_index == 6
    np.testing.assert_allclose(view.crosshair(), (15.0, 2.0, 12.0), atol=0.7)
    view.set_slice(1000)
    assert view.slice_index == view.slice_count() - 1 == 23


def test_vertebra_names_on_sagittal(qtbot, label_grid):
    scan, array = label_grid()
    array[6:18, 6:18, 4:12] = LEFT
    view = _show(qtbot, "sagittal", scan, with_labels(scan, array), at=scan.index_to_lps((12, 12, 8)))
    view.set_label_opacity(0.3)
    view.set_names_visible(True)
    white = np.all(grab_rgb(view) == 255, axis=-1)
    rows, cols = np.nonzero(white)
    where = view.lps_to_widget(scan.index_to_lps((12, 12, 8)))
    assert rows.size > 20
    assert abs(rows.mean() - where.y()) < 15 and abs(cols.mean() - where.x()) < 15
    view.set_names_visible(False)
    assert not np.all(grab_rgb(view) == 255, axis=-1).any()


def test_labels_must_share_the_scan_grid(qtbot, label_grid):
    scan, array = label_grid()
    other, other_array = label_grid(origin=(5.0, 0.0, 0.0))
    view = SliceView("axial")
    qtbot.addWidget(view)
    view.set_volume(scan)
    with pytest.raises(GridMismatch):
        view.set_labels(with_labels(other, other_array))
    with pytest.raises(ValueError):
        SliceView("oblique")


@pytest.mark.parametrize("grid", list(DIRECTIONS))
def test_geometry_round_trips(grid, label_grid):
    scan, _ = _marker_scan(label_grid, DIRECTIONS[grid])
    geometry = SliceGeometry(scan.affine, scan.shape)
    point = scan.index_to_lps((5, 7, 11))
    for plane in ("axial", "sagittal", "coronal"):
        row, col = geometry.pixel_of(plane, point)
        back = geometry.pixel_to_lps(plane, geometry.slice_of(plane, point), row, col)
        np.testing.assert_allclose(back, point, atol=1e-9)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_painting_does_not_drop_references_to_none(qtbot, label_grid):
    """PySide6 6.12.0 on Python 3.11 drops one reference to None on every call of a method that
    returns void (QPainter.drawImage, QWidget.update, ...). A slice view repaint makes ~11 such
    calls, so the app aborts ("Fatal Python error: none_dealloc") after about a thousand
    repaints. PySide6 6.11.3 is fine: pin PySide6-Essentials below 6.12 or use Python 3.12+."""
    scan, array = label_grid()
    view = _show(qtbot, "axial", scan, with_labels(scan, array))
    view.repaint()
    before = sys.getrefcount(None)
    for index in range(50):
        view.set_slice(index % 24)
        view.repaint()
    lost = before - sys.getrefcount(None)
    assert lost < 50, (f"PySide6 {PySide6.__version__} lost {lost} references to None in 50 repaints; "
                       "the GUI would crash. Use PySide6-Essentials<6.12 (or Python >= 3.12).")
