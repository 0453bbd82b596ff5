"""Real vertebra shapes from the shared VerSe masks (training.shapes), and phantoms drawn with them."""
import logging

import numpy as np
import pytest

from spine_core.phantom.anatomy import dims_for
from training.data import DataConfig, phantom_case
from training.shapes import load_shape_library, shape_root, shapes_from_labels, spine_axis
from training.tasks import data_config


@pytest.fixture(scope="module")
def verse010():
    """The small lumbar mask (L1-L5, 1 mm) alone, linked into a folder of its own."""
    folder = shape_root() / "verse010"
    if not (folder / "labels.nii.gz").exists():
        pytest.skip(f"real vertebra masks not found at {folder.parent}")
    return folder


@pytest.fixture(scope="module")
def lumbar_shapes(verse010):
    from spine_core.io import load_labels

    return shapes_from_labels(load_labels(verse010 / "labels.nii.gz"), "verse010")


def test_lumbar_shapes_have_sane_sizes_and_pose(lumbar_shapes):
    assert {"L2", "L3", "L4"} <= set(lumbar_shapes)
    for name, shape in lumbar_shapes.items():
        width, depth, height = shape.body_mm
        assert 35 <= width <= 60 and 25 <= depth <= 45 and 18 <= height <= 35, (name, shape.body_mm)
        table = dims_for(name)
        assert abs(height - table.body_h) < 6, (name, height)
        mask, spacing = shape.mask.array > 0, shape.mask.spacing
        assert np.allclose(shape.mask.direction, np.eye(3))
        # The origin is the body centre: bone there, and in front of it only the body.
        centre = np.rint(shape.mask.lps_to_index([0.0, 0.0, 0.0])).astype(int)
        assert mask[tuple(centre)]
        local = shape.mask.index_to_lps(np.argwhere(mask))
        front = local[local[:, 1] < -0.25 * depth]
        assert np.abs(front[:, 0]).max() < 0.6 * width        # no processes in front of the body
        # Posterior elements behind (v > 0): the spinous process reaches 60+ mm back.
        assert local[:, 1].max() > 60 and local[:, 1].min() > -0.5 * depth - 6
        assert np.allclose(spacing, 1.0)


def test_spine_axis_points_superior():
    # Centroids of a lordotic lumbar spine in LPS (S up): the axis points up and follows the curve.
    cents = {20: np.array([0, 10, 100.0]), 21: np.array([0, 5, 70.0]), 22: np.array([0, 3, 40.0]),
             23: np.array([0, 5, 10.0]), 24: np.array([0, 12, -20.0])}
    up = spine_axis(cents, 22)
    assert up[2] > 0.99 and abs(up[1]) < 0.05
    assert spine_axis(cents, 20)[1] > 0.1 and spine_axis(cents, 24)[1] < -0.1


def test_library_loads_and_a_missing_folder_warns(verse010, tmp_path, caplog):
    (tmp_path / "verse010").mkdir()
    (tmp_path / "verse010" / "labels.nii.gz").symlink_to(verse010 / "labels.nii.gz")
    library = load_shape_library(str(tmp_path))
    assert library is not None and set(library.levels()) >= {"L2", "L3", "L4"}
    assert not library.candidates("T12")                # thoracic: no lumbar shape stands in
    with caplog.at_level(logging.WARNING, logger="spineplan.training"):
        assert load_shape_library(str(tmp_path / "absent")) is None
    assert "analytic" in caplog.text


def test_phantom_case_with_real_shapes(verse010, tmp_path, caplog):
    (tmp_path / "verse010").mkdir()
    (tmp_path / "verse010" / "labels.nii.gz").symlink_to(verse010 / "labels.nii.gz")
    small = {"first_level": "L2", "last_level": "L4", "spacing_mm": [3.0, 3.0, 3.0], "fov_mm": 160.0,
             "centre_on_spine": True}
    plain = phantom_case(3, small)
    real = phantom_case(3, small, real_shapes=1.0, shape_root=str(tmp_path))
    assert {21, 22, 23} <= set(real.labels.ids())
    assert not np.array_equal(real.labels.array, plain.labels.array)
    with caplog.at_level(logging.WARNING, logger="spineplan.training"):
        missing = phantom_case(3, small, real_shapes=1.0, shape_root=str(tmp_path / "absent"))
    assert np.array_equal(missing.image.array, plain.image.array) and "analytic" in caplog.text


def test_config_with_real_shapes_loads():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "training/configs/vertebra_seg_cpu_ft_realshapes.json"
    config = json.loads(path.read_text())
    base = json.loads(path.with_name("vertebra_seg_cpu_ft.json").read_text())
    data = data_config(config)
    assert data.phantom_real_shapes == 0.7 and data.shape_root == ""
    assert {k: v for k, v in config["data"].items() if k != "phantom_real_shapes"} == base["data"]
    assert DataConfig().phantom_real_shapes == 0.0
