"""The vertebra table: name, volume (mL), centroid (LPS mm) and flags, in cranio-caudal order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, is_disc, label_color
from spine_core.volume import LabelMap

COLUMNS = ("Vertebra", "Volume (mL)", "Centroid L, P, S (mm)", "Flags")
FLAG_HELP = {"at edge": "touches the scan border: may be cut off",
             "small": "much smaller than the median vertebra: check the segmentation",
             "gap above": "the level above is missing: check the numbering"}
SMALL_FRACTION = 0.4        # a vertebra under 40 % of the median volume is flagged


@dataclass(frozen=True)
class VertebraRow:
    label_id: int
    name: str
    volume_ml: float
    centroid: np.ndarray          # LPS mm
    flags: tuple[str, ...]


def craniocaudal_key(label_id: int) -> tuple[int, int]:
    """Vertebrae in anatomical order, each disc after the vertebra above it, unknown ids last."""
    base = label_id - DISC_OFFSET if is_disc(label_id) else label_id
    rank = CRANIOCAUDAL.index(base) if base in CRANIOCAUDAL else len(CRANIOCAUDAL) + base
    return rank, int(is_disc(label_id))


def vertebra_rows(labels: LabelMap) -> list[VertebraRow]:
    """One row per label: voxel counts and centroids from one pass over the labelled voxels."""
    flat = labels.array.reshape(-1)
    where = np.flatnonzero(flat)
    if where.size == 0:
        return []
    values = flat[where].astype(np.int64)
    counts = np.bincount(values)
    ijk = np.unravel_index(where, labels.shape)
    sums = np.stack([np.bincount(values, weights=axis, minlength=counts.size) for axis in ijk], axis=1)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) / 1000.0
    ids = sorted((int(i) for i in np.nonzero(counts)[0]), key=craniocaudal_key)
    edge = _ids_on_border(labels.array)
    median = float(np.median([counts[i] for i in ids if not is_disc(i)] or [1]))
    rows = []
    for n, label_id in enumerate(ids):
        flags = []
        if label_id in edge:
            flags.append("at edge")
        if not is_disc(label_id) and counts[label_id] < SMALL_FRACTION * median:
            flags.append("small")
        gap = _gap_above(label_id, ids[:n])
        if gap:
            flags.append(gap)
        centroid = labels.index_to_lps(sums[label_id] / counts[label_id])
        rows.append(VertebraRow(label_id, labels.names.get(label_id, str(label_id)),
                                counts[label_id] * voxel_ml, centroid, tuple(flags)))
    return rows


def _ids_on_border(array: np.ndarray) -> set[int]:
    faces = [array[0], array[-1], array[:, 0], array[:, -1], array[:, :, 0], array[:, :, -1]]
    return {int(v) for face in faces for v in np.unique(face) if v != 0}


def _gap_above(label_id: int, above: list[int]) -> str:
    """'gap above' where the previous vertebra shown is not the next level up."""
    vertebrae = [i for i in above if not is_disc(i) and i in CRANIOCAUDAL]
    if is_disc(label_id) or label_id not in CRANIOCAUDAL or not vertebrae:
        return ""
    between = CRANIOCAUDAL[CRANIOCAUDAL.index(vertebrae[-1]) + 1:CRANIOCAUDAL.index(label_id)]
    missing = [i for i in between if i not in (25, 28)]      # L6 / T13 are rare variants
    return "gap above" if missing else ""


class ResultsPanel(QTableWidget):
    """Rows of vertebra_rows(); clicking a row emits ``vertebra_clicked(id)``."""

    vertebra_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setMinimumWidth(430)
        self.rows: list[VertebraRow] = []
        self.cellClicked.connect(self._on_cell_clicked)

    def set_rows(self, rows: list[VertebraRow]) -> None:
        self.rows = list(rows)
        self.blockSignals(True)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = (row.name, f"{row.volume_ml:.1f}", ", ".join(f"{v:.1f}" for v in row.centroid),
                     "; ".join(row.flags))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, row.label_id)
                if c in (1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 0:
                    item.setForeground(QBrush(QColor(*label_color(row.label_id))))
                if c == 3 and row.flags:
                    item.setForeground(QBrush(QColor("#f0b040")))
                    item.setToolTip("\n".join(f"{f}: {FLAG_HELP.get(f, f)}" for f in row.flags))
                self.setItem(r, c, item)
        self.blockSignals(False)

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
