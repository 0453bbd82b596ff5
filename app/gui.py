"""The GUI launcher: QApplication, theme, exception hook, the main window; scripted screenshots."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("spineplan")
EXIT_OK, EXIT_BAD_INPUT = 0, 2
SETTLE_MS = 300          # let the views paint once more before a scripted screenshot


def display_problem() -> str | None:
    """Why no window can be shown here, or None. The 3D view needs a real display (X or Wayland)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display found: the SpinePlan window needs a desktop session. Run it from the "
            "desktop, or on a server under a virtual display (xvfb-run -a spineplan gui ...).")


def install_exception_hook(window) -> None:
    """Unexpected exceptions in slots go to the window's error reporter (traceback to a log file)."""
    previous = sys.excepthook

    def hook(kind, exc, tb):
        if not isinstance(exc, Exception):
            previous(kind, exc, tb)
            return
        try:
            window.errors.report(exc.with_traceback(tb))
        except Exception:  # noqa: BLE001 - the hook itself must never raise
            previous(kind, exc, tb)

    sys.excepthook = hook


def run_gui(path=None, labels=None, screenshot=None, quit_after: bool = False, analyze: bool = False,
            series: str | None = None) -> int:
    problem = display_problem()
    if problem:
        print(f"spineplan: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.logs import write_crash_report
    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("SpinePlan")
    app.setApplicationName("SpinePlan")
    apply_dark_theme(app)
    window = MainWindow(show_dialogs=not quit_after, crash_report=write_crash_report)
    window.ask_series = not quit_after
    install_exception_hook(window)
    window.show()
    outcome = {"code": EXIT_OK}
    pending = {"analyze": bool(analyze and path)}

    def finish(code: int) -> None:
        outcome["code"] = code
        if screenshot and code == EXIT_OK:
            out = window.save_screenshot(screenshot)
            print(f"Saved a screenshot of the window to {out}")
        if quit_after:
            window.close()
            app.exit(code)

    def on_ready() -> None:
        if pending["analyze"]:
            pending["analyze"] = False
            if window.analyze() is None:
                on_failed(window.errors.last_message.replace("\n\n", " "))
            return
        QTimer.singleShot(SETTLE_MS, lambda: finish(EXIT_OK))

    def on_failed(message: str) -> None:
        print(f"spineplan: {message}", file=sys.stderr)
        finish(EXIT_BAD_INPUT)

    window.study_ready.connect(on_ready)
    window.task_failed.connect(on_failed)
    if path and Path(path).suffix == ".spineplan":
        window.open_plan(Path(path))
    elif path:
        window.open_path(Path(path), labels, series=series)
    elif quit_after or screenshot:
        QTimer.singleShot(SETTLE_MS, lambda: finish(EXIT_OK))
    else:
        QTimer.singleShot(0, window.offer_recovery)
    code = app.exec()
    return outcome["code"] if quit_after else code
