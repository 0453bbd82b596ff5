"""The typed preferences (ui.preferences): defaults, checks and the first release's values, without a
window."""
import pytest
from PySide6.QtCore import QSettings

from ui.preferences import MAX_RECENT, Preferences


@pytest.fixture
def prefs(tmp_path):
    return Preferences(QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat))


def test_defaults_and_checks(prefs, tmp_path):
    assert (prefs.device, prefs.method, prefs.autosave_s, prefs.window_preset) == ("auto", "per-vertebra", 60, "bone")
    prefs.autosave_s = 1
    assert prefs.autosave_s == 5                                       # never autosave more often
    with pytest.raises(ValueError):
        prefs.device = "tpu"
    with pytest.raises(ValueError):
        prefs.method = "localizer-components"                           # a benchmark pipeline, not offered
    prefs.settings.setValue("analysis/method", "m3")                    # written by the first release
    assert prefs.method == "joint"
    prefs.settings.setValue("analysis/method", "gone")
    assert prefs.method == "per-vertebra"


def test_the_mr_method_is_kept_apart_from_the_ct_method(prefs):
    assert prefs.mr_method == "mr-scar"
    prefs.mr_method = "mr-sshs"
    assert prefs.mr_method == "mr-sshs" and prefs.method == "per-vertebra"
    with pytest.raises(ValueError):
        prefs.mr_method = "joint"                                       # a CT pipeline is no MR method
    prefs.settings.setValue("analysis/mr_method", "gone")
    assert prefs.mr_method == "mr-scar"


def test_the_dialog_offers_an_mr_method_only_where_its_models_are_installed(qtbot):
    from ui.dialogs import PreferencesDialog

    dialog = PreferencesDialog("auto", 60, mr_method="mr-sshs", installed=lambda m: m != "mr-sshs-3d")
    qtbot.addWidget(dialog)
    box = dialog.mr_method_box
    sshs = box.findData("mr-sshs")
    assert not box.model().item(sshs).isEnabled() and "not installed" in box.itemText(sshs)
    assert "mr-sshs-3d" in box.model().item(sshs).toolTip()
    assert dialog.mr_method() == "mr-scar"                              # the choice it cannot run is not kept
    chosen = PreferencesDialog("auto", 60, mr_method="mr-sshs", installed=lambda m: True)
    qtbot.addWidget(chosen)
    assert chosen.mr_method() == "mr-sshs"


def test_recent_files_newest_first_without_repeats(prefs, tmp_path):
    for n in range(MAX_RECENT + 2):
        prefs.add_recent(tmp_path / f"scan{n}.nii.gz")
    prefs.add_recent(tmp_path / "scan3.nii.gz")
    recent = prefs.recent_files
    assert len(recent) == MAX_RECENT and recent[0].endswith("scan3.nii.gz")
    assert len(set(recent)) == len(recent)
    prefs.remember_dir(tmp_path / "scan3.nii.gz")
    assert prefs.last_dir == str(tmp_path) and prefs.export_dir == str(tmp_path / "meshes")
