"""The Planning menu and the Measurements and Screws docks of the main window (beside the vertebra table, as
tabs). The menu's actions call ``window.measure`` (ui/measure_actions.py) and ``window.planning``
(ui/planning_actions.py); they are enabled while labels are shown."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget


@dataclass
class PlanningActions:
    measure: QAction
    suggest: QAction
    add: QAction
    delete: QAction

    def update(self, session) -> None:
        has_labels = session.labels is not None
        for action in (self.measure, self.suggest, self.add):
            action.setEnabled(has_labels)
        self.delete.setEnabled(bool(session.screws))

    def show_adding(self, on: bool) -> None:
        self.add.setChecked(on)


def add_planning_docks(window: QMainWindow, beside: QDockWidget, panels: dict[str, QWidget]) -> dict[str, QDockWidget]:
    """One dock per panel (title: widget), tabbed with ``beside``; ``beside`` stays in front."""
    docks = {}
    for title, widget in panels.items():
        dock = QDockWidget(title, window)
        dock.setObjectName(f"{title}Dock")
        dock.setWidget(widget)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        window.tabifyDockWidget(beside, dock)
        docks[title] = dock
    beside.raise_()
    return docks


def _action(window, menu: QMenu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


def build_planning_menu(window: QMainWindow, docks: dict[str, QDockWidget]) -> PlanningActions:
    menu = QMenu("&Planning", window)
    window.menuBar().addMenu(menu)
    measure, planning = window.measure, window.planning
    measure_action = _action(window, menu, "&Measure", lambda: (docks["Measurements"].raise_(), measure.measure()),
                             "Ctrl+Shift+M", "Body heights, wedging, Genant grade, bone density, pedicles and "
                             "alignment of the labels shown")
    menu.addSeparator()
    suggest = _action(window, menu, "&Suggest screws", lambda: (docks["Screws"].raise_(), planning.suggest()),
                      tip="A pedicle screw per thoracic and lumbar pedicle that takes one, checked against the cortex")
    add = _action(window, menu, "&Add screw", planning.toggle_adding, "Shift+A",
                  "Click the entry point on a slice, then the tip")
    add.setCheckable(True)
    delete = _action(window, menu, "&Delete screw", planning.delete_selected,
                     tip="Delete the selected screw (the Delete key does too, while a screw is selected)")
    menu.addSeparator()
    for dock in docks.values():
        menu.addAction(dock.toggleViewAction())
    actions = PlanningActions(measure_action, suggest, add, delete)
    planning.adding_changed.connect(actions.show_adding)
    session = window.session
    for signal in (session.volume_changed, session.labels_changed, session.screws_changed):
        signal.connect(lambda *_a: actions.update(session))
    actions.update(session)
    return actions
