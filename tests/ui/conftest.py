"""UI tests: pytest-qt under Xvfb (pytest-xvfb), settings in a temporary file, windows closed."""
import os

import pytest


@pytest.fixture
def display():
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        pytest.skip("no X display (install Xvfb and pytest-xvfb)")


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    return QSettings(str(tmp_path / "spineplan.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, display, settings):
    """A shown MainWindow with dialogs off (errors are signalled, not shown)."""
    from ui.main_window import MainWindow

    win = MainWindow(settings=settings, show_dialogs=False)
    win.resize(1200, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.deleteLater()
    qtbot.wait(10)
