"""File > Export plan: which formats, into which folder. A format the open scan cannot give (DICOM-SEG and
RTSTRUCT without a DICOM series) is shown disabled, and says why."""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

# (title, what it writes) per format of spine_core.workflows.plan_export.TARGETS, in the order offered
FORMAT_TEXTS = {
    "dicom-seg": ("DICOM-SEG", "segmentation.dcm: one segment per vertebra on the scan's series (PACS, viewers)"),
    "rtstruct": ("DICOM RTSTRUCT", "rtstruct.dcm: contours on every slice, for planning systems that read RT"),
    "markups": ("3D Slicer markups", "vertebrae.mrk.json: vertebra centroids and screws (lines), LPS mm"),
    "stl": ("STL meshes", "meshes-stl/: a mesh per vertebra and per screw, LPS mm, with manifest.json"),
    "ply": ("PLY meshes", "meshes-ply/: as STL, in PLY"),
    "obj": ("OBJ meshes", "meshes-obj/: as STL, in OBJ"),
    "report": ("Planning report", "report/: report.html and report.pdf: measures, alignment, screws, pictures"),
}


class ExportPlanDialog(QDialog):
    """Formats as check boxes (``unavailable``: format -> why it cannot be written now), the output folder;
    ``chosen_formats()`` and ``folder()`` after accept."""

    def __init__(self, folder: str, chosen, unavailable: dict[str, str], summary: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export plan")
        layout = QVBoxLayout(self)
        if summary:
            intro = QLabel(summary)
            intro.setWordWrap(True)
            layout.addWidget(intro)
        box = QGroupBox("Formats")
        grid = QGridLayout(box)
        self.boxes: dict[str, QCheckBox] = {}
        for row, (fmt, (title, text)) in enumerate(FORMAT_TEXTS.items()):
            check = QCheckBox(title)
            check.setObjectName(f"export_{fmt}")
            why = unavailable.get(fmt, "")
            note = QLabel("Not available: needs the scan's DICOM series (see below)" if why else text)
            if why:
                check.setEnabled(False)
                check.setToolTip(f"{title} is not available: {why}.")
                note.setToolTip(check.toolTip())
                note.setEnabled(False)
            else:
                check.setChecked(fmt in chosen)
                check.setToolTip(text)
            grid.addWidget(check, row, 0)
            grid.addWidget(note, row, 1)
            self.boxes[fmt] = check
        grid.setColumnStretch(1, 1)
        layout.addWidget(box)
        reasons = sorted({why for why in unavailable.values() if why})
        if reasons:
            self.unavailable_label = QLabel("Not available: " + "; ".join(reasons) + ".")
            self.unavailable_label.setObjectName("export_unavailable")
            self.unavailable_label.setWordWrap(True)
            layout.addWidget(self.unavailable_label)
        row_layout = QHBoxLayout()
        row_layout.addWidget(QLabel("Into folder"))
        self.folder_edit = QLineEdit(folder)
        self.folder_edit.setObjectName("export_folder")
        browse = QPushButton("Choose...")
        browse.clicked.connect(self._on_browse_clicked)
        row_layout.addWidget(self.folder_edit, 1)
        row_layout.addWidget(browse)
        layout.addLayout(row_layout)
        layout.addWidget(QLabel("Everything is written in the scan's patient coordinates (LPS, millimetres); file "
                                "names and manifests carry no patient identifiers."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        for check in self.boxes.values():
            check.toggled.connect(self._on_check_toggled)
        self.folder_edit.textChanged.connect(self._on_check_toggled)
        self._on_check_toggled()
        self.setMinimumWidth(760)
        self.adjustSize()

    def chosen_formats(self) -> list[str]:
        return [fmt for fmt, check in self.boxes.items() if check.isEnabled() and check.isChecked()]

    def folder(self) -> str:
        return self.folder_edit.text().strip()

    def _on_check_toggled(self, *_args) -> None:
        self.export_button.setEnabled(bool(self.chosen_formats()) and bool(self.folder()))

    def _on_browse_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder())
        if path:
            self.folder_edit.setText(path)
