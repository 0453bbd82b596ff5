"""UI tests: pytest-qt under Xvfb (pytest-xvfb), settings in a temporary file, windows closed."""
import os

import pytest


@pytest.fixture
def display():
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        pytest.skip("no X display (install Xvfb and pytest-xvfb)")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Autosaves and recovery markers of every test go to its own folder, never the user's."""
    monkeypatch.setenv("SPINEPLAN_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    return QSettings(str(tmp_path / "spineplan.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, display, settings):
    """A shown MainWindow with dialogs off (errors are signalled, not shown), analysing with the
    test pipeline (tests/ui/fake_pipeline.py)."""
    from tests.ui.fake_pipeline import segment
    from ui.main_window import MainWindow

    win = MainWindow(settings=settings, show_dialogs=False, segment=segment)
    win.resize(1200, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.deleteLater()
    qtbot.wait(10)
