"""Menus and the toolbar of the main window (actions call the window's public methods)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QMainWindow, QMenu, QSlider, QToolBar
from PySide6.QtCore import Qt

from viewers.slice_view import WINDOW_PRESETS


@dataclass
class WindowActions:
    undo: QAction
    redo: QAction
    edits: list[QAction]           # enabled only with labels
    needs_scan: list[QAction]
    needs_meshes: list[QAction]
    recent_menu: QMenu
    presets: dict[str, QAction]
    opacity_slider: QSlider
    analyze: QAction
    paint: QAction
    erase: QAction
    radius: QDoubleSpinBox
    save_plan: QAction


def _action(window, menu, text, slot, shortcut=None, tip="") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


def _menu(parent, title: str, window) -> QMenu:
    # Built in Python and added, not taken from addMenu(title): the wrapper addMenu returns is looked up
    # by address and, under a test suite's churn, was once a stale wrapper of another type (QSurface)
    menu = QMenu(title, window)
    parent.addMenu(menu)
    return menu


def build_actions(window: QMainWindow) -> WindowActions:
    bar = window.menuBar()
    file_menu = _menu(bar, "&File", window)
    open_file = _action(window, file_menu, "&Open scan file...", window.choose_scan_file, QKeySequence.StandardKey.Open,
                        "Open a NIfTI, NRRD, MHA, DICOM file or zip")
    open_dir = _action(window, file_menu, "Open &DICOM folder...", window.choose_scan_folder, "Ctrl+Shift+O")
    recent = _menu(file_menu, "Open &recent", window)
    open_plan = _action(window, file_menu, "Open &plan...", window.choose_open_plan, "Ctrl+Shift+P",
                        "Open a saved plan with the scan it was made on")
    _action(window, file_menu, "Open &batch...", window.choose_batch_folder,
            tip="Review the cases of a batch output folder, one after the other")
    file_menu.addSeparator()
    save_plan = _action(window, file_menu, "&Save plan...", window.choose_save_plan, QKeySequence.StandardKey.Save,
                        "Labels, edit history and scan reference in one .spineplan file")
    open_labels = _action(window, file_menu, "Open &labels...", window.choose_labels_file, "Ctrl+L")
    _action(window, file_menu, "Save labels (&NIfTI)...", window.choose_labels_target, "Ctrl+Alt+S")
    export = _action(window, file_menu, "&Export meshes...", window.choose_export, "Ctrl+E")
    shot = _action(window, file_menu, "Save screens&hot...", window.choose_screenshot, "Ctrl+Shift+S")
    shot3d = _action(window, file_menu, "Save 3D &view picture...", window.choose_screenshot_3d)
    file_menu.addSeparator()
    _action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    edit_menu = _menu(bar, "&Edit", window)
    undo = _action(window, edit_menu, "&Undo", window.undo, "Ctrl+Z")
    redo = _action(window, edit_menu, "&Redo", window.redo, "Ctrl+Shift+Z")
    undo.setIconText("Undo")
    redo.setIconText("Redo")
    edit_menu.addSeparator()
    edits = [
        _action(window, edit_menu, "Re&name vertebra...", window.choose_rename, "F2"),
        _action(window, edit_menu, "Shift all levels &up", lambda: window.shift_levels(-1), "Ctrl+Up",
                "Every label becomes the level above (L1 -> T12)"),
        _action(window, edit_menu, "Shift all levels &down", lambda: window.shift_levels(+1), "Ctrl+Down",
                "Every label becomes the level below (T12 -> L1)"),
        _action(window, edit_menu, "&Merge vertebra into...", window.choose_merge, "Ctrl+M"),
        _action(window, edit_menu, "&Delete vertebra", window.delete_selected, QKeySequence.StandardKey.Delete),
        _action(window, edit_menu, "S&plit vertebra (plane)", window.split_selected, "Ctrl+T",
                "Split at the plane through its centroid across the spine; the lower part gets the next level"),
        _action(window, edit_menu, "Split vertebra (&pieces)", lambda: window.split_selected("components"),
                "Ctrl+Shift+T", "Split into its connected pieces; the lower pieces get the next level"),
    ]
    paint = _action(window, edit_menu, "&Paint brush", lambda: _toggle(window, "paint"), "B",
                    "Drag on a slice to add voxels to the selected vertebra")
    erase = _action(window, edit_menu, "&Eraser", lambda: _toggle(window, "erase"), "Shift+B",
                    "Drag on a slice to remove voxels of the selected vertebra")
    for action in (paint, erase):
        action.setCheckable(True)
    edits += [paint, erase]
    edit_menu.addSeparator()
    _action(window, edit_menu, "Pre&ferences...", window.choose_preferences)
    analysis_menu = _menu(bar, "&Analysis", window)
    analyze = _action(window, analysis_menu, "&Analyze", window.analyze, "Ctrl+R",
                      "Find, segment and number every vertebra")
    presets, opacity = _build_view_menu(window, _menu(bar, "&View", window))
    radius = _radius_box(window)
    _build_toolbar(window, [open_file, open_dir, open_plan, save_plan, open_labels, export, analyze],
                   [undo, redo, paint, erase], radius, opacity)
    return WindowActions(undo, redo, edits, [open_labels, shot, shot3d], [export], recent, presets, opacity,
                         analyze, paint, erase, radius, save_plan)


def _toggle(window, mode: str) -> None:
    window.set_brush_mode("" if window.brush_mode == mode else mode)


def _radius_box(window) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.5, 30.0)
    box.setSingleStep(0.5)
    box.setSuffix(" mm")
    box.setToolTip("Brush radius")
    box.setValue(window.brush_radius_mm())
    box.valueChanged.connect(window.set_brush_radius)
    return box


def _build_view_menu(window, menu: QMenu):
    group = QActionGroup(window)
    presets = {}
    for name in WINDOW_PRESETS:
        action = _action(window, menu, f"Window: {name}", lambda n=name: window.set_window_preset(n))
        action.setCheckable(True)
        group.addAction(action)
        presets[name] = action
    menu.addSeparator()
    for text, view, key in (("3D: anterior (AP)", "anterior", "Ctrl+1"), ("3D: lateral", "lateral", "Ctrl+2"),
                            ("3D: axial", "axial", "Ctrl+3")):
        _action(window, menu, text, lambda v=view: window.views.mesh_view.set_standard_view(v), key)
    _action(window, menu, "Reset views", window.views.reset_views, "Ctrl+0")
    opacity = QSlider(Qt.Orientation.Horizontal)
    opacity.setRange(0, 100)
    opacity.setFixedWidth(110)
    opacity.setToolTip("Label opacity on the slices")
    opacity.valueChanged.connect(lambda v: window.set_label_opacity(v / 100.0))
    menu.addSeparator()
    _action(window, menu, "Label opacity +", lambda: opacity.setValue(opacity.value() + 10), "Ctrl+]")
    _action(window, menu, "Label opacity -", lambda: opacity.setValue(opacity.value() - 10), "Ctrl+[")
    menu.addSeparator()
    menu.addAction(window.results_dock.toggleViewAction())
    return presets, opacity


def _build_toolbar(window, file_actions, edit_actions, radius, opacity) -> None:
    toolbar = QToolBar("Main")
    toolbar.setObjectName("MainToolbar")
    toolbar.setMovable(False)
    window.addToolBar(toolbar)
    for action in file_actions:
        toolbar.addAction(action)
    toolbar.addSeparator()
    for action in edit_actions:
        toolbar.addAction(action)
    toolbar.addWidget(radius)
    toolbar.addSeparator()
    toolbar.addWidget(QLabel(" Window "))
    combo = QComboBox()
    combo.addItems(list(WINDOW_PRESETS))
    combo.setObjectName("WindowPresetCombo")
    combo.currentTextChanged.connect(window.set_window_preset)
    window.preset_combo = combo
    toolbar.addWidget(combo)
    toolbar.addWidget(QLabel("  Label opacity "))
    toolbar.addWidget(opacity)
