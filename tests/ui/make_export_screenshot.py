"""The File > Export plan dialog for docs/PLANNING.md (not a test): the window opens a scan and its labels,
and the dialog it would show is grabbed.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m tests.ui.make_export_screenshot SCAN LABELS OUT.png

A NIfTI scan (e.g. ../shared/data/ct/verse007/image.nii.gz) shows DICOM-SEG and RTSTRUCT disabled, with why.
"""
import sys
from pathlib import Path


def main(scan, labels, out) -> None:
    from tests.ui.make_screenshots import _wait, screenshot_window
    from ui.export_dialog import ExportPlanDialog

    app, window = screenshot_window()
    window.open_path(scan, labels)
    _wait(app, window, window.study_ready)
    exports = window.exports
    dialog = ExportPlanDialog("/data/plans/case-0412", window.prefs.plan_export_formats, exports.unavailable(),
                              exports.summary(), window)
    dialog.show()
    for _ in range(20):
        app.processEvents()
    dialog.grab().save(str(out))
    print(out, Path(out).stat().st_size // 1024, "KB")
    dialog.close()
    window.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
