"""Dialogs: pick one of several DICOM series; choose where and how to export meshes; the preferences."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spine_core.export import FORMATS
from spine_core.pipeline import registry
from ui.models_panel import ModelsPanel


class SeriesPickerDialog(QDialog):
    """Lists series (description, modality, slices, spacing); ``chosen_uid()`` after accept."""

    def __init__(self, series, parent: QWidget | None = None, default_uid: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self.series = list(series)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"This folder holds {len(self.series)} series. Choose the one to open:"))
        self.table = QTableWidget(len(self.series), 4, self)
        self.table.setHorizontalHeaderLabels(("Description", "Modality", "Slices", "Spacing (mm)"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for r, info in enumerate(self.series):
            spacing = f"{info.pixel_spacing[1]:.3g} x {info.pixel_spacing[0]:.3g} x {info.slice_spacing:.3g}"
            plane = "" if info.is_axial else " (non-axial)"
            cells = (f"{info.description or 'no description'}{plane}", info.modality or "?",
                     str(info.n_slices), spacing)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"Series UID {info.uid}")
                self.table.setItem(r, c, item)
        uids = [s.uid for s in self.series]
        self.table.selectRow(uids.index(default_uid) if default_uid in uids else 0)
        self.table.doubleClicked.connect(self.accept)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 280)

    def chosen_uid(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.series[rows[0].row()].uid if rows else None


class ExportMeshesDialog(QDialog):
    """Folder and format (STL, PLY, OBJ) of a mesh export."""

    def __init__(self, folder: str, fmt: str = "stl", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export meshes")
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit(folder)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.folder_edit)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.format_box = QComboBox()
        self.format_box.addItems([f.upper() for f in FORMATS])
        self.format_box.setCurrentIndex(FORMATS.index(fmt) if fmt in FORMATS else 0)
        form.addRow("Format", self.format_box)
        form.addRow(QLabel("One file per vertebra in patient (LPS) millimetres, with manifest.json."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(520, 140)

    def _on_browse_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export meshes into", str(Path(self.folder_edit.text()).parent))
        if chosen:
            self.folder_edit.setText(str(Path(chosen) / "meshes"))

    def folder(self) -> Path:
        return Path(self.folder_edit.text()).expanduser()

    def format(self) -> str:
        return FORMATS[self.format_box.currentIndex()]


METHODS = {p.name: p.description for p in registry.PIPELINES if p.in_preferences}


def _installed(model_id: str) -> bool:
    """Whether the analysis would find the model; with an unreadable site registry (the Models tab
    says so) the shipped folder alone answers, so Preferences still opens."""
    from spine_core.errors import SpineError
    from spine_core.models.registry import SHIPPED_FOLDER
    from spine_core.pipeline.models import ModelSet

    try:
        return ModelSet().has(model_id)
    except SpineError:
        return (SHIPPED_FOLDER / f"{model_id}.onnx").exists()


def mr_method_box(current: str, installed=None) -> QComboBox:
    """The MR methods; one whose models are not installed (``installed(model_id)`` false) is shown
    greyed with the reason, so a site sees it exists and what it needs."""
    if installed is None:
        installed = _installed
    box = QComboBox()
    for method in registry.MR_PIPELINES:
        missing = [m for m in method.models if not installed(m)]
        box.addItem(method.description + (" (not installed)" if missing else ""), method.name)
        item = box.model().item(box.count() - 1)
        if missing:
            item.setEnabled(False)
            item.setToolTip(f"Needs the model{'s' * (len(missing) > 1)} {', '.join(missing)}: register "
                            "them under Models, or install a release that ships them")
    index = box.findData(current)
    if index < 0 or not box.model().item(index).isEnabled():
        index = box.findData(registry.MR_DEFAULT)
    box.setCurrentIndex(max(index, 0))
    box.setToolTip("Used when the open scan is an MR; compare the methods in docs/BENCHMARKS.md (MR)")
    return box


class PreferencesDialog(QDialog):
    """General: analysis device (auto / cpu / gpu), analysis method (CT), MR method (a method whose models
    are not installed is listed, not choosable), and the autosave interval (applied on OK). Models (ui/models_panel.py): the shipped and site models and which one runs by default (changed at
    once). ``tab``: "general" or "models", the tab shown first; ``site``: the SiteModels shown (default:
    the site folder)."""

    def __init__(self, device: str, autosave_s: int, parent: QWidget | None = None,
                 method: str = registry.DEFAULT, tab: str = "general", site=None,
                 mr_method: str = registry.MR_DEFAULT, installed=None) -> None:
        from PySide6.QtWidgets import QSpinBox, QTabWidget

        from spine_core.pipeline.runtime import DEVICES

        super().__init__(parent)
        self.setWindowTitle("Preferences")
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        general = QWidget()
        form = QFormLayout(general)
        self.device_box = QComboBox()
        self.device_box.addItems(list(DEVICES))
        self.device_box.setCurrentText(device if device in DEVICES else "auto")
        self.device_box.setToolTip("auto: the GPU where its libraries load, else the CPU")
        form.addRow("Analysis device", self.device_box)
        self.method_box = QComboBox()
        for key, text in METHODS.items():
            self.method_box.addItem(text, key)
        self.method_box.setCurrentIndex(max(self.method_box.findData(registry.normalise(method)), 0))
        self.method_box.setToolTip("Both number the vertebrae and flag what needs review; compare them in "
                                   "docs/BENCHMARKS.md")
        form.addRow("CT analysis method", self.method_box)
        self.mr_method_box = mr_method_box(mr_method, installed)
        form.addRow("MR method", self.mr_method_box)
        self.autosave_box = QSpinBox()
        self.autosave_box.setRange(5, 3600)
        self.autosave_box.setSuffix(" s")
        self.autosave_box.setValue(int(autosave_s))
        form.addRow("Autosave after a change", self.autosave_box)
        self.tabs.addTab(general, "General")
        self.models_panel = ModelsPanel(site=site)
        self.tabs.addTab(self.models_panel, "Models")
        self.tabs.setCurrentIndex(1 if tab == "models" else 0)
        layout.addWidget(self.tabs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(820, 440)

    def device(self) -> str:
        return self.device_box.currentText()

    def method(self) -> str:
        return str(self.method_box.currentData())

    def autosave_s(self) -> int:
        return int(self.autosave_box.value())

    def mr_method(self) -> str:
        return str(self.mr_method_box.currentData())
