"""Workstation v1: plans and autosave, split and brush with undo, views, preferences, series picker."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from spine_core.plan import load_plan
from tests.ui.study import L1, T11, T12, open_and_wait, synthetic_study

L2 = 21


def _idle(qtbot, window):
    qtbot.waitUntil(lambda: not window.tasks.is_busy() and not window.session.stale_mesh_ids, timeout=20000)


def test_plan_save_open_round_trip_and_autosave_recovery(qtbot, window, tmp_path, settings):
    from ui.main_window import MainWindow

    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    window.edits.split_vertebra(L1)
    _idle(qtbot, window)
    edited = window.session.labels.array.copy()
    window.plans.save_plan(tmp_path / "case")
    _idle(qtbot, window)
    plan = load_plan(tmp_path / "case.spineplan")
    assert np.array_equal(plan.labels.array, edited) and plan.info.edits == ("Split L1 (L2 below)",)
    assert plan.info.scan_source == str(scan)
    window.edits.delete_vertebra(T11)
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        window.open_plan(tmp_path / "case.spineplan")
    assert np.array_equal(window.session.labels.array, edited)
    assert [r.name for r in window.analysis.rows] == ["T11", "T12", "L1", "L2"]
    # autosave after a change, then a "crash" (no clean close): the next window offers it
    window.edits.delete_vertebra(L2)
    assert window.plans.autosave_timer.isActive()
    window.plans.autosave_now()
    _idle(qtbot, window)
    assert window.plans.recovery_candidate() is not None
    other = MainWindow(settings=settings, show_dialogs=False, autosave_dir=window.plans.autosave_dir)
    qtbot.addWidget(other)
    with qtbot.waitSignal(other.study_ready, timeout=20000):
        assert other.offer_recovery()
    assert other.session.labels.ids() == [T11, T12, L1]
    other.close()
    assert other.plans.recovery_candidate() is None               # closed cleanly


def test_split_brush_undo_redo_restore_the_exact_array(qtbot, window, tmp_path):
    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    states = [window.session.labels.array.copy()]
    window.session.select(L1)
    window.edits.split_selected()
    assert [r.name for r in window.analysis.rows] == ["T11", "T12", "L1", "L2"]
    states.append(window.session.labels.array.copy())
    centre = window.analysis.rows[0].centroid                 # paint T12 over T11, one stroke
    window.session.select(T12)
    window.edits.paint_stroke([centre, centre + (3, 0, 0)], plane="axial")
    assert window.session.history.next_undo().description == "Paint T12"
    states.append(window.session.labels.array.copy())
    changed = states[2] != states[1]
    assert changed.any() and np.all(states[2][changed] == T12)
    assert len(np.unique(np.argwhere(changed)[:, 2])) == 1     # one axial slice
    window.edits.paint_stroke([centre], plane="axial", erase=True)
    assert window.session.labels.array[tuple(np.round(window.session.labels.lps_to_index(centre)).astype(int))] == 0
    _idle(qtbot, window)
    window.edits.undo()
    assert np.array_equal(window.session.labels.array, states[2])
    window.edits.undo()
    assert np.array_equal(window.session.labels.array, states[1])
    window.edits.undo()
    assert np.array_equal(window.session.labels.array, states[0])
    window.edits.redo()
    window.edits.redo()
    assert np.array_equal(window.session.labels.array, states[2])
    _idle(qtbot, window)
    assert sorted(window.session.meshes) == [T11, T12, L1, L2]


def test_brush_on_the_slice_view_with_the_mouse(qtbot, window, tmp_path):
    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    window.session.select(T11)
    window.actions.paint.trigger()
    assert window.edits.brush_mode == "paint" and window.actions.paint.isChecked()
    view = window.views.slices["axial"]
    window.views.set_crosshair(window.analysis.rows[0].centroid)
    rect = view.image_rect()
    start = QPoint(int(rect.left() + 3), int(rect.top() + 3))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, start + QPoint(20, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=start + QPoint(20, 0))
    edit = window.session.history.next_undo()
    assert edit is not None and edit.description == "Paint T11" and edit.indices.size > 5
    window.actions.paint.trigger()
    assert window.edits.brush_mode == ""


def test_views_zoom_pan_window_level_marker_highlight_visibility(qtbot, window, tmp_path):
    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    view = window.views.slices["axial"]
    width = view.image_rect().width()
    centre = view.rect().center()
    qtbot.wait(10)
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    event = QWheelEvent(QPointF(centre), QPointF(view.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QApplication.sendEvent(view, event)
    assert view.zoom == 1.25 and view.image_rect().width() > width * 1.2
    left = view.image_rect().left()
    qtbot.mousePress(view, Qt.MouseButton.MiddleButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(30, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.MiddleButton, pos=centre + QPoint(30, 0))
    assert view.image_rect().left() > left + 20
    before = view.window
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(40, 20))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=centre + QPoint(40, 20))
    assert view.window[0] > before[0] and view.window[1] < before[1]
    assert window.views.slices["sagittal"].window == view.window        # window/level synced
    window.views.reset_views()
    assert view.zoom == 1.0
    # the crosshair is marked in 3D
    window.views.set_crosshair(window.analysis.rows[2].centroid)
    np.testing.assert_allclose(window.views.mesh_view.marker_center(), window.views.crosshair(), atol=0.3)
    # highlight, hide, opacity
    mesh_view = window.views.mesh_view
    window.session.select(T12)
    assert mesh_view.highlighted == T12
    window.results.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
    assert not mesh_view.is_mesh_visible(T11) and mesh_view.is_mesh_visible(T12)
    window.views.mesh_opacity.setValue(40)
    assert abs(mesh_view._actors[T12].prop.opacity - 0.4) < 1e-6
    assert float(window.settings.value("view/mesh_opacity")) == 0.4
    image = mesh_view.screenshot()
    assert image.reshape(-1, 3).std(axis=0).max() > 5
    path = window.display.save_3d_screenshot(tmp_path / "3d.png")
    assert path.stat().st_size > 2000


def test_preferences_and_recent_files_persist(qtbot, window, tmp_path, settings):
    from ui.dialogs import PreferencesDialog
    from ui.main_window import MainWindow

    scan, labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, scan, labels)
    window.prefs.device = "gpu"
    window.prefs.method = "joint"
    window.display.set_window_preset("soft tissue")
    window.actions.opacity_slider.setValue(70)
    window.close()
    again = MainWindow(settings=settings, show_dialogs=False)
    qtbot.addWidget(again)
    assert again.prefs.device == "gpu" and again.actions.preset_combo.currentText() == "soft tissue"
    assert again.prefs.method == "joint"
    assert again.actions.opacity_slider.value() == 70
    recent = again.actions.recent_menu.actions()
    assert recent and recent[0].text() == str(scan.resolve())
    with qtbot.waitSignal(again.study_ready, timeout=20000):
        recent[0].trigger()
    assert again.session.volume is not None
    dialog = PreferencesDialog("cpu", 30, method="m3")          # the first release's name still works
    qtbot.addWidget(dialog)
    assert dialog.device() == "cpu" and dialog.autosave_s() == 30 and dialog.method() == "joint"
    settings.setValue("analysis/method", "m3")                   # written by the first release
    assert again.prefs.method == "joint"
    with pytest.raises(ValueError):
        again.prefs.method = "nope"
    again.close()


def test_a_folder_with_two_series_asks_which_to_open(qtbot, window, tmp_path):
    from spine_core.io.dicom_writer import DicomOptions, write_dicom_series
    from spine_core.volume import Volume, affine_from_geometry

    affine = affine_from_geometry((1.0, 1.0, 2.0), None, (0.0, 0.0, 0.0))
    small = Volume(np.full((16, 16, 6), 100, np.int16), affine)
    large = Volume(np.full((20, 20, 9), 300, np.int16), affine)
    write_dicom_series(small, tmp_path / "study/a", DicomOptions(series_uid="1.2.826.0.1.1", series_description="small"))
    write_dicom_series(large, tmp_path / "study/b", DicomOptions(series_uid="1.2.826.0.1.2", series_description="large"))
    window.open_path(tmp_path / "study")
    qtbot.waitUntil(lambda: window.files.series_dialog is not None, timeout=20000)
    dialog = window.files.series_dialog
    assert dialog.table.rowCount() == 2
    row = [dialog.series[r].description for r in range(2)].index("small")
    dialog.table.selectRow(row)
    with qtbot.waitSignal(window.study_ready, timeout=20000):
        dialog.accept()
    assert window.session.volume.shape == (16, 16, 6)
    assert window.session.volume.metadata.series_uid == "1.2.826.0.1.1"
