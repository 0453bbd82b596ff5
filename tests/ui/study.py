"""Helpers shared by the UI tests: a small synthetic study on disk, waiting for a load."""
import numpy as np

from spine_core.volume import LabelMap, Volume, affine_from_geometry

T11, T12, L1 = 18, 19, 20


def synthetic_study(folder, shape=(40, 36, 30)):
    """A small CT (1 mm voxels, LPS) with three boxes T11 (top), T12, L1 and their files."""
    from spine_core.io import save_labelmap, save_volume

    affine = affine_from_geometry((1.0, 1.0, 1.0), None, (-20.0, -18.0, -100.0))
    rng = np.random.default_rng(1)
    image = rng.normal(0, 30, shape).astype(np.int16)
    labels = np.zeros(shape, np.int16)
    for n, label_id in enumerate((L1, T12, T11)):           # k (S) grows upwards
        labels[12:28, 10:26, 2 + 9 * n: 9 + 9 * n] = label_id
    image[labels > 0] = 700
    volume = Volume(image, affine)
    label_map = LabelMap.on_grid(volume, labels)
    scan_path = save_volume(volume, folder / "scan.nii.gz")
    labels_path = save_labelmap(label_map, folder / "labels.nii.gz")
    return scan_path, labels_path, label_map


def open_and_wait(qtbot, window, path, labels=None, timeout=20000):
    with qtbot.waitSignal(window.study_ready, timeout=timeout):
        window.open_path(path, labels)
