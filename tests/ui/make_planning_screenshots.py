"""Pictures of planning in the workstation for docs/WORKSTATION.md (not a test): the demo study measured, one
level's geometry drawn, then screws suggested, one dragged out of its pedicle.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m tests.ui.make_planning_screenshots [STUDY_DIR]

STUDY_DIR: a study folder (dicom/ + labels.nii.gz); default: the demo study `spineplan demo` writes. Writes
docs/images/planning/workstation_measure.png and workstation_screws.png (kept under 300 KB: 8-bit colours).
"""
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "docs/images/planning"
WIDTH = 1360
LEVEL, SCREW = "L3", ("L4", "left")


def _spin(app, seconds: float = 0.3) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app, signal, timeout: float = 600.0) -> None:
    done = []
    signal.connect(lambda *a: done.append(1))
    end = time.time() + timeout
    while not done:
        if time.time() > end:
            raise SystemExit(f"timed out waiting for {signal}")
        app.processEvents()
        time.sleep(0.01)


def _until(app, test, timeout: float = 600.0) -> None:
    end = time.time() + timeout
    while not test():
        if time.time() > end:
            raise SystemExit("timed out")
        app.processEvents()
        time.sleep(0.01)


def _save(app, window, name: str) -> None:
    import io

    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice, Qt

    _spin(app)
    pixmap = window.display.grab_window().scaledToWidth(WIDTH, Qt.TransformationMode.SmoothTransformation)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buffer, "PNG")
    image = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    # a palette of the picture's own colours (octree keeps the small bright overlay colours a median cut drops)
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(OUT / name,
                                                                                                optimize=True)
    print(name, (OUT / name).stat().st_size // 1024, "KB")


def _zoom_on(app, window, lps, zooms=(4.0, 8.0, 8.0)) -> None:
    window.views.set_crosshair(lps)
    _spin(app, 0.1)
    for zoom, view in zip(zooms, window.views.slices.values()):
        view.zoom_to(lps, zoom)


def _camera(window, focus, direction, distance: float = 260.0) -> None:
    plotter = window.views.mesh_view.plotter
    camera = plotter.camera
    camera.focal_point = tuple(float(v) for v in focus)
    camera.position = tuple(float(v) for v in np.asarray(focus) - distance * np.asarray(direction, float))
    camera.up = (0.0, 0.0, 1.0)
    plotter.renderer.ResetCameraClippingRange()
    plotter.render()


def _index(window) -> int:
    return next(k for k, s in enumerate(window.session.screws) if (s.vertebra, s.side) == SCREW)


def measure_picture(app, window) -> None:
    """Measured; one level's endplates, heights and pedicles drawn."""
    window.planning_docks["Measurements"].raise_()
    start = time.time()
    window.measure.measure()
    _wait(app, window.measure.measured)
    print(f"measured in {time.time() - start:.0f} s")
    rows = window.measure.doc["vertebrae"]
    index = next(k for k, row in enumerate(rows) if row["name"] == LEVEL)
    window.measure.show_level(index)
    _zoom_on(app, window, window.views.crosshair())
    _camera(window, rows[index]["centroid"], (-1.0, 0.0, 0.0), 240.0)
    window.statusBar().showMessage(f"{LEVEL}: endplates (blue), body heights (yellow), pedicle isthmus width "
                                   "and axis (pink)")
    _save(app, window, "workstation_measure.png")


def screws_picture(app, window) -> None:
    """Screws suggested (timed), the first check of a vertebra without its bone grid (timed), one screw moved
    out through the pedicle's wall and selected."""
    window.planning_docks["Screws"].raise_()
    start = time.time()
    window.planning.suggest()
    _until(app, lambda: window.session.screws and not window.tasks.is_busy())
    _until(app, lambda: all(s.grade for s in window.session.screws))
    print(f"suggested in {time.time() - start:.0f} s (pedicles from Measure)")
    start = time.time()
    window.planning.checks.grids.clear()
    window.planning.set_diameter(_index(window), window.session.screws[_index(window)].diameter_mm)
    _until(app, lambda: all(s.grade for s in window.session.screws))
    print(f"first check in a vertebra without its bone grid: {time.time() - start:.1f} s (in a Worker)")
    window.edits.undo()
    screw = window.session.screws[_index(window)]
    window.planning.move_end(_index(window), "tip", np.asarray(screw.tip_lps) + (7.0, 0.0, 0.0))
    window.measure.clear_overlay()
    window.planning.select(_index(window))
    _zoom_on(app, window, window.views.crosshair())
    _camera(window, window.views.crosshair(), (-0.35, -0.9, -0.25), 240.0)
    _save(app, window, "workstation_screws.png")


def main(folder) -> None:
    import os
    import tempfile

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme

    os.environ["SPINEPLAN_DATA_DIR"] = tempfile.mkdtemp()
    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    window = MainWindow(QSettings(f"{os.environ['SPINEPLAN_DATA_DIR']}/s.ini", QSettings.Format.IniFormat),
                        show_dialogs=False)
    window.resize(1600, 900)
    window.show()
    window.resizeDocks([window.results_dock], [560], Qt.Orientation.Horizontal)
    window.views.splitter.setSizes([330, 215, 215, 280])
    window.open_path(folder)
    _wait(app, window.study_ready)
    measure_picture(app, window)
    screws_picture(app, window)
    window.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        study = Path(sys.argv[1])
    else:
        from app.cmd_demo import default_demo_dir

        study = default_demo_dir()
    main(study)
