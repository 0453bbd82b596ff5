"""Mouse and keyboard handling of SliceView (a mixin): scroll, zoom, pan, window/level, brush.

- wheel, arrow keys, PageUp/PageDown: scroll slices; Ctrl+wheel: zoom about the cursor
- left click: move the crosshair (brush mode: paint or erase dabs along the drag; pick mode: report the
  point; on an overlay handle: drag it within the slice)
- middle drag: pan; right drag: window (horizontal) and level (vertical)
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

ZOOM_STEP, MIN_ZOOM, MAX_ZOOM = 1.25, 0.5, 16.0
HANDLE_PX = 8.0           # a press this close to an overlay handle grabs it
_BRUSH = QColor(255, 255, 255, 200)


class SliceInteractionMixin:
    def _init_interaction(self) -> None:
        self._zoom, self._pan = 1.0, QPointF(0.0, 0.0)
        self._drag: tuple | None = None          # (button, start position, start value)
        self._brush_mm: float | None = None       # brush radius; None: brush off
        self._brush_at: QPointF | None = None
        self._stroking = False
        self._picking = False
        self._grab: tuple | None = None          # (handle, its LPS, LPS under the press, last LPS)

    # --- zoom and pan -------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self._zoom

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (widget position) in place."""
        zoom = float(np.clip(zoom, MIN_ZOOM, MAX_ZOOM))
        if self._geometry is None:
            return
        anchor = anchor or QPointF(self.width() / 2, self.height() / 2)
        rect = self.image_rect()
        fx, fy = (anchor.x() - rect.left()) / rect.width(), (anchor.y() - rect.top()) / rect.height()
        self._zoom = zoom
        self._pan = QPointF(0.0, 0.0)
        centred = self.image_rect()
        self._pan = QPointF(anchor.x() - fx * centred.width() - centred.left(),
                            anchor.y() - fy * centred.height() - centred.top())
        self.update()

    def zoom_to(self, lps, zoom: float) -> None:
        """Zoom to ``zoom`` with the LPS point ``lps`` (projected) in the middle of the view."""
        if self._geometry is None:
            return
        self._zoom, self._pan = float(np.clip(zoom, MIN_ZOOM, MAX_ZOOM)), QPointF(0.0, 0.0)
        at = self.lps_to_widget(lps)
        self._pan = QPointF(self.width() / 2 - at.x(), self.height() / 2 - at.y())
        self.update()

    def reset_view(self) -> None:
        """Whole slice, centred (zoom 1, no pan)."""
        self._zoom, self._pan = 1.0, QPointF(0.0, 0.0)
        self.update()

    # --- brush --------------------------------------------------------------------------------
    def set_brush(self, radius_mm: float | None) -> None:
        """Brush mode with this radius (mm), or None to go back to crosshair clicks."""
        self._brush_mm = None if radius_mm is None else max(float(radius_mm), 0.1)
        self.setMouseTracking(self._brush_mm is not None)
        cross = self._brush_mm or self._picking
        self.setCursor(Qt.CursorShape.CrossCursor if cross else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_pick_mode(self, on: bool) -> None:
        """A left click reports its LPS point (``point_picked``) instead of moving the crosshair."""
        self._picking = bool(on)
        if not self._brush_mm:
            self.setCursor(Qt.CursorShape.CrossCursor if self._picking else Qt.CursorShape.ArrowCursor)

    @property
    def pick_mode(self) -> bool:
        return self._picking

    def _handle_at(self, position: QPointF):
        best = None
        for name, at, lps in self._handles:
            d = math.hypot(at.x() - position.x(), at.y() - position.y())
            if d <= HANDLE_PX and (best is None or d < best[0]):
                best = (d, name, lps)
        return best

    def _grab_handle(self, position: QPointF) -> bool:
        found = self._handle_at(position)
        under = self.widget_to_lps(position.x(), position.y())
        if found is None or under is None:
            return False
        self._grab = (found[1], found[2], under, found[2])
        self.handle_pressed.emit(found[1])
        return True

    def _drag_handle(self, position: QPointF) -> None:
        name, start, under, _last = self._grab
        now = self.widget_to_lps(position.x(), position.y())
        if now is None:
            return
        moved = start + (now - under)               # within the slice: the off-slice coordinate is kept
        self._grab = (name, start, under, moved)
        self.handle_moved.emit(name, *(float(v) for v in moved))

    def normal_array_axis(self) -> int | None:
        """The array axis this plane's slices step along (brush dabs stay within one voxel slice)."""
        if self._geometry is None:
            return None
        from viewers.slice_geometry import _AXES

        return int(self._geometry.perm[_AXES[self.plane].normal])

    def _paint_brush(self, painter: QPainter) -> None:
        if not self._brush_mm or self._brush_at is None:
            return
        rect = self.image_rect()
        _rows, cols = self._geometry.image_size(self.plane)
        radius = self._brush_mm * rect.width() / (cols * self._geometry.pixel_spacing(self.plane)[1])
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(_BRUSH, 1.0))
        painter.drawEllipse(self._brush_at, radius, radius)

    def _dab(self, position: QPointF, signal) -> None:
        lps = self.widget_to_lps(position.x(), position.y())
        if lps is not None:
            signal.emit(*(float(v) for v in lps))

    # --- events -------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802
        position, button = event.position(), event.button()
        if button == Qt.MouseButton.LeftButton and self._brush_mm:
            self._stroking = True
            self._dab(position, self.stroke_started)
        elif button == Qt.MouseButton.LeftButton and self._grab_handle(position):
            pass
        elif button == Qt.MouseButton.LeftButton and self._picking:
            self._dab(position, self.point_picked)
        elif button == Qt.MouseButton.LeftButton:
            lps = self.widget_to_lps(position.x(), position.y())
            if lps is not None:
                self.set_crosshair(lps)
        elif button == Qt.MouseButton.MiddleButton:
            self._drag = (button, position, QPointF(self._pan))
        elif button == Qt.MouseButton.RightButton:
            self._drag = (button, position, self._window)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        position = event.position()
        if self._brush_mm:
            self._brush_at = QPointF(position)
            if self._stroking:
                self._dab(position, self.stroke_moved)
            self.update()
        if self._grab is not None:
            self._drag_handle(position)
        if self._drag is None:
            return
        button, start, value = self._drag
        dx, dy = position.x() - start.x(), position.y() - start.y()
        if button == Qt.MouseButton.MiddleButton:
            self._pan = value + QPointF(dx, dy)
            self.update()
        else:
            width, level = value
            self.set_window(width * math.exp(dx / 200.0), level - dy * width / 400.0)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._stroking:
            self._stroking = False
            self.stroke_finished.emit()
        elif event.button() == Qt.MouseButton.LeftButton and self._grab is not None:
            name, _start, _under, last = self._grab
            self._grab = None
            self.handle_released.emit(name, *(float(v) for v in last))
        elif self._drag is not None and event.button() == self._drag[0]:
            if self._drag[0] == Qt.MouseButton.RightButton:
                self.window_changed.emit(*self._window)
            self._drag = None
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._brush_at = None
        self.update()
        super().leaveEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() // 120
        if steps and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self._zoom * ZOOM_STEP ** steps, event.position())
        elif steps:
            self.set_slice(self._index + int(steps))
        event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        step = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if event.key() in step:
            self.set_slice(self._index + step[event.key()])
            event.accept()
        else:
            super().keyPressEvent(event)
