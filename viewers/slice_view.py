"""One plane of a Volume with a label overlay, drawn with QPainter from numpy (no VTK).

Each slice change windows one 2D slice to 8 bits, looks up label colours, and paints two QImages
scaled to the widget with the true physical aspect ratio (anisotropic voxels look right). Display
follows the radiological convention whatever the file's orientation (see ``slice_geometry``).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from spine_core.errors import GridMismatch
from spine_core.labels import label_color
from spine_core.volume import LabelMap, Volume
from viewers.overlay_paint import paint_items
from viewers.slice_geometry import PLANES, SliceGeometry
from viewers.slice_interaction import SliceInteractionMixin

# name: (width, level) in HU, for a CT (an MR's window comes from its own values: spine_core.windowing)
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "bone": (1800.0, 400.0),
    "soft tissue": (400.0, 40.0),
}
_MIN_WIDTH = 1e-6               # any positive width: an MR stored as floats may span 0..1
_CROSSHAIR = QColor(255, 220, 0, 170)
_NAMED_PLANES = ("sagittal", "coronal")   # vertebra names are written on these


class SliceView(SliceInteractionMixin, QWidget):
    """A slice of one plane. Wheel / arrow keys / PageUp-Down scroll; a left click moves the crosshair;
    Ctrl+wheel zooms, middle-drag pans, right-drag sets window/level; in brush mode left-drag paints.
    Overlays (``set_overlay``: viewers.overlay items) are drawn over the slice; their handles can be dragged
    (``handle_pressed`` / ``handle_moved`` / ``handle_released``); in pick mode a click reports its point
    (``point_picked``) instead of moving the crosshair."""

    crosshair_changed = Signal(float, float, float)   # LPS mm
    slice_changed = Signal(int)
    window_changed = Signal(float, float)             # width, level (HU for a CT) after a right-drag
    stroke_started = Signal(float, float, float)      # brush mode: LPS mm of each dab
    stroke_moved = Signal(float, float, float)
    stroke_finished = Signal()
    point_picked = Signal(float, float, float)        # pick mode: LPS mm of the click
    handle_pressed = Signal(str)                      # an overlay handle was grabbed
    handle_moved = Signal(str, float, float, float)   # ... dragged to (LPS mm, off-slice coordinate kept)
    handle_released = Signal(str, float, float, float)

    def __init__(self, plane: str = "axial", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if plane not in PLANES:
            raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")
        self.plane = plane
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(64, 64)
        self._volume: Volume | None = None
        self._labels: LabelMap | None = None
        self._geometry: SliceGeometry | None = None
        self._image_view = self._label_view = None   # canonical (L, P, S) views of the arrays
        self._label_lut = np.zeros((1, 4), np.uint8)
        self._names: dict[int, str] = {}
        self._window = WINDOW_PRESETS["bone"]
        self._opacity = 0.45
        self._labels_visible = self._names_visible = self._crosshair_visible = True
        self._index = 0
        self._crosshair = np.zeros(3)
        self._frame: tuple[QImage | None, QImage | None, list] = (None, None, [])
        self._buffers: tuple = ()                     # numpy arrays backing the QImages
        self._overlays: dict[str, list] = {}
        self._handles: list = []                      # (name, widget position, LPS) of handles drawn
        self._init_interaction()

    # --- data ---------------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Show a scan; labels shown before stay only if they share its grid."""
        self._volume = volume
        if volume is not None and self._labels is not None and not self._labels.same_grid(volume):
            self._labels = None
        self._update_grid()

    def set_labels(self, labels: LabelMap | None) -> None:
        """Overlay a label map on the scan's grid (or show it alone when no scan is set)."""
        if labels is not None and self._volume is not None and not labels.same_grid(self._volume):
            raise GridMismatch("The label map is not on the scan's grid; it cannot be overlaid.")
        self._labels = labels
        if labels is not None:
            top = max(labels.ids(), default=0)
            lut = np.zeros((top + 1, 4), np.uint8)
            for label_id in labels.ids():
                lut[label_id] = (*label_color(label_id), 255)
            self._label_lut = lut
            self._names = {int(k): str(v) for k, v in labels.names.items()}
        self._update_grid()

    # --- display settings ---------------------------------------------------------------------
    def set_window(self, width: float, level: float) -> None:
        self._window = (max(float(width), _MIN_WIDTH), float(level))
        self._render()

    def set_window_preset(self, name: str) -> None:
        self.set_window(*WINDOW_PRESETS[name])

    @property
    def window(self) -> tuple[float, float]:
        return self._window

    def set_label_opacity(self, opacity: float) -> None:
        self._opacity = float(np.clip(opacity, 0.0, 1.0))
        self.update()

    def set_labels_visible(self, visible: bool) -> None:
        self._labels_visible = bool(visible)
        self.update()

    def set_names_visible(self, visible: bool) -> None:
        self._names_visible = bool(visible)
        self._render()

    def set_crosshair_visible(self, visible: bool) -> None:
        self._crosshair_visible = bool(visible)
        self.update()

    def set_overlay(self, key: str, items) -> None:
        """Draw ``items`` (viewers.overlay) under ``key``, replacing what was drawn under it (none: remove)."""
        if items:
            self._overlays[key] = list(items)
        else:
            self._overlays.pop(key, None)
        self._handles = []                            # found again as the overlays are painted
        self.update()

    def overlay(self, key: str) -> list:
        return list(self._overlays.get(key, []))

    def handles(self) -> list[tuple[str, QPointF, np.ndarray]]:
        """The draggable markers as last painted: (name, widget position, LPS)."""
        return list(self._handles)

    # --- slice and crosshair ------------------------------------------------------------------
    @property
    def slice_index(self) -> int:
        return self._index

    def slice_count(self) -> int:
        return 0 if self._geometry is None else self._geometry.slice_count(self.plane)

    def set_slice(self, index: int) -> None:
        """Show slice ``index`` (clamped); the crosshair follows along the slice normal."""
        if self._geometry is None:
            return
        index = int(np.clip(index, 0, self.slice_count() - 1))
        row, col = self._geometry.pixel_of(self.plane, self._crosshair)
        self._move_to(self._geometry.pixel_to_lps(self.plane, index, row, col))

    def crosshair(self) -> np.ndarray:
        return self._crosshair.copy()

    def set_crosshair(self, lps) -> None:
        """Move the crosshair to an LPS point; the view shows the slice through it."""
        if self._geometry is not None:
            self._move_to(np.asarray(lps, dtype=np.float64))

    def _move_to(self, lps: np.ndarray) -> None:
        changed = not np.allclose(lps, self._crosshair)
        self._crosshair = np.array(lps, dtype=np.float64)
        index = self._geometry.slice_of(self.plane, lps)
        if index != self._index:
            self._index = index
            self._render()
            self.slice_changed.emit(index)
        else:
            self.update()
        if changed:
            self.crosshair_changed.emit(*(float(v) for v in self._crosshair))

    def _update_grid(self) -> None:
        """Views of the arrays on the current grid; a new grid recentres the crosshair, the same
        grid (e.g. edited labels) keeps slice and crosshair where the user left them."""
        grid = self._volume if self._volume is not None else self._labels
        if grid is None:
            self._geometry = self._image_view = self._label_view = None
            self._frame = (None, None, [])
            self.update()
            return
        same = (self._geometry is not None and self._geometry.shape == grid.shape
                and np.allclose(self._geometry.affine, grid.affine, atol=1e-3))
        if not same:
            self._geometry = SliceGeometry(grid.affine, grid.shape)
            self._crosshair = grid.index_to_lps((np.array(grid.shape) - 1) / 2.0)
            self._index = self._geometry.slice_of(self.plane, self._crosshair)
        self._image_view = None if self._volume is None else self._geometry.canonical(self._volume.array)
        self._label_view = None if self._labels is None else self._geometry.canonical(self._labels.array)
        self._render()

    # --- rendering ----------------------------------------------------------------------------
    def _render(self) -> None:
        """Build this slice's QImages (grey and label colours) and schedule a repaint."""
        if self._geometry is None:
            return
        geometry, buffers = self._geometry, []
        rows, cols = geometry.image_size(self.plane)
        grey = label_image = None
        if self._image_view is not None:
            pixels = geometry.slice_pixels(self._image_view, self.plane, self._index)
            width, level = self._window
            scaled = (pixels.astype(np.float32) - (level - width / 2)) * (255.0 / width)
            grey8 = np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8))
            grey = QImage(grey8.data, cols, rows, cols, QImage.Format.Format_Grayscale8)
            buffers.append(grey8)
        names = []
        if self._label_view is not None:
            ids = geometry.slice_pixels(self._label_view, self.plane, self._index)
            rgba = np.ascontiguousarray(np.take(self._label_lut, ids, axis=0, mode="clip"))
            label_image = QImage(rgba.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888)
            buffers.append(rgba)
            if self.plane in _NAMED_PLANES and self._names_visible:
                names = self._name_positions(ids)
        self._frame, self._buffers = (grey, label_image, names), tuple(buffers)
        self.update()

    def _name_positions(self, ids: np.ndarray) -> list[tuple[str, float, float]]:
        """(name, row, col) at the in-slice centroid of each label present."""
        flat = np.clip(ids.ravel().astype(np.int64), 0, None)
        counts = np.bincount(flat)
        present = [int(i) for i in np.nonzero(counts)[0] if i > 0]
        if not present:
            return []
        rows, cols = np.divmod(np.arange(flat.size), ids.shape[1])
        row_sum = np.bincount(flat, weights=rows, minlength=counts.size)
        col_sum = np.bincount(flat, weights=cols, minlength=counts.size)
        return [(self._names.get(i, str(i)), row_sum[i] / counts[i], col_sum[i] / counts[i]) for i in present]

    def image_rect(self) -> QRectF:
        """Where the slice is drawn in widget coordinates, with the physical aspect ratio."""
        if self._geometry is None:
            return QRectF()
        rows, cols = self._geometry.image_size(self.plane)
        row_mm, col_mm = self._geometry.pixel_spacing(self.plane)
        height_mm, width_mm = rows * row_mm, cols * col_mm
        scale = min(self.width() / width_mm, self.height() / height_mm) * self._zoom
        w, h = width_mm * scale, height_mm * scale
        return QRectF((self.width() - w) / 2 + self._pan.x(), (self.height() - h) / 2 + self._pan.y(), w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        grey, label_image, names = self._frame
        if self._geometry is not None:
            target = self.image_rect()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            if grey is not None:
                painter.drawImage(target, grey)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            if label_image is not None and self._labels_visible:
                painter.setOpacity(self._opacity if grey is not None else 1.0)
                painter.drawImage(target, label_image)
                painter.setOpacity(1.0)
            if self._labels_visible:
                self._paint_names(painter, names)
            if self._crosshair_visible:
                self._paint_crosshair(painter, target)
            self._handles = []
            for items in self._overlays.values():
                self._handles += paint_items(self, painter, items)
            self._paint_brush(painter)
        painter.end()

    def _to_widget(self, row: float, col: float) -> QPointF:
        rect = self.image_rect()
        rows, cols = self._geometry.image_size(self.plane)
        return QPointF(rect.left() + (col + 0.5) * rect.width() / cols,
                       rect.top() + (row + 0.5) * rect.height() / rows)

    def _paint_names(self, painter: QPainter, names) -> None:
        if not names:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, min(12.0, self.height() / 45)))
        font.setBold(True)
        metrics = QFontMetricsF(font)
        for name, row, col in names:
            point = self._to_widget(row, col)
            path = QPainterPath()
            path.addText(point + QPointF(-metrics.horizontalAdvance(name) / 2, metrics.capHeight() / 2), font, name)
            painter.strokePath(path, QPen(QColor(0, 0, 0, 220), 3.0))
            painter.fillPath(path, QColor(255, 255, 255))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _paint_crosshair(self, painter: QPainter, target: QRectF) -> None:
        point = self._to_widget(*self._geometry.pixel_of(self.plane, self._crosshair))
        painter.setPen(QPen(_CROSSHAIR, 1.0))
        painter.drawLine(QPointF(target.left(), point.y()), QPointF(target.right(), point.y()))
        painter.drawLine(QPointF(point.x(), target.top()), QPointF(point.x(), target.bottom()))

    # --- interaction --------------------------------------------------------------------------
    def slice_plane(self) -> tuple[np.ndarray, np.ndarray]:
        """(a point on the slice shown, its unit normal), LPS."""
        if self._geometry is None:
            return np.zeros(3), np.array([0.0, 0.0, 1.0])
        return self._geometry.pixel_to_lps(self.plane, self._index, 0, 0), self._geometry.normal(self.plane)

    def slice_spacing(self) -> float:
        return 1.0 if self._geometry is None else self._geometry.slice_spacing(self.plane)

    def lps_to_widget(self, lps) -> QPointF | None:
        """Where an LPS point (projected onto this plane) is drawn in widget coordinates."""
        if self._geometry is None:
            return None
        return self._to_widget(*self._geometry.pixel_of(self.plane, lps))

    def widget_to_lps(self, x: float, y: float) -> np.ndarray | None:
        """The LPS point under widget position (x, y) on the current slice, None outside the image."""
        rect = self.image_rect()
        if self._geometry is None or not rect.contains(QPointF(x, y)):
            return None
        rows, cols = self._geometry.image_size(self.plane)
        row = (y - rect.top()) * rows / rect.height() - 0.5
        col = (x - rect.left()) * cols / rect.width() - 0.5
        return self._geometry.pixel_to_lps(self.plane, self._index, row, col)
