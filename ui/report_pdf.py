"""The planning report printed to PDF with Qt's rich text engine (QTextDocument + QPdfWriter): no browser,
no network, the pictures from the page's data URIs. spine_core stays Qt-free and takes this as a callable
(spine_core.workflows.plan_export.export_plan(..., pdf=print_pdf)); the CLI and the workstation both pass it.

It paints on a QPdfWriter, not on a widget, so it may run in a Worker's thread. Without a Qt application
(the CLI) it makes a QGuiApplication, offscreen where there is no display.
"""
from __future__ import annotations

import os
from pathlib import Path

PAGE_MARGIN_MM = 12.0
RESOLUTION_DPI = 150


def ensure_gui_application():
    """The running Qt application, or a new QGuiApplication (offscreen without a display)."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication(["spineplan"])
    return app


def print_pdf(html_text: str, path) -> Path:
    """``html_text`` as an A4 PDF at ``path`` (written in place: the caller writes into a staging folder)."""
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    ensure_gui_application()
    path = Path(path)
    writer = QPdfWriter(str(path))
    writer.setTitle("SpinePlan planning report")
    writer.setCreator("SpinePlan")
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(*(PAGE_MARGIN_MM,) * 4), QPageLayout.Unit.Millimeter))
    document = QTextDocument()
    document.setHtml(html_text)
    document.setPageSize(writer.pageLayout().paintRectPixels(writer.resolution()).size().toSizeF())
    document.print_(writer)
    del writer                        # the file is complete once the writer is gone
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError("Qt wrote no PDF")
    return path
