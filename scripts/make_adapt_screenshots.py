"""docs/images/adapt/*.png: Tools > Adapt to local scans running the real `spineplan retrain` (on a generated
phantom "site": two scans and one corrected case, a short training so the picture takes minutes, not the
budget) mid-run and with its real result table, then Preferences > Models with the adapted model in use;
then the same dialog adapting the MR model on a site of two generated T2 MR scans and two corrected ones
(its result table).

    xvfb-run -a .venv/bin/python scripts/make_adapt_screenshots.py

Everything is written under a temporary folder; the user's site models are not touched."""
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images" / "adapt"
WORK = Path(tempfile.gettempdir()) / "radiology"          # short, stable paths in the pictures
SMALL = {"first_level": "T12", "last_level": "L3", "spacing_mm": (1.5, 1.5, 1.5), "fov_mm": 150.0,
         "centre_on_spine": True}


def make_site() -> None:
    from spine_core.io import save_volume
    from spine_core.io.writers import save_labelmap
    from spine_core.phantom import PhantomOptions, generate_phantom

    from spine_core.phantom.mr import MRPhantomOptions, generate_mr_phantom

    for name in ("site-ct-scans", "corrected-cases/case1", "site-mr-scans"):
        (WORK / name).mkdir(parents=True)
    for seed in (4545, 4546, 4646, 4747):
        mr = generate_mr_phantom(MRPhantomOptions(seed=seed, first_level="L1", width_mm=50.0))
        if seed < 4600:
            save_volume(mr.image, WORK / "site-mr-scans" / f"mr{seed}.nii.gz")
            continue
        (WORK / f"corrected-mr/case{seed}").mkdir(parents=True)
        save_volume(mr.image, WORK / f"corrected-mr/case{seed}/image.nii.gz")
        save_labelmap(mr.labels, WORK / f"corrected-mr/case{seed}/labels.nii.gz")
    for seed in (4242, 4244):
        save_volume(generate_phantom(PhantomOptions.sample(seed, **SMALL)).image,
                    WORK / "site-ct-scans" / f"scan{seed}.nii.gz")
    case = generate_phantom(PhantomOptions.sample(4343, **SMALL))
    save_volume(case.image, WORK / "corrected-cases/case1/image.nii.gz")
    save_labelmap(case.labels, WORK / "corrected-cases/case1/labels.nii.gz")


def short_run(request):
    """The dialog's own command plus a step cap and one reference phantom (a picture, not a measurement)."""
    from ui.retrain_process import retrain_command

    program, args = retrain_command(request)
    reference = "78001" if request.modality == "mr" else "77001"
    return program, [*args, "--max-steps", "40", "--threads", "1", "--reference-seeds", reference]


def wait(app, predicate, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    os.environ["SPINEPLAN_DATA_DIR"] = str(WORK / "SpinePlan")
    os.environ["SPINEPLAN_SITE_MODELS"] = str(WORK / "SpinePlan" / "models")
    make_site()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    from ui.dialogs import PreferencesDialog
    from ui.main_window import MainWindow

    OUT.mkdir(parents=True, exist_ok=True)
    window = MainWindow(QSettings(str(WORK / "s.ini"), QSettings.Format.IniFormat), show_dialogs=False)
    window.show()
    window.adapt.command = short_run
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    next(a for a in tools.actions() if a.text().startswith("&Adapt")).trigger()
    dialog = window.adapt.dialog
    dialog.scans_edit.setText(str(WORK / "site-ct-scans"))
    dialog.corrections_edit.setText(str(WORK / "corrected-cases"))
    dialog.budget_box.setValue(10)
    dialog.device_box.setCurrentText("cpu")
    dialog.start_button.click()
    wait(app, lambda: dialog.stage_label.text() == "Training" and "step 1" in dialog.message_label.text(), 600)
    wait(app, lambda: "step 12," in dialog.message_label.text(), 300)
    dialog.adjustSize()
    dialog.grab().save(str(OUT / "adapt_running.png"))
    wait(app, lambda: dialog.outcome is not None, 900)
    dialog.adjustSize()
    wait(app, lambda: False, 0.3)
    dialog.grab().save(str(OUT / "adapt_result.png"))
    if dialog.use_button.isEnabled():
        dialog.use_button.click()
        wait(app, lambda: False, 0.3)
    dialog.close()
    prefs = PreferencesDialog("auto", 60, window, tab="models")
    panel = prefs.models_panel
    ids = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    panel.table.selectRow(ids.index("ct-vertebra-seg"))
    prefs.show()
    wait(app, lambda: False, 0.3)
    prefs.grab().save(str(OUT / "preferences_models.png"))
    prefs.close()
    adapt_mr(app, window)
    window.close()
    print(f"pictures in {OUT}; the run's files in {WORK}")


def adapt_mr(app, window) -> None:
    """The MR model adapted on the MR phantom site: the result table (a picture, not a measurement)."""
    from ui.retrain_process import default_output_folder

    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    next(a for a in tools.actions() if a.text().startswith("&Adapt")).trigger()
    dialog = window.adapt.dialog
    dialog.scans_edit.setText(str(WORK / "site-mr-scans"))
    dialog.corrections_edit.setText(str(WORK / "corrected-mr"))
    dialog.modality_box.setCurrentIndex(dialog.modality_box.findData("mr"))
    dialog.out_edit.setText(str(default_output_folder()) + "-mr")
    dialog.start_button.click()
    wait(app, lambda: dialog.outcome is not None, 1200)
    dialog.adjustSize()
    wait(app, lambda: False, 0.3)
    dialog.grab().save(str(OUT / "adapt_mr_result.png"))
    dialog.close()


if __name__ == "__main__":
    main()
