"""The workstation after Analyze on a whole real CT, with the shipped pipeline (docs/BENCHMARKS.md,
"Whole real scans"). Not a test:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_real_screenshot.py \
        ../shared/data/ct_unlabelled/acrin_flt_breast_001/chest_to_pelvis.nii.gz real_acrin_chest_to_pelvis.png [--measure]

--measure: then Measure, with the Measurements table raised (what the measurements say of that scan).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ui.make_screenshots import _save, _wait, screenshot_window  # noqa: E402


def main(scan: str, name: str, measure: bool = False) -> None:
    app, window = screenshot_window()
    window.open_path(Path(scan))
    _wait(app, window, window.study_ready)
    window.analyze()
    _wait(app, window, window.study_ready)
    if measure:
        window.planning_docks["Measurements"].raise_()
        window.measure.measure()
        _wait(app, window.measure, window.measure.measured)
    _save(app, window, name)
    window.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--measure" in sys.argv[3:])
