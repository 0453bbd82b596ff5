"""Render an HTML file (e.g. a batch's report.html) to a PNG with QtWebEngine, to look at it without a browser.

    python benchmarks/render_html.py report.html out.png [--width 1400] [--max-height 4000] [--delay-ms 600]
                                     [--js "document.querySelectorAll('th')[2].click()"]

The page is laid out at ``--width`` and captured whole (its scroll height, at most ``--max-height``);
``--js`` runs a script once the page has loaded (click a header, type a filter) before the capture.

QtWebEngine ships in PySide6-Addons, which SpinePlan does not depend on: run this with a throwaway
venv that has it, the same Qt version as the project's PySide6, e.g.

    python3 -m venv /tmp/webvenv
    V=$(.venv/bin/python -c 'import PySide6; print(PySide6.__version__)')
    /tmp/webvenv/bin/pip install PySide6-Essentials==$V PySide6-Addons==$V
    xvfb-run -a -s "-screen 0 1600x1200x24" /tmp/webvenv/bin/python benchmarks/render_html.py report.html out.png

Without a display, run it under xvfb-run as above. The Chromium sandbox is turned off (it refuses to
run as root in containers) and so is the GPU; the script imports nothing of SpinePlan.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def render(html: Path, png: Path, width: int = 1400, max_height: int = 4000, delay_ms: int = 600,
           script: str = "") -> Path:
    os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu")
    from PySide6.QtCore import QTimer, QUrl
    from PySide6.QtWebEngineWidgets import QWebEngineView
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    view = QWebEngineView()
    view.resize(width, 900)
    view.show()
    outcome: dict = {}

    def grab() -> None:
        outcome["saved"] = view.grab().save(str(png))
        app.quit()

    def sized(height) -> None:
        view.resize(width, max(200, min(int(height or 900), max_height)))
        QTimer.singleShot(delay_ms, grab)

    def loaded(ok: bool) -> None:
        if not ok:
            outcome["error"] = f"could not load {html}"
            app.quit()
            return
        view.page().runJavaScript(f"{script};document.documentElement.scrollHeight", 0, sized)

    view.loadFinished.connect(loaded)
    view.load(QUrl.fromLocalFile(str(html.resolve())))
    QTimer.singleShot(60_000, app.quit)          # never hang a script
    app.exec()
    if not outcome.get("saved"):
        raise SystemExit(outcome.get("error", f"rendering {html} failed or timed out"))
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--max-height", type=int, default=4000)
    parser.add_argument("--delay-ms", type=int, default=600, help="wait after loading (thumbnails decode lazily)")
    parser.add_argument("--js", default="", help="a script to run on the loaded page before the capture")
    args = parser.parse_args()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    print(render(args.html, args.png, args.width, args.max_height, args.delay_ms, args.js))


if __name__ == "__main__":
    main()
