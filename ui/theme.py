"""Dark workstation theme: Fusion style, a dark palette and a few style rules."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

_STYLE = """
QMainWindow, QDockWidget { background: #16181c; }
QSplitter::handle { background: #2a2e35; }
QSplitter::handle:horizontal { width: 3px; }
QSplitter::handle:vertical { height: 3px; }
QLabel#ViewTitle { background: #23272e; color: #c8ccd4; padding: 2px 6px; font-weight: bold; }
QTableWidget { background: #1b1e23; alternate-background-color: #20242a; gridline-color: #2a2e35;
               selection-background-color: #2f6db5; }
QHeaderView::section { background: #262a31; color: #c8ccd4; border: 0; padding: 3px 6px; }
QStatusBar { background: #1d2026; color: #c8ccd4; }
QToolBar { background: #1d2026; border: 0; spacing: 4px; }
QProgressBar { border: 1px solid #3a3f48; border-radius: 3px; text-align: center; height: 14px; }
QProgressBar::chunk { background: #2f6db5; }
QLabel#WarningsBanner { background: #4a3510; color: #ffe3a0; border: 1px solid #8a6420;
                        padding: 4px 6px; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1d2026", QPalette.ColorRole.WindowText: "#d8dbe0",
        QPalette.ColorRole.Base: "#1b1e23", QPalette.ColorRole.AlternateBase: "#20242a",
        QPalette.ColorRole.ToolTipBase: "#2a2e35", QPalette.ColorRole.ToolTipText: "#e8e8e8",
        QPalette.ColorRole.Text: "#d8dbe0", QPalette.ColorRole.Button: "#2a2e35",
        QPalette.ColorRole.ButtonText: "#d8dbe0", QPalette.ColorRole.BrightText: "#ff5555",
        QPalette.ColorRole.Highlight: "#2f6db5", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#5a9bea", QPalette.ColorRole.PlaceholderText: "#7a808a",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6a707a"))
    app.setPalette(palette)
    app.setStyleSheet(_STYLE)
