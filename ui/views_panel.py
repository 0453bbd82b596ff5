"""The four linked views: axial, sagittal and coronal slices plus the 3D meshes, in splitters.

Layout: four columns in one splitter (a spine is tall, so every view gets the full height)::

    | axial | sagittal | coronal | 3D |
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QSplitter, QVBoxLayout, QWidget

from spine_core.meshes import VertebraMesh
from spine_core.volume import LabelMap, Volume
from viewers.mesh_view import MeshView
from viewers.slice_view import SliceView

PLANES = ("axial", "sagittal", "coronal")


def _titled(title: str, view: QWidget, extra: list[QWidget] = ()) -> QWidget:
    frame = QWidget()
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    bar = QHBoxLayout()
    bar.setContentsMargins(0, 0, 0, 0)
    bar.setSpacing(0)
    label = QLabel(title)
    label.setObjectName("ViewTitle")
    bar.addWidget(label, 1)
    for widget in extra:
        bar.addWidget(widget)
    layout.addLayout(bar)
    layout.addWidget(view, 1)
    return frame


class ViewsPanel(QWidget):
    """Owns the SliceViews and the MeshView; keeps their crosshairs in step."""

    crosshair_changed = Signal(float, float, float)
    vertebra_picked = Signal(int)
    stroke_started = Signal(str, float, float, float)     # plane, LPS mm
    stroke_moved = Signal(str, float, float, float)
    stroke_finished = Signal(str)
    point_picked = Signal(str, float, float, float)       # pick mode: plane, LPS mm
    handle_pressed = Signal(str)                          # an overlay handle grabbed on a slice
    handle_moved = Signal(str, float, float, float)       # ... dragged to LPS mm
    handle_released = Signal(str, float, float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slices = {plane: SliceView(plane) for plane in PLANES}
        self.mesh_view = MeshView()
        self.mesh_view.setMinimumWidth(120)
        for plane, view in self.slices.items():
            view.crosshair_changed.connect(self._on_crosshair_changed)
            view.window_changed.connect(self._on_window_changed)
            view.stroke_started.connect(lambda x, y, z, p=plane: self.stroke_started.emit(p, x, y, z))
            view.stroke_moved.connect(lambda x, y, z, p=plane: self.stroke_moved.emit(p, x, y, z))
            view.stroke_finished.connect(lambda p=plane: self.stroke_finished.emit(p))
            view.point_picked.connect(lambda x, y, z, p=plane: self.point_picked.emit(p, x, y, z))
            view.handle_pressed.connect(self.handle_pressed)
            view.handle_moved.connect(self.handle_moved)
            view.handle_released.connect(self.handle_released)
        self.mesh_view.vertebra_picked.connect(self.vertebra_picked)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(_titled("Axial", self.slices["axial"]))
        self.splitter.addWidget(_titled("Sagittal", self.slices["sagittal"]))
        self.splitter.addWidget(_titled("Coronal", self.slices["coronal"]))
        self.splitter.addWidget(_titled("3D", self.mesh_view, self._camera_buttons()))
        self.splitter.setSizes([420, 300, 300, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._syncing = False

    def _camera_buttons(self) -> list[QWidget]:
        buttons = []
        for text, view in (("AP", "anterior"), ("Lat", "lateral"), ("Ax", "axial")):
            button = QPushButton(text)
            button.setFlat(True)
            button.setFixedSize(36, 20)
            button.setToolTip(f"3D view: {view}")
            button.clicked.connect(lambda _=False, v=view: self.mesh_view.set_standard_view(v))
            buttons.append(button)
        reset = QPushButton("Reset")
        reset.setFlat(True)
        reset.setFixedSize(44, 20)
        reset.setToolTip("Reset every view: whole slices, AP 3D view")
        reset.clicked.connect(self.reset_views)
        self.mesh_opacity = QSlider(Qt.Orientation.Horizontal)
        self.mesh_opacity.setRange(10, 100)
        self.mesh_opacity.setValue(100)
        self.mesh_opacity.setFixedWidth(70)
        self.mesh_opacity.setToolTip("3D opacity")
        self.mesh_opacity.valueChanged.connect(lambda v: self.mesh_view.set_opacity(v / 100.0))
        return buttons + [reset, self.mesh_opacity]

    def reset_views(self) -> None:
        for view in self.slices.values():
            view.reset_view()
        self.mesh_view.set_standard_view("anterior")

    def set_brush(self, radius_mm: float | None) -> None:
        for view in self.slices.values():
            view.set_brush(radius_mm)

    def set_pick_mode(self, on: bool) -> None:
        """A click on a slice reports its point (``point_picked``) instead of moving the crosshair."""
        for view in self.slices.values():
            view.set_pick_mode(on)

    def set_overlay(self, key: str, items) -> None:
        """Draw viewers.overlay items on every view that shows them (each item names its views)."""
        for view in self.slices.values():
            view.set_overlay(key, items)
        if self.mesh_view.plotter is not None:
            self.mesh_view.set_overlay(key, items)

    def _on_window_changed(self, width: float, level: float) -> None:
        for view in self.slices.values():
            if view.window != (width, level):
                view.set_window(width, level)

    # --- data ---------------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        for view in self.slices.values():
            view.set_volume(volume)
        if volume is not None:
            self.set_crosshair(self.slices["axial"].crosshair())

    def set_labels(self, labels: LabelMap | None) -> None:
        for view in self.slices.values():
            view.set_labels(labels)

    def set_meshes(self, meshes: dict[int, VertebraMesh], reset_camera: bool = False) -> None:
        self.mesh_view.set_meshes(meshes, reset_camera=reset_camera)

    def highlight(self, label_id: int) -> None:
        """Lighten the selected vertebra in 3D. (Dimming the others made translucent vertebrae
        muddy.)"""
        if self.mesh_view.plotter is not None:
            self.mesh_view.set_highlight(label_id)

    # --- display ------------------------------------------------------------------------------
    def set_window_preset(self, name: str) -> None:
        for view in self.slices.values():
            view.set_window_preset(name)

    def set_window(self, width: float, level: float) -> None:
        for view in self.slices.values():
            view.set_window(width, level)

    def set_label_opacity(self, opacity: float) -> None:
        for view in self.slices.values():
            view.set_label_opacity(opacity)

    # --- crosshair ----------------------------------------------------------------------------
    def set_crosshair(self, lps) -> None:
        self._syncing = True
        try:
            for view in self.slices.values():
                view.set_crosshair(lps)
        finally:
            self._syncing = False
        if self.mesh_view.plotter is not None:
            self.mesh_view.set_marker(self.crosshair())
        self.crosshair_changed.emit(*(float(v) for v in np.asarray(lps)))

    def crosshair(self) -> np.ndarray:
        return self.slices["axial"].crosshair()

    def _on_crosshair_changed(self, x: float, y: float, z: float) -> None:
        if not self._syncing:
            self.set_crosshair((x, y, z))

    # --- pictures -----------------------------------------------------------------------------
    def paint_3d_into(self, pixmap: QPixmap, origin: QWidget) -> None:
        """Draw the 3D render onto a grab of ``origin`` (OpenGL does not show in QWidget.grab)."""
        plotter = self.mesh_view.plotter
        if plotter is None or not self.mesh_view.isVisible():
            return
        image = np.ascontiguousarray(self.mesh_view.screenshot()[..., :3])
        h, w = image.shape[:2]
        qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        interactor = plotter.interactor
        top_left = interactor.mapTo(origin, QPoint(0, 0))
        painter = QPainter(pixmap)
        painter.drawImage(QRect(top_left, interactor.size()), qimage)
        painter.end()

    def close_views(self) -> None:
        """Free the render window (pyvistaqt needs an explicit close)."""
        if self.mesh_view.plotter is not None:
            self.mesh_view.close()
