"""The MR window picture for docs/WORKSTATION.md (not a test): a real MR opened with its reference labels,
shown in "MR auto" (a window from the scan's own values; a CT bone window shows it almost black).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m tests.ui.make_mr_screenshot [MR_CASE] [--analyse]

MR_CASE (default ../shared/data/mr/VB2_05) holds image.nii.gz and labels.nii.gz. With --analyse the scan
is opened alone and Analyze runs the shipped MR model (workstation_mr_analysed.png).
"""
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "docs/images/mr"


def main(case, analyse: bool = False) -> None:
    from tests.ui.make_screenshots import WIDTH, _wait, screenshot_window

    case = Path(case)
    app, window = screenshot_window()
    if analyse:
        window.open_path(case / "image.nii.gz")
        _wait(app, window, window.study_ready)
        window.analyze()
    else:
        window.open_path(case / "image.nii.gz", case / "labels.nii.gz")
    _wait(app, window, window.study_ready)
    rows = window.analysis.rows or window.results.rows
    if rows:
        window.display.pick_vertebra(rows[len(rows) // 2].label_id)
    for _ in range(20):
        app.processEvents()
    print("modality", window.display.modality, "preset", window.actions.preset_combo.currentText(),
          "window (width, level)", window.views.slices["axial"].window)
    OUT.mkdir(parents=True, exist_ok=True)
    pixmap = window.display.grab_window().scaledToWidth(WIDTH)
    name = "workstation_mr_analysed.png" if analyse else "workstation_mr_window.png"
    pixmap.save(str(OUT / name))
    print(name, (OUT / name).stat().st_size // 1024, "KB")
    window.close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--analyse"]
    main(args[0] if args else Path(__file__).resolve().parents[3] / "shared/data/mr/VB2_05", "--analyse" in sys.argv)
