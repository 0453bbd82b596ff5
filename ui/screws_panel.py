"""The Screws panel: Suggest / Add / Delete, and one row per planned screw (level, side, diameter, length,
least distance from its surface to the cortex, expected Gertzbein-Robbins grade, who placed it). Diameter and
length can be typed in; the grade cell is coloured as the screw is drawn."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ui.tables import style_rows
from viewers.screw_overlay import grade_rgb

COLUMNS = ("Level", "Side", "\u00d8 (mm)", "Length (mm)", "Distance (mm)", "Grade", "Placed by")
LEVEL, SIDE, DIAMETER, LENGTH, DISTANCE, GRADE, SOURCE = range(7)
EDITABLE = (DIAMETER, LENGTH)
HELP = ("Distance: least distance from the screw's surface to the cortex of the label (negative: it breaches "
        "the cortex by that much). Grade: the Gertzbein-Robbins grade it predicts (A none, B < 2 mm, C 2-4 mm, "
        "D 4-6 mm, E beyond). Drag an entry (ring) or tip (dot) on any slice to move it; Delete removes the "
        "selected screw; Ctrl+Z undoes.")


class ScrewsPanel(QWidget):
    suggest_clicked = Signal()
    add_toggled = Signal(bool)
    delete_clicked = Signal()
    screw_clicked = Signal(int)
    diameter_edited = Signal(int, float)
    length_edited = Signal(int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.suggest_button = QPushButton("Suggest screws")
        self.suggest_button.setToolTip("A screw per thoracic and lumbar pedicle that takes one (replaces the "
                                       "suggested screws; keeps those you placed)")
        self.add_button = QPushButton("Add screw")
        self.add_button.setCheckable(True)
        self.add_button.setToolTip("Click the entry point on a slice, then the tip")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected screw (Delete)")
        self.suggest_button.clicked.connect(self.suggest_clicked)
        self.add_button.toggled.connect(self.add_toggled)
        self.delete_button.clicked.connect(self.delete_clicked)
        buttons = QHBoxLayout()
        for button in (self.suggest_button, self.add_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.table = self._make_table()
        self.summary = QLabel("No screws planned.")
        self.summary.setWordWrap(True)
        self.summary.setToolTip(HELP)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._filling = False

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        triggers = QAbstractItemView.EditTrigger
        style_rows(table, triggers.DoubleClicked | triggers.EditKeyPressed)
        table.setToolTip(HELP)
        table.cellClicked.connect(lambda row, _c: self.screw_clicked.emit(row))
        table.itemChanged.connect(self._on_item_changed)
        return table

    def set_screws(self, screws, selected: int = -1) -> None:
        self._filling = True
        self.table.setRowCount(len(screws))
        for r, screw in enumerate(screws):
            for c, item in enumerate(self._cells(screw)):
                self.table.setItem(r, c, item)
        self._filling = False
        self.select(selected)

    def _cells(self, screw) -> list[QTableWidgetItem]:
        checked = screw.min_cortex_distance_mm is not None
        tip = (f"entry {', '.join(f'{v:.1f}' for v in screw.entry_lps)}; tip "
               f"{', '.join(f'{v:.1f}' for v in screw.tip_lps)} (LPS mm)" + "".join(f"\n{n}" for n in screw.notes))
        texts = (screw.vertebra, screw.side, f"{screw.diameter_mm:g}", f"{screw.length_mm:.1f}",
                 f"{screw.min_cortex_distance_mm:.2f}" if checked else "checking", screw.grade or "",
                 screw.source)
        cells = []
        for c, text in enumerate(texts):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            if c in (DIAMETER, LENGTH, DISTANCE):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if c not in EDITABLE:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            if c == GRADE and screw.grade:
                item.setBackground(QBrush(QColor(*grade_rgb(screw.grade))))
                item.setForeground(QBrush(QColor("#000000")))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            cells.append(item)
        return cells

    def set_summary(self, text: str, details: str = "") -> None:
        self.summary.setText(text)
        self.summary.setToolTip(details + ("\n\n" if details else "") + HELP)

    def select(self, row: int) -> None:
        self.table.blockSignals(True)
        self.table.clearSelection()
        if 0 <= row < self.table.rowCount():
            self.table.selectRow(row)
            self.table.scrollToItem(self.table.item(row, 0))
        self.table.blockSignals(False)

    def set_adding(self, on: bool) -> None:
        self.add_button.blockSignals(True)
        self.add_button.setChecked(on)
        self.add_button.blockSignals(False)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() not in EDITABLE:
            return
        try:
            value = float(item.text().replace("mm", "").strip())
        except ValueError:
            value = float("nan")
        signal = self.diameter_edited if item.column() == DIAMETER else self.length_edited
        # after the edit has closed: the table is filled again with the changed screw
        QTimer.singleShot(0, lambda row=item.row(): signal.emit(row, value))
