"""The Measurements panel: per level (body heights, wedge ratio, Genant grade, cancellous HU, pedicle widths)
and per spine (lordosis, kyphosis, Cobb, segmental angles, each with the vertebrae and endplates it used),
above them whether the numbers still describe the labels shown, and a Measure button."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ui.tables import style_rows

LEVEL_COLUMNS = (("Level", ""), ("Ant.", "Anterior body height (mm)"), ("Mid.", "Middle body height (mm)"),
                 ("Post.", "Posterior body height (mm)"), ("Wedge", "Anterior / posterior height"),
                 ("Genant", "Genant grade of a suspected fracture (height loss: 1 >= 20 %, 2 >= 25 %, 3 >= 40 %)"),
                 ("HU", "Mean HU of the cancellous core (the body eroded 3 mm from its cortex)"),
                 ("Ped. L", "Left pedicle: width at its isthmus (mm); hover for its height"),
                 ("Ped. R", "Right pedicle: width at its isthmus (mm); hover for its height"))
ANGLE_COLUMNS = (("Measure", ""), ("Deg.", "Angle in degrees"), ("Between", "The endplates it was measured between"),
                 ("Note", ""))
SPINE_MEASURES = (("lumbar_lordosis", "Lumbar lordosis L1-S1", "needs L1 and the sacrum measured"),
                  ("thoracic_kyphosis", "Thoracic kyphosis T4-T12", "needs T4 and T12 measured"),
                  ("coronal_cobb", "Coronal Cobb", "needs three measured vertebrae"))
_AMBER = QColor(120, 84, 10)
_STALE = "color: #ffcc66;"


def _mm(value) -> str:
    return "" if value is None else f"{value:.1f}"


def _table(columns) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    for c, (title, tip) in enumerate(columns):
        header = QTableWidgetItem(title)
        header.setToolTip(tip)
        table.setHorizontalHeaderItem(c, header)
    return style_rows(table)


def _item(text: str, right: bool = False, tip: str = "", flagged: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tip:
        item.setToolTip(tip)
    if flagged:
        item.setBackground(QBrush(_AMBER))
        item.setForeground(QBrush(QColor("#ffffff")))
    return item


class MeasurementsPanel(QWidget):
    """``level_clicked(index)``: a row of the document's "vertebrae"; ``angle_clicked(index)``: of ``angles``."""

    measure_clicked = Signal()
    level_clicked = Signal(int)
    angle_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel("Not measured yet: press Measure.")
        self.status.setWordWrap(True)
        self.status.setObjectName("MeasureStatus")
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip("Measure every vertebra, pedicle and the alignment on the labels shown")
        self.measure_button.clicked.connect(self.measure_clicked)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.measure_button)
        self.levels, self.alignment = _table(LEVEL_COLUMNS), _table(ANGLE_COLUMNS)
        self.levels.cellClicked.connect(lambda row, _c: self.level_clicked.emit(row))
        self.alignment.cellClicked.connect(lambda row, _c: self.angle_clicked.emit(row))
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.levels)
        splitter.addWidget(self.alignment)
        splitter.setSizes([400, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        self.angles: list[dict | None] = []

    def set_status(self, text: str, stale: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(_STALE if stale else "")

    def clear(self) -> None:
        self.levels.setRowCount(0)
        self.alignment.setRowCount(0)
        self.angles = []
        self.set_status("Not measured yet: press Measure.")

    def set_document(self, doc: dict) -> None:
        """Fill both tables from ``spine_core.measure.measure``'s document."""
        rows = doc["vertebrae"]
        self.levels.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, item in enumerate(self._level_cells(row)):
                self.levels.setItem(r, c, item)
        self.angles = self._angles(doc["alignment"])
        self.alignment.setRowCount(len(self.angles))
        for r, (name, angle, why) in enumerate(self._angle_rows(doc["alignment"])):
            between = f"{angle['upper']} {angle['upper_plane']} - {angle['lower']} {angle['lower_plane']}" \
                if angle else ""
            cells = (_item(name), _item(f"{angle['degrees']:.1f}" if angle else "-", right=True),
                     _item(between.replace(" endplate", ""), tip=between),
                     _item(angle.get("note", "") if angle else why))
            for c, item in enumerate(cells):
                self.alignment.setItem(r, c, item)

    @staticmethod
    def _level_cells(row: dict) -> list[QTableWidgetItem]:
        notes = "; ".join(row.get("notes", []))
        flags = row.get("flags", [])
        fracture = [f for f in flags if "fracture" in f]
        density = [f for f in flags if "density" in f]
        wedge = row.get("wedge_ratio")
        genant = row.get("genant_grade")
        # a loss measured but not graded says so (n/g) and why, so that a blank never hides it
        ungraded = [n for n in row.get("notes", []) if "not graded" in n]
        grade = str(genant) if genant else ("n/g" if ungraded else "")
        cells = [_item(row["name"], tip=notes or "Click to draw its endplates, heights and pedicles"),
                 _item(_mm(row.get("anterior_height_mm")), True), _item(_mm(row.get("middle_height_mm")), True),
                 _item(_mm(row.get("posterior_height_mm")), True),
                 _item("" if wedge is None else f"{wedge:.2f}", True),
                 _item(grade, True, "; ".join(fracture) or "; ".join(ungraded), bool(fracture)),
                 _item("" if row.get("core_hu") is None else f"{row['core_hu']:.0f}", True, "; ".join(density),
                       bool(density))]
        for side in ("left", "right"):
            width, height = row.get(f"pedicle_width_{side}_mm"), row.get(f"pedicle_height_{side}_mm")
            tip = f"isthmus {width:.1f} mm wide, {height:.1f} mm high" if width and height else ""
            cells.append(_item(_mm(width), True, tip))
        return cells

    @staticmethod
    def _angle_rows(alignment: dict) -> list[tuple[str, dict | None, str]]:
        rows = [(name, alignment.get(key), why) for key, name, why in SPINE_MEASURES]
        rows += [(f"Segmental {a['name']}", a, "") for a in alignment.get("segmental", [])]
        return rows

    def _angles(self, alignment: dict) -> list[dict | None]:
        return [angle for _name, angle, _why in self._angle_rows(alignment)]

    def select_level(self, index: int) -> None:
        self.alignment.clearSelection()
        self.levels.selectRow(index)

    def select_angle(self, index: int) -> None:
        self.levels.clearSelection()
        self.alignment.selectRow(index)
