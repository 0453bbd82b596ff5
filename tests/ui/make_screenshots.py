"""Screenshots for docs/WORKSTATION.md (not a test): a real CT through the window, step by step.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m tests.ui.make_screenshots CT_FOLDER

CT_FOLDER holds image.nii.gz and labels.nii.gz (e.g. ../shared/data/ct/verse007). Until trained
models ship, "Analyze" runs a stand-in that returns the reference labels with invented
confidences (one low), so that the flags and the banner can be shown; the pictures say so.
"""
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "docs/images/ui"
WIDTH = 1360


def reference_pipeline(labels_path):
    from spine_core.io import load_labels
    from spine_core.pipeline.api import SegmentResult, VertebraResult

    def segment(volume, options, progress):
        from ui.jobs import labels_on_grid

        progress.update(0.2, "Segmenting vertebrae")
        labels, _ = labels_on_grid(load_labels(labels_path), volume)
        ids = [i for i in labels.ids() if i < 100]
        vertebrae = [VertebraResult(i, labels.names[i], labels.index_to_lps(np.argwhere(labels.array == i).mean(0)),
                                    0.42 if n == 1 else 0.95, 0.0) for n, i in enumerate(ids)]
        return SegmentResult(labels, vertebrae, provider="reference labels (stand-in pipeline)",
                             warnings=["stand-in pipeline: reference labels, invented confidences"])
    return segment


def _save(app, window, name, pixmap=None):
    from PySide6.QtCore import Qt

    for _ in range(5):
        app.processEvents()
    pixmap = pixmap or window.display.grab_window()
    pixmap = pixmap.scaledToWidth(WIDTH, Qt.TransformationMode.SmoothTransformation)
    pixmap.save(str(OUT / name))
    print(name, (OUT / name).stat().st_size // 1024, "KB")


def _wait(app, window, signal):
    import time

    done = []
    signal.connect(lambda *a: done.append(1))
    while not done:
        app.processEvents()
        time.sleep(0.005)


def screenshot_window(segment=None, size=(1600, 900)):
    """(app, window): a dark-themed main window with its own throwaway data folder, shown at ``size``."""
    import os
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme

    os.environ["SPINEPLAN_DATA_DIR"] = tempfile.mkdtemp()
    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    settings = QSettings(f"{os.environ['SPINEPLAN_DATA_DIR']}/s.ini", QSettings.Format.IniFormat)
    extra = {"segment": segment} if segment is not None else {}
    window = MainWindow(settings, show_dialogs=False, **extra)
    window.resize(*size)
    window.show()
    return app, window


def main(folder) -> None:
    folder = Path(folder)
    app, window = screenshot_window(reference_pipeline(folder / "labels.nii.gz"))
    window.open_path(folder / "image.nii.gz")
    _wait(app, window, window.study_ready)
    _save(app, window, "loaded.png")
    window.analyze()
    _wait(app, window, window.study_ready)
    _save(app, window, "analysed.png")
    row = window.analysis.rows[len(window.analysis.rows) // 2]
    window.display.pick_vertebra(row.label_id)
    window.edits.paint_stroke([row.centroid + (d, 12, 0) for d in np.linspace(-8, 8, 9)], plane="axial")
    _wait(app, window, window.busy_changed)
    view = window.views.slices["axial"]
    view.set_zoom(1.5)
    view._brush_at = view.lps_to_widget(row.centroid + (8, 12, 0))
    window.statusBar().showMessage("Paint brush: drag to add voxels to " + row.name + " (Ctrl+Z undoes the stroke)")
    _save(app, window, "brush.png")
    mesh_view = window.views.mesh_view
    mesh_view.set_standard_view("lateral")
    camera = mesh_view.plotter.camera
    camera.focal_point = tuple(row.centroid)
    camera.position = tuple(np.array(row.centroid) + (-300, 0, 0))
    mesh_view.plotter.render()
    window.display.save_3d_screenshot(OUT / "closeup_3d.png")
    print("closeup_3d.png", (OUT / "closeup_3d.png").stat().st_size // 1024, "KB")
    window.close()


if __name__ == "__main__":
    main(sys.argv[1])
