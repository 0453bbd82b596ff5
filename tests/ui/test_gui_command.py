"""`spineplan gui PATH --screenshot OUT --quit` as a user runs it (a subprocess under the test display)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.ui.study import synthetic_study

ROOT = Path(__file__).resolve().parents[2]


def _spineplan(tmp_path, *args, env=None):
    full = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=full, timeout=120)


def test_gui_screenshot_and_quit(display, tmp_path):
    from PySide6.QtGui import QImage

    scan, labels, _ = synthetic_study(tmp_path)
    out = tmp_path / "window.png"
    result = _spineplan(tmp_path, "gui", scan, "--labels", labels, "--screenshot", out, "--quit")
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert image.width() > 600 and image.height() > 400
    values = np.array([[image.pixelColor(x, y).value() for x in range(0, image.width(), 9)]
                       for y in range(0, image.height(), 9)])
    assert values.std() > 10 and len(np.unique(values)) > 20


def test_gui_without_display_exits_2_with_a_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "app", "gui", "--quit"], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "no display" in result.stderr and "Traceback" not in result.stderr


def test_gui_on_missing_path_exits_2(tmp_path):
    result = _spineplan(tmp_path, "gui", tmp_path / "nope", "--quit")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_help_stays_qt_free():
    code = "import sys; from app.cli import build_parser; build_parser(); print('PySide6' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


FAKE = {"SPINEPLAN_PIPELINE": "tests.ui.fake_pipeline:segment"}


def test_gui_analyze_screenshot_and_quit(display, tmp_path):
    from PySide6.QtGui import QImage

    scan, _labels, _ = synthetic_study(tmp_path)
    out = tmp_path / "analysed.png"
    result = _spineplan(tmp_path, "gui", scan, "--analyze", "--screenshot", out, "--quit", env=FAKE)
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert image.width() > 600
    pixels = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(0, image.width(), 3)]
                       for y in range(0, image.height(), 3)])
    amber = (np.abs(pixels - (74, 53, 16)).sum(axis=-1) < 20).sum()   # the warnings banner is shown
    assert amber > 50


def test_gui_analyze_exits_2_when_unavailable_or_on_bad_input(display, tmp_path):
    from spine_core.io import save_volume
    from tests.conftest import make_volume

    scan, _labels, _ = synthetic_study(tmp_path)
    result = _spineplan(tmp_path, "gui", scan, "--analyze", "--quit", env={"SPINEPLAN_PIPELINE": "nope:segment"})
    assert result.returncode == 2 and "unavailable" in result.stderr and "Traceback" not in result.stderr
    volume = make_volume()
    volume.array[:] = 0
    blank = save_volume(volume, tmp_path / "blank.nii.gz")
    result = _spineplan(tmp_path, "gui", blank, "--analyze", "--quit", env=FAKE)
    assert result.returncode == 2 and "No spine" in result.stderr
