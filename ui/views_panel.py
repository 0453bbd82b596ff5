"""The four linked views: axial, sagittal and coronal slices plus the 3D meshes, in splitters.

Layout: four columns in one splitter (a spine is tall, so every view gets the full height)::

    | axial | sagittal | coronal | 3D |
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slices = {plane: SliceView(plane) for plane in PLANES}
        self.mesh_view = MeshView()
        self.mesh_view.setMinimumWidth(120)
        for view in self.slices.values():
            view.crosshair_changed.connect(self._on_crosshair_changed)
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
        return buttons

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
        """Show every mesh opaque. (Dimming the others made translucent vertebrae muddy; the
        selection shows in the table and the slices instead.)"""
        if self.mesh_view.plotter is not None:
            self.mesh_view.set_opacity(1.0)

    # --- display ------------------------------------------------------------------------------
    def set_window_preset(self, name: str) -> None:
        for view in self.slices.values():
            view.set_window_preset(name)

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
