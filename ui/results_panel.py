"""The vertebra table: show/hide + name, volume (mL), confidence, centroid (LPS mm) and flags, in
cranio-caudal order. Flag cells are coloured (amber: check; red: low confidence) so they catch the eye."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from spine_core.labels import label_color
from spine_core.review import FLAG_HELP, LOW_CONFIDENCE_BELOW, VertebraRow
from ui.tables import style_rows

COLUMNS = ("Vertebra", "Volume (mL)", "Confidence", "Flags", "Centroid L, P, S (mm)")
NAME, VOLUME, CONFIDENCE, FLAGS, CENTROID = range(5)
_AMBER, _RED = QColor(120, 84, 10), QColor(130, 30, 30)


class ResultsPanel(QTableWidget):
    """Rows of vertebra_rows(); clicking a row emits ``vertebra_clicked(id)``; the name's check box
    shows or hides the vertebra in 3D (``visibility_changed(id, shown)``)."""

    vertebra_clicked = Signal(int)
    visibility_changed = Signal(int, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        style_rows(self)
        self.setMinimumWidth(430)
        self.rows: list[VertebraRow] = []
        self.hidden: set[int] = set()
        self.cellClicked.connect(self._on_cell_clicked)
        self.itemChanged.connect(self._on_item_changed)

    def set_rows(self, rows: list[VertebraRow]) -> None:
        self.rows = list(rows)
        self.blockSignals(True)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            confidence = "edited" if row.confidence is None else f"{row.confidence:.2f}"
            cells = (row.name, f"{row.volume_ml:.1f}", confidence if self._analysed() else "",
                     "; ".join(row.flags), ", ".join(f"{v:.1f}" for v in row.centroid))
            for c, text in enumerate(cells):
                self.setItem(r, c, self._item(row, c, text))
        self.blockSignals(False)

    def _analysed(self) -> bool:
        return any(row.confidence is not None for row in self.rows)

    def _item(self, row: VertebraRow, column: int, text: str) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, row.label_id)
        if column in (VOLUME, CONFIDENCE, CENTROID):
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if column == NAME:
            item.setForeground(QBrush(QColor(*label_color(row.label_id))))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            shown = row.label_id not in self.hidden
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
            item.setToolTip("Tick to show this vertebra in 3D")
        low = row.confidence is not None and row.confidence < LOW_CONFIDENCE_BELOW
        if (column == FLAGS and row.flags) or (column == CONFIDENCE and low):
            item.setBackground(QBrush(_RED if low else _AMBER))
            item.setForeground(QBrush(QColor("#ffffff")))
            item.setToolTip("\n".join(f"{f}: {FLAG_HELP.get(f, f)}" for f in row.flags))
        return item

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != NAME:
            return
        label_id = int(item.data(Qt.ItemDataRole.UserRole))
        shown = item.checkState() == Qt.CheckState.Checked
        (self.hidden.discard if shown else self.hidden.add)(label_id)
        self.visibility_changed.emit(label_id, shown)

    def names(self) -> list[str]:
        return [row.name for row in self.rows]

    def select_vertebra(self, label_id: int) -> None:
        """Highlight the row of ``label_id`` (none for 0) without emitting ``vertebra_clicked``."""
        self.blockSignals(True)
        self.clearSelection()
        for r, row in enumerate(self.rows):
            if row.label_id == label_id:
                self.selectRow(r)
                self.scrollToItem(self.item(r, 0))
        self.blockSignals(False)

    def _on_cell_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.rows):
            self.vertebra_clicked.emit(self.rows[row].label_id)
