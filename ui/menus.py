"""Menus and the toolbar of the main window: actions call its controllers (window.files, .plans, .edits,
.analysis, .display, .adapt); ``WindowActions`` shows their state (enabled, checked, the recent files)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QMainWindow, QMenu, QSlider, QToolBar
from PySide6.QtCore import Qt

from spine_core.windowing import MR_WINDOW_PERCENTILES
from viewers.slice_view import WINDOW_PRESETS


@dataclass
class WindowActions:
    undo: QAction
    redo: QAction
    edits: list[QAction]           # enabled only with labels
    needs_scan: list[QAction]
    needs_meshes: list[QAction]
    recent_menu: QMenu
    presets: dict[str, QAction]    # CT and MR presets; those of the other modality greyed out
    opacity_slider: QSlider
    analyze: QAction
    paint: QAction
    erase: QAction
    radius: QDoubleSpinBox
    save_plan: QAction
    preset_combo: QComboBox

    def update(self, session, can_analyse: bool, why_not: str) -> None:
        """Enable what the Session allows; undo and redo say what they undo."""
        has_labels = session.labels is not None and bool(session.labels.ids())
        self.undo.setEnabled(session.history.can_undo())
        self.redo.setEnabled(session.history.can_redo())
        undo, redo = session.history.next_undo(), session.history.next_redo()
        self.undo.setText(f"&Undo {undo.description}" if undo else "&Undo")
        self.redo.setText(f"&Redo {redo.description}" if redo else "&Redo")
        self.undo.setToolTip(self.undo.text().replace("&", "") + " (Ctrl+Z)")
        self.redo.setToolTip(self.redo.text().replace("&", "") + " (Ctrl+Shift+Z)")
        for action in self.edits:
            action.setEnabled(has_labels)
        for action in self.needs_scan:
            action.setEnabled(session.volume is not None)
        for action in self.needs_meshes:
            action.setEnabled(bool(session.meshes))
        self.save_plan.setEnabled(session.labels is not None)
        self.analyze.setEnabled(session.volume is not None and can_analyse)
        self.analyze.setToolTip("Find, segment and number every vertebra (Ctrl+R)" if can_analyse
                                else f"Analysis is unavailable: {why_not}")

    def show_brush_mode(self, mode: str) -> None:
        self.paint.setChecked(mode == "paint")
        self.erase.setChecked(mode == "erase")

    def offer_window_presets(self, names: list[str]) -> None:
        """The open scan's presets (ui.display): listed in the combo, enabled in the View menu."""
        for name, action in self.presets.items():
            usable = name in names
            action.setEnabled(usable)
            action.setToolTip("" if usable else "MR only" if name in MR_WINDOW_PERCENTILES else "CT only")
        combo = self.preset_combo
        combo.blockSignals(True)        # refilling is no choice of the user's
        try:
            combo.clear()
            combo.addItems(list(names))
        finally:
            combo.blockSignals(False)

    def show_window_preset(self, name: str) -> None:
        self.presets[name].setChecked(True)
        if self.preset_combo.currentText() != name:
            self.preset_combo.setCurrentText(name)

    def fill_recent(self, paths: list[str], open_path) -> None:
        menu = self.recent_menu
        menu.clear()
        for path in paths:
            menu.addAction(path).triggered.connect(lambda _c=False, p=path: open_path(p))
        menu.setEnabled(bool(paths))


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
    # by address and, under a test suite's churn, was once a stale wrapper of another type (pyvistaqt's
    # QSurface, now forgotten at its root when a mesh view closes: viewers/mesh_view.py); kept as a guard
    menu = QMenu(title, window)
    parent.addMenu(menu)
    return menu


def build_actions(window: QMainWindow) -> WindowActions:
    files, plans, edits, display = window.files, window.plans, window.edits, window.display
    bar = window.menuBar()
    file_menu = _menu(bar, "&File", window)
    open_file = _action(window, file_menu, "&Open scan file...", files.choose_scan_file, QKeySequence.StandardKey.Open,
                        "Open a NIfTI, NRRD, MHA, DICOM file or zip")
    open_dir = _action(window, file_menu, "Open &DICOM folder...", files.choose_scan_folder, "Ctrl+Shift+O")
    recent = _menu(file_menu, "Open &recent", window)
    open_plan = _action(window, file_menu, "Open &plan...", plans.choose_open_plan, "Ctrl+Shift+P",
                        "Open a saved plan with the scan it was made on")
    _action(window, file_menu, "Open &batch...", files.choose_batch_folder,
            tip="Review the cases of a batch output folder, one after the other")
    file_menu.addSeparator()
    save_plan = _action(window, file_menu, "&Save plan...", plans.choose_save_plan, QKeySequence.StandardKey.Save,
                        "Labels, edit history and scan reference in one .spineplan file")
    open_labels = _action(window, file_menu, "Open &labels...", files.choose_labels_file, "Ctrl+L")
    _action(window, file_menu, "Save labels (&NIfTI)...", files.choose_labels_target, "Ctrl+Alt+S")
    export = _action(window, file_menu, "&Export meshes...", files.choose_export, "Ctrl+E")
    export_plan = _action(window, file_menu, "Export pla&n...", window.exports.choose_export, "Ctrl+Shift+E",
                          "DICOM-SEG, RTSTRUCT, Slicer markups, meshes with the screws, planning report")
    shot = _action(window, file_menu, "Save screens&hot...", display.choose_screenshot, "Ctrl+Shift+S")
    shot3d = _action(window, file_menu, "Save 3D &view picture...", display.choose_screenshot_3d)
    file_menu.addSeparator()
    _action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    edit_menu = _menu(bar, "&Edit", window)
    undo = _action(window, edit_menu, "&Undo", edits.undo, "Ctrl+Z")
    redo = _action(window, edit_menu, "&Redo", edits.redo, "Ctrl+Shift+Z")
    undo.setIconText("Undo")
    redo.setIconText("Redo")
    edit_menu.addSeparator()
    edit_actions = [
        _action(window, edit_menu, "Re&name vertebra...", edits.choose_rename, "F2"),
        _action(window, edit_menu, "Shift all levels &up", lambda: edits.shift_levels(-1), "Ctrl+Up",
                "Every label becomes the level above (L1 -> T12)"),
        _action(window, edit_menu, "Shift all levels &down", lambda: edits.shift_levels(+1), "Ctrl+Down",
                "Every label becomes the level below (T12 -> L1)"),
        _action(window, edit_menu, "&Merge vertebra into...", edits.choose_merge, "Ctrl+M"),
        _action(window, edit_menu, "&Delete vertebra",
                lambda: window.planning.delete_selected() or edits.delete_selected(), QKeySequence.StandardKey.Delete,
                "Delete the selected vertebra (or, while a screw is selected, that screw)"),
        _action(window, edit_menu, "S&plit vertebra (plane)", edits.split_selected, "Ctrl+T",
                "Split at the plane through its centroid across the spine; the lower part gets the next level"),
        _action(window, edit_menu, "Split vertebra (&pieces)", lambda: edits.split_selected("components"),
                "Ctrl+Shift+T", "Split into its connected pieces; the lower pieces get the next level"),
    ]
    paint = _action(window, edit_menu, "&Paint brush", lambda: edits.toggle_brush("paint"), "B",
                    "Drag on a slice to add voxels to the selected vertebra")
    erase = _action(window, edit_menu, "&Eraser", lambda: edits.toggle_brush("erase"), "Shift+B",
                    "Drag on a slice to remove voxels of the selected vertebra")
    for action in (paint, erase):
        action.setCheckable(True)
    edit_actions += [paint, erase]
    edit_menu.addSeparator()
    _action(window, edit_menu, "Pre&ferences...", files.choose_preferences)
    analysis_menu = _menu(bar, "&Analysis", window)
    analyze = _action(window, analysis_menu, "&Analyze", window.analysis.analyze, "Ctrl+R",
                      "Find, segment and number every vertebra")
    presets, opacity = _build_view_menu(window, _menu(bar, "&View", window))
    radius = _radius_box(window)
    combo = _build_toolbar(window, [open_file, open_dir, open_plan, save_plan, open_labels, export, analyze],
                           [undo, redo, paint, erase], radius, opacity)
    actions = WindowActions(undo, redo, edit_actions + [export_plan], [open_labels, shot, shot3d], [export], recent,
                            presets, opacity, analyze, paint, erase, radius, save_plan, combo)
    actions.offer_window_presets(display.preset_names())
    return actions


def build_tools_menu(window: QMainWindow) -> QMenu:
    """Tools: adapt the CT models to the site's scans (ui/adapt_actions.py), the models in use."""
    menu = _menu(window.menuBar(), "&Tools", window)
    _action(window, menu, "&Adapt to local scans...", window.adapt.open_dialog,
            tip="Train the CT models further on this hospital's scans, checked before they can be used")
    _action(window, menu, "&Models...", lambda: window.files.choose_preferences("models"),
            tip="The shipped and site models, and which one runs by default (Preferences > Models)")
    return menu


def _radius_box(window) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.5, 30.0)
    box.setSingleStep(0.5)
    box.setSuffix(" mm")
    box.setToolTip("Brush radius")
    box.setValue(window.prefs.brush_radius_mm)
    box.valueChanged.connect(window.edits.set_brush_radius)
    return box


def _build_view_menu(window, menu: QMenu):
    group = QActionGroup(window)
    presets = {}
    menu.setToolTipsVisible(True)       # "CT only" / "MR only" on the greyed-out presets
    for name in [*WINDOW_PRESETS, *MR_WINDOW_PERCENTILES]:
        action = _action(window, menu, f"Window: {name}", lambda n=name: window.display.set_window_preset(n))
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
    opacity.valueChanged.connect(lambda v: window.display.set_label_opacity(v / 100.0))
    menu.addSeparator()
    _action(window, menu, "Label opacity +", lambda: opacity.setValue(opacity.value() + 10), "Ctrl+]")
    _action(window, menu, "Label opacity -", lambda: opacity.setValue(opacity.value() - 10), "Ctrl+[")
    menu.addSeparator()
    menu.addAction(window.results_dock.toggleViewAction())
    return presets, opacity


def _build_toolbar(window, file_actions, edit_actions, radius, opacity) -> QComboBox:
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
    combo = QComboBox()                 # filled by WindowActions.offer_window_presets
    combo.setObjectName("WindowPresetCombo")
    combo.currentTextChanged.connect(window.display.set_window_preset)
    toolbar.addWidget(combo)
    toolbar.addWidget(QLabel("  Label opacity "))
    toolbar.addWidget(opacity)
    return combo
