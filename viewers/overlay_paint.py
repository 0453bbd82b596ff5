"""Painting ``viewers.overlay`` items on a SliceView with QPainter: each projected onto the slice, what must
lie near the slice (``near_mm``) kept to it; returns where the draggable markers were drawn."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen

from viewers.overlay import Marker, Segment, Text, clip_to_slab, for_view, near

_OUTLINE = QColor(0, 0, 0, 200)


def paint_items(view, painter: QPainter, items) -> list[tuple[str, QPointF, np.ndarray]]:
    """Paint ``items`` on ``view`` (a SliceView); returns (handle, widget position, LPS) per handle drawn."""
    origin, normal = view.slice_plane()
    handles = []
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for item in for_view(items, view.plane):
        if isinstance(item, Segment):
            _segment(view, painter, item, origin, normal)
        elif isinstance(item, Marker) and near(item.at, origin, normal, item.near_mm):
            at = view.lps_to_widget(item.at)
            _marker(painter, item, at)
            if item.handle:
                handles.append((item.handle, at, np.asarray(item.at, float)))
        elif isinstance(item, Text) and near(item.at, origin, normal, item.near_mm):
            _text(view, painter, item)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    return handles


def _segment(view, painter: QPainter, item: Segment, origin, normal) -> None:
    ends = (np.asarray(item.a), np.asarray(item.b)) if item.near_mm is None else \
        clip_to_slab(item.a, item.b, origin, normal, item.near_mm)
    if ends is None:
        return
    a, b = view.lps_to_widget(ends[0]), view.lps_to_widget(ends[1])
    color = QColor(*item.color)
    pen = QPen(_OUTLINE, item.width + 2.0)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    if not item.dashed:                      # a dark edge keeps a thin line visible on bone
        painter.setPen(pen)
        painter.drawLine(a, b)
    pen = QPen(color, item.width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    if item.dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    painter.setPen(pen)
    painter.drawLine(a, b)


def _marker(painter: QPainter, item: Marker, at: QPointF) -> None:
    r = item.radius_px
    painter.setPen(QPen(_OUTLINE, 3.0))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawEllipse(at, r, r)
    painter.setPen(QPen(QColor(*item.color), 1.8))
    painter.setBrush(QBrush(QColor(*item.color)) if item.filled else Qt.BrushStyle.NoBrush)
    painter.drawEllipse(at, r, r)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def _text(view, painter: QPainter, item: Text) -> None:
    font = QFont(view.font())
    font.setPointSizeF(9.0)
    font.setBold(True)
    at = view.lps_to_widget(item.at) + QPointF(6.0, -6.0)
    width = QFontMetricsF(font).horizontalAdvance(item.text)
    if item.align == "right" or at.x() + width > view.width() - 4:
        at.setX(at.x() - 12.0 - width)
    at.setX(min(max(at.x(), 2.0), max(view.width() - width - 2.0, 2.0)))     # on screen
    path = QPainterPath()
    path.addText(at, font, item.text)
    painter.strokePath(path, QPen(_OUTLINE, 3.0))
    painter.fillPath(path, QColor(*item.color))
