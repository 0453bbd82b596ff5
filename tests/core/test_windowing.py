"""The display window: a CT's fixed bone window, an MR's from its own values (spine_core.windowing), and
the pictures drawn in it."""
import time

import numpy as np
from scipy import ndimage

from spine_core.volume import LabelMap, ScanMetadata, Volume, affine_from_geometry
from spine_core.windowing import (BONE_WINDOW_HU, auto_window, display_modality, display_window,
                                  width_level)


def _volume(array, modality=""):
    return Volume(array, affine_from_geometry((1.0, 1.0, 2.0)), ScanMetadata(modality=modality))


def _mr_like(shape=(64, 80, 48), seed=1):
    """Positive tissue (smooth, ~1300..3500: white in a CT bone window) in a body, a 0 background around
    it, a few bright outliers (vessels, fat at 6000) that must not set the top of the window."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), 3)
    tissue = 1300 + (smooth - smooth.min()) / np.ptp(smooth) * 2200
    array = np.zeros(shape, np.float32)
    array[8:-8, 10:-10, :] = tissue[8:-8, 10:-10, :]
    array[30:32, 40:42, 10:12] = 6000.0
    return _volume(array.astype(np.uint16))


def _ct_like(shape=(64, 80, 48)):
    """Air around a body of fat and soft tissue with a bone column, in HU."""
    array = np.full(shape, -1000, np.int16)
    array[8:-8, 10:-10, :] = -100
    array[16:-16, 20:-20, :] = 40
    array[28:36, 36:44, :] = 700
    return _volume(array)


def test_an_mr_window_spans_its_tissue_not_its_background_or_outliers():
    scan = _mr_like()
    tissue = scan.array[scan.array > 0]
    low, high = auto_window(scan)
    assert tissue.min() <= low < np.percentile(tissue, 5)          # above the background, at the tissue's foot
    assert np.percentile(tissue, 95) < high < 6000 == scan.array.max()   # below the bright outlier
    narrow = auto_window(scan, 5.0, 98.0)
    assert low < narrow[0] < narrow[1] < high                      # "MR contrast": inside "MR auto"


def test_a_ct_keeps_the_bone_window_and_an_mr_gets_its_own():
    assert display_modality(_ct_like()) == "CT" and display_window(_ct_like()) == BONE_WINDOW_HU == (-250.0, 1250.0)
    assert display_modality(_mr_like()) == "MR" and display_window(_mr_like()) == auto_window(_mr_like())
    tagged = _volume(_ct_like().array, modality="MR")              # the header wins over the values
    assert display_window(tagged) == auto_window(tagged)
    assert display_window(_mr_like(), modality="CT") == BONE_WINDOW_HU
    assert display_modality(_volume(_mr_like().array, modality="PT")) == "CT"   # another modality: as a CT


def test_the_window_is_deterministic_and_fast_on_a_full_size_volume():
    rng = np.random.default_rng(0)
    array = np.zeros((512, 512, 300), np.int16)
    array[60:450, 80:430] = rng.integers(100, 1600, (390, 350, 300), dtype=np.int16)
    scan = _volume(array)
    began = time.perf_counter()
    first = display_window(scan)
    seconds = time.perf_counter() - began
    # against one full-volume percentile timed here, so a loaded machine slows both (0.12 s vs 0.7-0.85 s idle)
    began = time.perf_counter()
    np.percentile(array, [1, 99])
    assert seconds < max(0.3, 0.5 * (time.perf_counter() - began))
    assert first == display_window(scan) == auto_window(np.asfortranarray(array))   # any memory layout
    assert 100 <= first[0] < 150 and 1550 < first[1] <= 1600


def test_degenerate_volumes_still_get_a_window():
    for array in (np.zeros((10, 10, 10), np.uint8), np.full((10, 10, 10), 7.0), np.full((4, 4, 4), np.nan)):
        low, high = auto_window(array)
        assert np.isfinite([low, high]).all() and high > low
    assert width_level(100.0, 300.0) == (200.0, 200.0)
    small = np.linspace(0.0, 1.0, 1000).reshape(10, 10, 10)        # an MR stored as floats 0..1
    low, high = auto_window(small)
    assert 0.0 < low < 0.1 and 0.9 < high < 1.0


def _grey(path):
    from PIL import Image

    with Image.open(path) as picture:
        return np.asarray(picture.convert("L"))


def test_an_mr_thumbnail_uses_the_grey_range_not_all_white(tmp_path):
    from spine_core.pictures import save_sagittal_coronal, save_sagittal_thumbnail

    scan = _mr_like()
    ids = np.zeros(scan.shape, np.uint8)
    ids[28:36, 30:50, 10:20] = 20
    labels = LabelMap(ids, scan.affine, names={20: "L1"})
    grey = _grey(save_sagittal_thumbnail(scan, labels, tmp_path / "mr.png", height_px=160)).astype(int)
    body = grey[grey > 5]                                           # the scan's 0 background is black
    assert body.size > 0.3 * grey.size
    assert np.percentile(body, 95) - np.percentile(body, 5) > 100  # the tissue's contrast shows
    assert np.mean(grey > 245) < 0.2                               # in a bone window it was all white
    pair = _grey(save_sagittal_coronal(scan, labels, tmp_path / "pair.png")).astype(int)
    assert np.percentile(pair, 95) - np.percentile(pair, 5) > 100


def test_a_ct_picture_is_in_the_bone_window(tmp_path):
    """The CT picture's grey is exactly the bone window's: air black, 700 HU at (700 + 250) / 1500."""
    from spine_core.pictures import save_sagittal_thumbnail

    scan = _ct_like()
    labels = LabelMap(np.zeros(scan.shape, np.uint8), scan.affine, names={1: "L1"})
    grey = _grey(save_sagittal_thumbnail(scan, labels, tmp_path / "ct.png", height_px=160))
    assert grey.min() <= 2
    assert abs(int(np.median(grey[grey > 150])) - round(950 / 1500 * 255)) <= 3
