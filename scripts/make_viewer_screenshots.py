"""Regenerate the viewer screenshots in this folder (reads ../shared/data; copies nothing).

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python scripts/make_viewer_screenshots.py
"""
import sys
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "images" / "viewers"

from spine_core.io import load_labels, load_scan  # noqa: E402
from spine_core.meshes import mesh_labels  # noqa: E402
from viewers.mesh_view import MeshView  # noqa: E402
from viewers.slice_view import SliceView  # noqa: E402


def slice_views(app):
    scan = load_scan(DATA / "ct" / "verse007" / "image.nii.gz")
    labels = load_labels(DATA / "ct" / "verse007" / "labels.nii.gz", grid=scan)
    centre = scan.index_to_lps(np.argwhere(labels.array == 20).mean(axis=0))   # through L1
    for plane in ("axial", "sagittal", "coronal"):
        view = SliceView(plane)
        view.resize(420, 520 if plane != "axial" else 420)
        view.set_volume(scan)
        view.set_labels(labels)
        view.set_crosshair(centre)
        view.show()
        app.processEvents()
        view.grab().save(str(OUT / f"slice_{plane}.png"))
        view.close()


def mesh_view(app):
    labels = load_labels(DATA / "masks" / "verse009" / "labels.nii.gz")
    meshes = mesh_labels(labels)
    for name in ("anterior", "lateral"):
        view = MeshView()
        view.resize(440, 640)
        view.show()
        view.set_meshes(meshes)
        view.set_standard_view(name)
        app.processEvents()
        view.grab().save(str(OUT / f"mesh_{name}.png"))
        view.close()


if __name__ == "__main__":
    app = QApplication.instance() or QApplication([])
    slice_views(app)
    mesh_view(app)
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))
