"""Window presets follow the scan's modality: an MR opens in "MR auto" (a window from its own values),
a CT in the last CT preset; right-drag works on both; an MR preset never reaches the preferences."""
import numpy as np
from PySide6.QtCore import QPoint, Qt
from scipy import ndimage

from spine_core.volume import ScanMetadata, Volume, affine_from_geometry
from spine_core.windowing import MR_WINDOW_PERCENTILES, auto_window, width_level
from tests.ui.study import open_and_wait, synthetic_study
from viewers.slice_view import WINDOW_PRESETS

AFFINE = affine_from_geometry((1.0, 1.0, 1.0), None, (-20.0, -18.0, -100.0))


def _mr_array(shape=(40, 36, 30)) -> np.ndarray:
    """A body of smooth tissue at 1300..3500 (white in a bone window) in a 0 background: no value is
    negative, so the values say MR (spine_core.io.content.guess_modality)."""
    smooth = ndimage.gaussian_filter(np.random.default_rng(2).random(shape), 2)
    array = np.zeros(shape, np.uint16)
    array[5:-5, 4:-4, :] = (1300 + (smooth - smooth.min()) / np.ptp(smooth) * 2200)[5:-5, 4:-4, :]
    return array


def _views_window(window) -> set:
    return {view.window for view in window.views.slices.values()}


def _combo_items(window) -> list[str]:
    combo = window.actions.preset_combo
    return [combo.itemText(i) for i in range(combo.count())]


def _mr_preset_window(volume, name):
    return width_level(*auto_window(volume, *MR_WINDOW_PERCENTILES[name]))


def test_an_mr_opens_in_mr_auto_and_a_ct_after_it_gets_its_last_ct_preset(qtbot, window, tmp_path):
    from spine_core.io import save_volume

    ct, ct_labels, _ = synthetic_study(tmp_path)
    open_and_wait(qtbot, window, ct, ct_labels)
    window.display.set_window_preset("soft tissue")
    mr = save_volume(Volume(_mr_array(), AFFINE), tmp_path / "mr.nii.gz")     # no modality in a NIfTI
    open_and_wait(qtbot, window, mr)
    volume = window.session.volume
    assert window.display.modality == "MR"
    assert _views_window(window) == {_mr_preset_window(volume, "MR auto")}
    assert _combo_items(window) == ["MR auto", "MR contrast"] and window.actions.preset_combo.currentText() == "MR auto"
    presets = window.actions.presets
    assert presets["MR auto"].isChecked() and presets["MR auto"].isEnabled()
    assert not presets["bone"].isEnabled() and presets["bone"].toolTip() == "CT only"
    assert window.prefs.window_preset == "soft tissue"                 # an MR preset is never remembered
    window.actions.preset_combo.setCurrentText("MR contrast")          # as the user picks it
    narrow = _mr_preset_window(volume, "MR contrast")
    assert _views_window(window) == {narrow} and narrow[0] < _mr_preset_window(volume, "MR auto")[0]
    window.display.set_window_preset("bone")                           # an HU preset on an MR: ignored
    assert _views_window(window) == {narrow}
    view = window.views.slices["axial"]                                # right-drag: window and level
    centre = view.rect().center()
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseMove(view, centre + QPoint(40, 20))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=centre + QPoint(40, 20))
    assert view.window[0] > narrow[0] and view.window[1] < narrow[1] and len(_views_window(window)) == 1
    assert window.prefs.window_preset == "soft tissue"
    open_and_wait(qtbot, window, ct, ct_labels)                        # a CT again: its presets, its last one
    assert window.display.modality == "CT" and _combo_items(window) == list(WINDOW_PRESETS)
    assert window.actions.preset_combo.currentText() == "soft tissue" and presets["soft tissue"].isChecked()
    assert _views_window(window) == {WINDOW_PRESETS["soft tissue"]}
    assert not presets["MR auto"].isEnabled() and presets["MR auto"].toolTip() == "MR only"
    assert presets["bone"].isEnabled() and "only" not in presets["bone"].toolTip()
    window.display.set_window_preset("MR auto")                        # an MR preset on a CT: ignored
    assert _views_window(window) == {WINDOW_PRESETS["soft tissue"]}


def test_the_header_says_mr_and_a_new_window_after_an_mr_starts_in_a_ct_preset(qtbot, window, settings):
    from ui.main_window import MainWindow

    array = _mr_array().astype(np.int16) - 500                        # negative values, yet the header says MR
    volume = Volume(array, AFFINE, ScanMetadata(modality="MR"))
    window.session.set_volume(volume)
    assert window.actions.preset_combo.currentText() == "MR auto"
    assert _views_window(window) == {_mr_preset_window(volume, "MR auto")}
    window.close()
    again = MainWindow(settings=settings, show_dialogs=False)
    qtbot.addWidget(again)
    assert again.actions.preset_combo.currentText() == "bone" and _combo_items(again) == list(WINDOW_PRESETS)
    assert {view.window for view in again.views.slices.values()} == {WINDOW_PRESETS["bone"]}
