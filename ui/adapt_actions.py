"""Tools > Adapt to local scans (AdaptController): one non-modal AdaptDialog (ui/adapt_dialog.py) per window,
shown again with its state when chosen again; its notices go to the status bar, and a training still
running when the window closes is stopped (its checkpoint kept) before the window goes."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from ui.adapt_dialog import AdaptDialog
from ui.host import Host
from ui.preferences import Preferences
from ui.retrain_process import retrain_command


class AdaptController(QObject):
    def __init__(self, host: Host, prefs: Preferences, command: Callable = retrain_command) -> None:
        """``command(request) -> (program, arguments)``: the subprocess the dialog runs (tests: a fake)."""
        super().__init__(host.window())
        self.host, self.prefs, self.command = host, prefs, command
        self.dialog: AdaptDialog | None = None

    def open_dialog(self) -> AdaptDialog:
        if self.dialog is None:
            self.dialog = AdaptDialog(self.host.window(), self.command, self.prefs.device, self.prefs.last_dir)
            self.dialog.notice.connect(lambda text: self.host.show_status(text, 20000))
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def running(self) -> bool:
        return self.dialog is not None and self.dialog.running()

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.shutdown()
