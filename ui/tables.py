"""The look and behaviour the window's tables share: whole rows selected one at a time, alternating rows,
no row numbers, columns as wide as their contents, the last one stretched."""
from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

ROW_HEIGHT = 22


def style_rows(table: QTableWidget, edit_triggers=QAbstractItemView.EditTrigger.NoEditTriggers) -> QTableWidget:
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(edit_triggers)
    table.setAlternatingRowColors(True)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table
