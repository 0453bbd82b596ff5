"""3D view of per-vertebra surface meshes (pyvistaqt QtInteractor), in LPS millimetres.

World coordinates are LPS mm, so the standard views are fixed camera directions:
anterior (AP) looks from the front with the patient's left on screen right, lateral looks from the
patient's left with anterior on screen left, axial looks up from the feet with anterior up
(the same conventions as the slice views).

A left click that does not drag picks the vertebra under the cursor and emits its id; dragging
still rotates. Call ``close()`` (or close the parent window) to free the render window.
"""
from __future__ import annotations

import gc
import weakref
from typing import Iterable, Mapping

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from vtkmodules.vtkRenderingCore import vtkCellPicker

from spine_core.labels import label_color
from spine_core.meshes import VertebraMesh
from viewers.overlay_3d import Overlay3D

_NAMES_ACTOR = "vertebra_names"
_MARKER_ACTOR = "crosshair_marker"
_MARKER_RGB = (1.0, 0.86, 0.0)             # the slice views' crosshair colour
HIGHLIGHT_WHITE = 0.45                     # the selected vertebra is lightened this much
_BACKGROUND = (0.09, 0.10, 0.12)
# Camera direction of projection (from camera towards the focal point) and view-up, in LPS.
STANDARD_VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),    # from the front (AP)
    "posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "lateral": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),    # from the patient's left
    "axial": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),      # from the feet, anterior up
}


def _weak_callback(method):
    ref = weakref.WeakMethod(method)

    def call(*args):
        bound = ref()
        if bound is not None:
            bound(*args)
    return call


def mesh_rgb(label_id: int) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in label_color(label_id))


class MeshView(QWidget):
    """Vertebra meshes with colours and names; show/hide, opacity, standard views, picking."""

    vertebra_picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plotter = QtInteractor(self, auto_update=False)
        self.plotter.set_background(_BACKGROUND)
        layout.addWidget(self.plotter.interactor)
        self._meshes: dict[int, VertebraMesh] = {}
        self._actors: dict[int, object] = {}
        self._hidden: set[int] = set()
        self._opacity = 1.0
        self._names_visible = True
        self._press: tuple[int, int] | None = None
        self._highlighted = 0
        self._marker_radius = 2.5
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(30)
        self._render_timer.timeout.connect(self._on_render_timer_timeout)
        self._picker = vtkCellPicker()
        self._picker.SetTolerance(0.0005)
        self._overlay = Overlay3D(self.plotter)
        # VTK keeps its observers alive: give it weak callbacks so this widget can be freed.
        self.plotter.iren.add_observer("LeftButtonPressEvent", _weak_callback(self._on_left_press))
        self.plotter.iren.add_observer("LeftButtonReleaseEvent", _weak_callback(self._on_left_release))

    # --- meshes -------------------------------------------------------------------------------
    def set_meshes(self, meshes: Mapping[int, VertebraMesh], reset_camera: bool = False) -> None:
        """Show exactly these meshes; only new or changed (by identity) ones are re-uploaded."""
        for label_id in [i for i in self._meshes if i not in meshes]:
            self._remove(label_id)
        for label_id, mesh in meshes.items():
            if self._meshes.get(label_id) is not mesh:
                self._add(mesh)
        self._refresh_names()
        if reset_camera:
            self.reset_camera()
        self.plotter.render()

    def update_mesh(self, mesh: VertebraMesh) -> None:
        self._add(mesh)
        self._refresh_names()
        self.plotter.render()

    def remove_mesh(self, label_id: int) -> None:
        self._remove(int(label_id))
        self._refresh_names()
        self.plotter.render()

    def clear(self) -> None:
        self.set_meshes({})

    def mesh_ids(self) -> list[int]:
        return sorted(self._meshes)

    def _add(self, mesh: VertebraMesh) -> None:
        label_id = int(mesh.label_id)
        actor = self.plotter.add_mesh(
            mesh.to_polydata(), name=f"vertebra_{label_id}", color=mesh_rgb(label_id),
            smooth_shading=True, opacity=self._opacity, specular=0.2, reset_camera=False, render=False)
        actor.SetVisibility(label_id not in self._hidden)
        self._meshes[label_id], self._actors[label_id] = mesh, actor
        if label_id == self._highlighted:
            self._style(label_id, True)

    def _remove(self, label_id: int) -> None:
        actor = self._actors.pop(label_id, None)
        self._meshes.pop(label_id, None)
        if actor is not None:
            self.plotter.remove_actor(actor, render=False)

    # --- appearance ---------------------------------------------------------------------------
    def set_mesh_visible(self, label_id: int, visible: bool) -> None:
        label_id = int(label_id)
        (self._hidden.discard if visible else self._hidden.add)(label_id)
        if label_id in self._actors:
            self._actors[label_id].SetVisibility(bool(visible))
        self._refresh_names()
        self.plotter.render()

    def is_mesh_visible(self, label_id: int) -> bool:
        return int(label_id) in self._actors and int(label_id) not in self._hidden

    def set_opacity(self, opacity: float, ids: Iterable[int] | None = None) -> None:
        """Opacity of all meshes (and of meshes added later), or of the given ids only."""
        opacity = float(np.clip(opacity, 0.0, 1.0))
        if ids is None:
            self._opacity = opacity
        for label_id in (self._actors if ids is None else [int(i) for i in ids]):
            if label_id in self._actors:
                self._actors[label_id].prop.opacity = opacity
        self.plotter.render()

    @property
    def opacity(self) -> float:
        """The meshes' opacity (the 3D opacity slider's)."""
        return self._opacity

    def set_overlay(self, key: str, items) -> None:
        """Draw viewers.overlay items (rods, discs, lines, markers) under ``key``, replacing its earlier ones."""
        if self.plotter is None:
            return
        self._overlay.set(key, items)
        self._render_timer.start()

    def overlay_count(self, key: str) -> int:
        return self._overlay.count(key)

    def set_highlight(self, label_id: int) -> None:
        """Lighten the selected vertebra (0: none); the others keep their colours."""
        previous, self._highlighted = self._highlighted, int(label_id)
        self._style(previous, False)
        self._style(self._highlighted, True)
        self.plotter.render()

    @property
    def highlighted(self) -> int:
        return self._highlighted

    def _style(self, label_id: int, on: bool) -> None:
        actor = self._actors.get(label_id)
        if actor is None:
            return
        rgb = np.array(mesh_rgb(label_id))
        actor.prop.color = tuple(rgb + (1.0 - rgb) * HIGHLIGHT_WHITE) if on else tuple(rgb)
        actor.prop.ambient = 0.3 if on else 0.0

    def set_marker(self, lps, radius_mm: float | None = None) -> None:
        """A small sphere at the slice views' crosshair (LPS mm); rendered on the next idle moment."""
        import pyvista as pv

        self._marker_radius = float(radius_mm or self._marker_radius)
        sphere = pv.Sphere(radius=self._marker_radius, center=tuple(float(v) for v in lps),
                           theta_resolution=16, phi_resolution=16)
        self.plotter.add_mesh(sphere, name=_MARKER_ACTOR, color=_MARKER_RGB, pickable=False,
                              reset_camera=False, render=False)
        self._render_timer.start()

    def marker_center(self) -> np.ndarray | None:
        actor = self.plotter.actors.get(_MARKER_ACTOR)
        return None if actor is None else np.array(actor.GetMapper().GetInput().GetCenter())

    def _on_render_timer_timeout(self) -> None:
        if self.plotter is not None:
            self.plotter.render()

    def set_names_visible(self, visible: bool) -> None:
        self._names_visible = bool(visible)
        self._refresh_names()
        self.plotter.render()

    def _refresh_names(self) -> None:
        self.plotter.remove_actor(_NAMES_ACTOR, render=False)
        shown = [m for i, m in sorted(self._meshes.items()) if i not in self._hidden]
        if not self._names_visible or not shown:
            return
        # Beside each vertebra on the patient's right, so names do not cover bone in the AP view.
        points = np.array([[m.bounds[0, 0] - 8.0, m.centroid[1], m.centroid[2]] for m in shown])
        self.plotter.add_point_labels(
            points, [m.name for m in shown], name=_NAMES_ACTOR, font_size=14, text_color="white",
            shape_color=(0.0, 0.0, 0.0), shape_opacity=0.35, show_points=False, always_visible=True,
            pickable=False, reset_camera=False, render=False)

    # --- camera -------------------------------------------------------------------------------
    def set_standard_view(self, view: str) -> None:
        """One of STANDARD_VIEWS: 'anterior' (AP), 'posterior', 'lateral', 'axial'."""
        direction, up = STANDARD_VIEWS[view]
        camera = self.plotter.camera
        focal = np.array(camera.focal_point)
        camera.position = tuple(focal - max(camera.distance, 1.0) * np.array(direction))
        camera.up = up
        self.reset_camera()

    def view_anterior(self) -> None:
        self.set_standard_view("anterior")

    def view_lateral(self) -> None:
        self.set_standard_view("lateral")

    def reset_camera(self) -> None:
        """Fit the visible meshes tightly (VTK's own reset fits a bounding sphere, which leaves a
        tall spine small in a tall view), keeping the current view direction."""
        shown = [m for i, m in self._meshes.items() if i not in self._hidden]
        if not shown:
            self.plotter.reset_camera(render=False)
            self.plotter.render()
            return
        low = np.min([m.bounds[0] for m in shown], axis=0)
        high = np.max([m.bounds[1] for m in shown], axis=0)
        corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                            for z in (low[2], high[2])])
        camera, focal = self.plotter.camera, (low + high) / 2
        direction = np.array(camera.direction)
        up = np.array(camera.up) - np.dot(camera.up, direction) * direction
        up /= np.linalg.norm(up)
        right = np.cross(direction, up)
        offsets = corners - focal
        aspect = max(self.plotter.interactor.width(), 1) / max(self.plotter.interactor.height(), 1)
        half_height = max(np.abs(offsets @ up).max(), np.abs(offsets @ right).max() / aspect, 1.0)
        half_depth = np.abs(offsets @ direction).max()
        distance = 1.08 * half_height / np.tan(np.radians(camera.view_angle) / 2) + half_depth
        camera.focal_point = tuple(focal)
        camera.position = tuple(focal - distance * direction)
        camera.up = tuple(up)
        self.plotter.renderer.ResetCameraClippingRange()
        self.plotter.render()

    # --- picking ------------------------------------------------------------------------------
    def id_of_actor(self, actor) -> int | None:
        """The vertebra id an actor draws, None for any other prop."""
        for label_id, own in self._actors.items():
            if own is actor or (actor is not None and own.GetAddressAsString("") == actor.GetAddressAsString("")):
                return label_id
        return None

    def vertebra_at(self, x: int, y: int) -> int | None:
        """The id of the visible vertebra at VTK display position (x, y), origin bottom-left."""
        if not self._picker.Pick(float(x), float(y), 0.0, self.plotter.renderer):
            return None
        return self.id_of_actor(self._picker.GetActor())

    def _event_position(self) -> tuple[int, int]:
        # Release observers sit on the interactor style (pyvista #4976): ask the interactor.
        return tuple(self.plotter.iren.interactor.GetEventPosition())

    def _on_left_press(self, *_args) -> None:
        self._press = self._event_position()

    def _on_left_release(self, *_args) -> None:
        press, self._press = self._press, None
        position = self._event_position()
        if press is None or max(abs(a - b) for a, b in zip(position, press)) > 3:
            return                                  # a drag (rotation), not a click
        label_id = self.vertebra_at(*position)
        if label_id is not None:
            self.vertebra_picked.emit(label_id)

    def screenshot(self) -> np.ndarray:
        """The rendered image, (height, width, 3) uint8."""
        return np.asarray(self.plotter.screenshot(return_img=True))

    def close(self) -> bool:
        """Free the render window (required before the widget is dropped), then close."""
        self._render_timer.stop()
        self._actors.clear()
        self._meshes.clear()
        self._picker = None
        self._overlay.plotter = None        # it holds the plotter too
        if self.plotter is not None:
            self.plotter.close()
            # pyvistaqt keeps the wrapper of its GL context's QSurface, which Qt frees with the window
            # and PySide cannot see go (QSurface is no QObject): a later object at the same address then
            # came back from PySide as that QSurface (a menu's QAction, a table's header, in full test
            # runs). Drop it while the surface is still alive; the next initializeGL takes it again.
            forget = getattr(self.plotter, "_forget_context", None)
            if forget is not None:
                forget()
            self.plotter = None        # drop the renderer and camera with it
            # VTK objects caught in reference cycles would otherwise be freed by a later garbage
            # collection, possibly after Qt destroyed the native window they were drawn on (a crash
            # seen once in a full test run, in a window's deferred deletion): free them now.
            gc.collect()
        return super().close()
