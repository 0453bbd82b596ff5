"""Real vertebra shapes from the shared VerSe masks (training.shapes), and phantoms drawn with them."""
import logging

import numpy as np
import pytest

from scipy import ndimage

from spine_core.phantom import CurveShape, PhantomOptions, generate_phantom
from spine_core.phantom.anatomy import dims_for
from spine_core.phantom.generate import phantom_layout
from training.data import DataConfig, phantom_case
from training.shapes import (load_shape_library, shape_root, shapes_from_labels, spine_axis, vertebra_frame,
                             vertebra_shape)
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
        # Posterior elements behind (v > 0): the spinous process reaches 50+ mm back.
        assert local[:, 1].max() > 50 and local[:, 1].min() > -0.5 * depth - 6
        assert np.allclose(spacing, 1.0)


def test_frame_centre_and_size_recovered_from_analytic_labels():
    """On a phantom the truth is known: each vertebra's frame, body centre and dimensions."""
    opts = PhantomOptions(seed=2, first_level="T12", last_level="L5", spacing_mm=(1.0, 1.0, 1.0), fov_mm=150.0,
                          centre_on_spine=True, curve=CurveShape(lumbar_lordosis_deg=65, scoliosis_cobb_deg=20,
                                                                 scoliosis_apex="L2"))
    labels = generate_phantom(opts).labels
    placed = {p.vid: p for p in phantom_layout(opts)["placements"]}
    boxes = ndimage.find_objects(labels.array)
    cents = {v: labels.index_to_lps(np.argwhere(labels.array == v).mean(axis=0)) for v in range(19, 25)}
    for vid in range(20, 25):
        p = placed[vid]
        rot, mask, body = vertebra_frame(labels, vid, boxes[vid - 1], spine_axis(cents, vid))
        angle = np.degrees(np.arccos(np.clip(np.sum(rot * p.rot, axis=0), -1, 1)))
        assert angle.max() < 4.0, (vid, angle)
        error = p.rot.T @ (mask.index_to_lps(np.asarray(body["centre"])) - p.centre)
        assert np.abs(error).max() < 1.5, (vid, error)
        truth = (p.dims.body_w, p.dims.body_d, p.dims.body_h)
        assert np.allclose(body["size_mm"], truth, atol=2.5), (vid, body["size_mm"], truth)
        shape = vertebra_shape(labels, vid, boxes[vid - 1], spine_axis(cents, vid), "phantom")
        assert shape.mask.array[tuple(np.rint(shape.mask.lps_to_index([0.0, 0.0, 0.0])).astype(int))]


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
