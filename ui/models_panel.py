"""Preferences > Models: the shipped and the site's models side by side, as `spineplan models list` shows
them (app/cmd_models.py), and the choice of which one an analysis runs by default.

One row per model id: the shipped model's version and short sha256, the site's (registered at this site,
e.g. adapted to local scans with Tools > Adapt to local scans), and which of them runs by default. The
selected row shows each card's training summary (command, steps, time, hardware). **Use site model**,
**Use shipped** and **Roll back** change the site's active set at once (spine_core.models.site, the same
calls as `spineplan models use | use shipped:ID | rollback`); an altered site model is never made active.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QMessageBox, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from spine_core.errors import SpineError
from spine_core.models.card import ModelCard
from spine_core.models.registry import SHIPPED_FOLDER, ModelRegistry, ModelStatus, TrustedModels, model_statuses
from spine_core.models.shipped import SHIPPED_SHA256
from spine_core.models.site import SiteModels
from ui.tables import style_rows

COLUMNS = ("Model", "Shipped (version, sha256)", "Site (version, sha256)", "Runs by default")


@dataclass
class ModelRow:
    model_id: str
    shipped: ModelStatus | None
    site: ModelStatus | None
    active: str                 # "site", "shipped" or "-"
    summaries: dict             # source -> the card's training summary


def training_summary(card: ModelCard) -> str:
    """One line per fact of the card's ``training``: steps and time, hardware, the exact command, the parent."""
    training = card.training if isinstance(card.training, dict) else {}
    facts = []
    steps, wall = training.get("steps"), training.get("wall_time_s", training.get("wall_s"))
    if steps is not None:
        facts.append(f"{steps} steps" + (f" in {float(wall) / 60:.0f} min" if isinstance(wall, (int, float)) else ""))
    if training.get("hardware"):
        facts.append(f"on {training['hardware']}")
    if training.get("command"):
        facts.append(f"command: {training['command']}")
    parent = training.get("parent")
    if isinstance(parent, dict) and parent.get("id"):
        facts.append(f"adapted from {parent['id']} ({str(parent.get('sha256', ''))[:12]})")
    return "\n".join(facts) or "the card records no training"


def model_rows(site: SiteModels) -> list[ModelRow]:
    """The side-by-side table of `spineplan models list`, one row per model id."""
    statuses, active, entries = model_statuses(site), site.active(), site.entries()
    hashes = {"shipped": SHIPPED_SHA256, "site": entries}
    folders = {"shipped": SHIPPED_FOLDER, "site": site.folder}
    by_id: dict[str, dict] = {}
    for status in statuses:
        by_id.setdefault(status.model_id, {})[status.source] = status
    rows = []
    for model_id, found in sorted(by_id.items()):
        summaries = {}
        for source, status in found.items():
            try:
                summaries[source] = training_summary(ModelCard.load(folders[source] / f"{model_id}.json"))
            except SpineError as exc:
                summaries[source] = str(exc)
            summaries[source + "-sha"] = str(hashes[source].get(model_id, {}).get("onnx", ""))[:12]
        used = "site" if model_id in active else ("shipped" if "shipped" in found else "-")
        rows.append(ModelRow(model_id, found.get("shipped"), found.get("site"), used, summaries))
    return rows


class ModelsPanel(QWidget):
    """``site``: the SiteModels it reads and changes (default: the site folder)."""

    changed = Signal()                # the active set changed

    def __init__(self, parent: QWidget | None = None, site: SiteModels | None = None) -> None:
        super().__init__(parent)
        self.site = site or SiteModels()
        self.rows: list[ModelRow] = []
        self.last_error = self.load_error = ""
        self._history: list[list[str]] = []
        layout = QVBoxLayout(self)
        intro = QLabel("Shipped models come with SpinePlan; site models were registered here (e.g. adapted to "
                       "this hospital's scans with Tools > Adapt to local scans). Changes take effect at once, "
                       "for new analyses; Roll back undoes the last one.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = style_rows(QTableWidget(0, len(COLUMNS)))
        for column, text in enumerate(COLUMNS):
            self.table.setHorizontalHeaderItem(column, QTableWidgetItem(text))
        self.table.itemSelectionChanged.connect(self._on_item_selection_changed)
        layout.addWidget(self.table, 1)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setMinimumHeight(96)
        layout.addWidget(self.details)
        row = QHBoxLayout()
        self.use_site_button = QPushButton("Use site model")
        self.use_site_button.clicked.connect(self._on_use_site_clicked)
        self.use_shipped_button = QPushButton("Use shipped")
        self.use_shipped_button.clicked.connect(self._on_use_shipped_clicked)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Restore the previous set of active models")
        self.rollback_button.clicked.connect(self._on_rollback_clicked)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        for button in (self.use_site_button, self.use_shipped_button, self.rollback_button):
            row.addWidget(button)
        row.addWidget(self.status_label, 1)
        layout.addLayout(row)
        self.refresh()

    # --- the table ----------------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        select = select or self.selected_id()
        try:
            self.rows, self._history = model_rows(self.site), self.site.history()
            self.load_error = ""
        except SpineError as exc:                  # e.g. an unreadable registry.json: say how to fix it
            self.rows, self._history, self.load_error = [], [], str(exc)
        if self.load_error or self.status_label.property("error"):
            self.status_label.setText(self.load_error)
            self.status_label.setProperty("error", bool(self.load_error))
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            cells = (row.model_id, self._cell(row, "shipped"), self._cell(row, "site"), row.active)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                source = {1: "shipped", 2: "site"}.get(c)
                if source and source in row.summaries:
                    item.setToolTip(row.summaries[source])
                if c == 3 or (source == row.active):
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        ids = [row.model_id for row in self.rows]
        if select in ids:
            self.table.selectRow(ids.index(select))
        self._on_item_selection_changed()

    @staticmethod
    def _cell(row: ModelRow, source: str) -> str:
        status = getattr(row, source)
        if status is None:
            return "-"
        sha = row.summaries.get(source + "-sha", "")
        return f"{status.version}  {sha}" + ("  REFUSED" if status.problem else "")

    def selected(self) -> ModelRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def selected_id(self) -> str | None:
        row = self.selected() if self.rows else None
        return row.model_id if row is not None else None

    def _on_item_selection_changed(self) -> None:
        row = self.selected()
        has_site = row is not None and row.site is not None and not row.site.problem
        self.use_site_button.setEnabled(has_site and row.active != "site")
        self.use_shipped_button.setEnabled(row is not None and row.active == "site" and row.shipped is not None)
        self.rollback_button.setEnabled(bool(self._history))
        self.details.setText(self._details(row) if row is not None else "Select a model to see how it was trained.")

    @staticmethod
    def _details(row: ModelRow) -> str:
        parts = [f"<b>{escape(row.model_id)}</b>: the {row.active} model runs by default."]
        for source in ("shipped", "site"):
            status = getattr(row, source)
            if status is None:
                continue
            text = escape(row.summaries.get(source, "")).replace("\n", "; ")
            problem = f" <span style='color:#c62828'>Refused: {escape(status.problem)}</span>" if status.problem else ""
            parts.append(f"<b>{source.capitalize()}</b> {escape(status.version)}: {text}.{problem}")
        return "<br>".join(parts)

    # --- the choices --------------------------------------------------------------------------
    def _change(self, action, select: str | None) -> None:
        try:
            before, after = action()
        except SpineError as exc:
            self._warn(str(exc))
            return
        self.status_label.setText("Active site models: " + (", ".join(after) or "none (all shipped)")
                                  + (f" (before: {', '.join(before) or 'none'})." if before != after else "."))
        self.refresh(select)
        if before != after:
            self.changed.emit()

    def _on_use_site_clicked(self) -> None:
        row = self.selected()
        if row is None:
            return

        def use():
            ModelRegistry(self.site.folder, TrustedModels(self.site)).verify(row.model_id)   # never an altered file
            return self.site.use(row.model_id)

        self._change(use, row.model_id)

    def _on_use_shipped_clicked(self) -> None:
        row = self.selected()
        if row is not None:
            self._change(lambda: self.site.use_shipped(row.model_id), row.model_id)

    def _on_rollback_clicked(self) -> None:
        self._change(self.site.rollback, self.selected_id())

    def _warn(self, text: str) -> None:
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Warning, "SpinePlan", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
