"""The vertebra table: show/hide + name, volume (mL), confidence, centroid (LPS mm) and flags, in
cranio-caudal order. Flag cells are coloured (amber: check; red: low confidence) so they catch the eye."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, is_disc, label_color
from spine_core.volume import LabelMap

COLUMNS = ("Vertebra", "Volume (mL)", "Confidence", "Flags", "Centroid L, P, S (mm)")
NAME, VOLUME, CONFIDENCE, FLAGS, CENTROID = range(5)
FLAG_HELP = {"at edge": "touches the scan border: may be cut off",
             "small": "much smaller than the median vertebra: check the segmentation",
             "gap above": "the level above is missing: check the numbering",
             "low confidence": "the analysis is unsure of this vertebra: check its outline and number",
             "L6 candidate": "a sixth lumbar vertebra (transitional): confirm the count from C2 or the sacrum",
             "T13 candidate": "a thirteenth thoracic vertebra (transitional): confirm the rib count",
             "thoracic (ribs), level not anchored": "it bears ribs, but neither the last rib pair nor the "
                                                    "sacrum is in view: count the levels from C2 or T12"}
SMALL_FRACTION = 0.4        # a vertebra under 40 % of the median volume is flagged
LOW_CONFIDENCE = 0.5
_AMBER, _RED = QColor(120, 84, 10), QColor(130, 30, 30)


@dataclass(frozen=True)
class VertebraRow:
    label_id: int
    name: str
    volume_ml: float
    centroid: np.ndarray          # LPS mm
    flags: tuple[str, ...]
    confidence: float | None = None   # from the analysis; None when loaded or edited since


def craniocaudal_key(label_id: int) -> tuple[int, int]:
    """Vertebrae in anatomical order, each disc after the vertebra above it, unknown ids last."""
    base = label_id - DISC_OFFSET if is_disc(label_id) else label_id
    rank = CRANIOCAUDAL.index(base) if base in CRANIOCAUDAL else len(CRANIOCAUDAL) + base
    return rank, int(is_disc(label_id))


def vertebra_rows(labels: LabelMap, analysis=None) -> list[VertebraRow]:
    """One row per label: voxel counts and centroids from one pass over the labelled voxels.
    ``analysis`` ({id: VertebraResult}) adds confidences and the pipeline's own flags."""
    analysis = analysis or {}
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
        flags.extend(_analysis_flags(label_id, analysis.get(label_id), flags))
        result = analysis.get(label_id)
        centroid = labels.index_to_lps(sums[label_id] / counts[label_id])
        rows.append(VertebraRow(label_id, labels.names.get(label_id, str(label_id)),
                                counts[label_id] * voxel_ml, centroid, tuple(flags),
                                None if result is None else float(result.confidence)))
    return rows


def _analysis_flags(label_id: int, result, flags: list[str]) -> list[str]:
    """Transitional-vertebra candidates, low confidence, and the pipeline's flags not shown yet."""
    extra = {25: ["L6 candidate"], 28: ["T13 candidate"]}.get(label_id, [])
    if result is not None:
        if result.confidence < LOW_CONFIDENCE:
            extra.append("low confidence")
        for flag in result.flags:
            flag = "at edge" if "border" in flag else flag
            extra.append(flag)
    seen = set(flags)
    return [f for f in dict.fromkeys(extra) if f not in seen]


def review_summary(rows: list[VertebraRow]) -> list[str]:
    """One line per flagged vertebra, for the warnings banner."""
    return [f"{row.name}: {', '.join(row.flags)}" for row in rows if row.flags]


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
    """Rows of vertebra_rows(); clicking a row emits ``vertebra_clicked(id)``; the name's check box
    shows or hides the vertebra in 3D (``visibility_changed(id, shown)``)."""

    vertebra_clicked = Signal(int)
    visibility_changed = Signal(int, bool)

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
        low = row.confidence is not None and row.confidence < LOW_CONFIDENCE
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
