"""Workstation responsiveness: open a DICOM series in the window, scroll slices, move the 3D camera.

    xvfb-run -a .venv/bin/python benchmarks/bench_gui.py [--slices 300] [--meshes 25] [--json OUT]

1. time to first render: ``open_path`` on a 512 x 512 x N series until the window is ready and
   the three slice views have painted (target <= 3 s for N = 300);
2. slice scrolling: axial ``set_slice`` + synchronous repaint, frames per second (target >= 30);
3. 3D interaction: N vertebra-like meshes, camera azimuth steps, render time per move.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np


def _series(folder, slices: int) -> None:
    from spine_core.io.dicom_writer import write_dicom_series
    from spine_core.volume import Volume, affine_from_geometry

    rng = np.random.default_rng(0)
    array = (rng.normal(0, 30, (512, 512, slices)) + 40).astype(np.int16)
    array[200:300, 220:320, :] += 600                      # a "spine" column
    write_dicom_series(Volume(array, affine_from_geometry([0.8, 0.8, 1.0], None, [-200, -200, -100])), folder)


def _spine_meshes(count: int):
    from spine_core.meshes import mesh_labels
    from spine_core.volume import LabelMap, affine_from_geometry

    shape = (60, 60, 22 * count + 10)
    ijk = np.indices(shape, dtype=np.float32)
    array = np.zeros(shape, np.int16)
    for n in range(count):
        centre = (30, 30 + 6 * np.sin(n / 4), 16 + 22 * n)
        inside = ((ijk[0] - centre[0]) / 18) ** 2 + ((ijk[1] - centre[1]) / 14) ** 2 + ((ijk[2] - centre[2]) / 8) ** 2
        array[inside <= 1] = count - n
    return mesh_labels(LabelMap(array, affine_from_geometry([1.0, 1.0, 1.0])))


def _time_open(qtbot_app, window, folder) -> float:
    done = []
    window.study_ready.connect(lambda: done.append(time.perf_counter()))
    start = time.perf_counter()
    window.open_path(folder)
    while not done:
        qtbot_app.processEvents()
        time.sleep(0.001)
    for view in window.views.slices.values():
        view.repaint()
    return time.perf_counter() - start


def _scroll_fps(window, frames: int = 120) -> float:
    view = window.views.slices["axial"]
    start = time.perf_counter()
    for n in range(frames):
        view.set_slice(n % view.slice_count())
        view.repaint()
    return frames / (time.perf_counter() - start)


def _render_ms(window, meshes, moves: int = 30) -> tuple[float, float]:
    mesh_view = window.views.mesh_view
    mesh_view.set_meshes(meshes, reset_camera=True)
    plotter = mesh_view.plotter
    times = []
    for _ in range(moves):
        start = time.perf_counter()
        plotter.camera.azimuth += 6
        plotter.render()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), 1000 * float(np.max(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--meshes", type=int, default=25)
    parser.add_argument("--json")
    args = parser.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPINEPLAN_DATA_DIR"] = tmp
        _series(f"{tmp}/dicom", args.slices)
        window = MainWindow(settings=QSettings(f"{tmp}/s.ini", QSettings.Format.IniFormat), show_dialogs=False)
        window.resize(1600, 900)
        window.show()
        app.processEvents()
        open_s = _time_open(app, window, f"{tmp}/dicom")
        fps = _scroll_fps(window)
        meshes = _spine_meshes(args.meshes)
        median_ms, worst_ms = _render_ms(window, meshes)
        triangles = sum(m.n_faces for m in meshes.values())
        window.close()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "slices": args.slices, "open_to_first_render_s": round(open_s, 2),
              "axial_scroll_fps": round(fps, 1), "meshes": len(meshes), "triangles": triangles,
              "render_per_camera_move_ms_median": round(median_ms, 1),
              "render_per_camera_move_ms_worst": round(worst_ms, 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
