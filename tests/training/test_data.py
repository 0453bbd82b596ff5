"""Training data: canonical LPS grids, the level-balanced sampler, real shared CTs, phantoms."""
import numpy as np
import pytest

from spine_core.volume import Volume
from training.data import (DataConfig, PatchSampler, canonical_grid, crop, level_weight, load_datasets,
                           phantom_case, prepare, scale_window, toy_spine_case)


def test_prepare_puts_any_orientation_on_an_lps_grid():
    case = toy_spine_case(0)                      # its k axis points inferior
    prepared = prepare(case, DataConfig(spacing_mm=[4.0, 4.0, 4.0]))
    assert prepared.grid.orientation == "LPS"
    assert np.allclose(prepared.grid.spacing, 4.0)
    assert 0.0 <= prepared.image.min() and prepared.image.max() <= 1.0
    cents = prepared.centroids
    ids = sorted(cents)
    assert all(cents[a][2] > cents[b][2] for a, b in zip(ids, ids[1:])), "cranial levels sit higher (S)"
    for vid in ids:   # centroids agree with the source labels in patient space
        src = case.labels.index_to_lps(np.argwhere(case.labels.array == vid).mean(axis=0))
        assert np.linalg.norm(prepared.grid.index_to_lps(cents[vid]) - src) < 4.0


def test_window_scaling_and_padded_crop():
    assert scale_window(np.array([-2000, -1000, 500, 2000, 3000]), [-1000, 2000]).tolist() == [0, 0, 0.5, 1, 1]
    a = np.arange(27).reshape(3, 3, 3)
    c = crop(a, (-1, 1, 2), (2, 2, 2), fill=-5)
    assert c[0].tolist() == [[-5, -5], [-5, -5]] and c[1, 0, 0] == a[0, 1, 2]


def test_canonical_grid_covers_a_rotated_volume():
    affine = np.array([[0, 0, 2.0, 10], [-1.0, 0, 0, 5], [0, -1.5, 0, 0], [0, 0, 0, 1]])
    vol = Volume(np.zeros((10, 20, 5), np.float32), affine)
    grid = canonical_grid(vol, [1.0, 1.0, 1.0])
    assert grid.orientation == "LPS" and grid.shape == (9, 10, 29)


def test_sampler_oversamples_rare_levels():
    assert level_weight(1, DataConfig().level_weights) == 3.0      # cervical
    assert level_weight(16, DataConfig().level_weights) == 3.0     # T9
    assert level_weight(20, DataConfig().level_weights) == 1.0
    config = DataConfig(spacing_mm=[4.0] * 3, patch_size=[8, 8, 8], foreground_fraction=1.0,
                        level_weights={"T9": 20.0})
    prepared = prepare(toy_spine_case(1, first_level=14), config)
    sampler = PatchSampler([prepared], config, seed=0)
    hits = sum(16 in np.unique(sampler.sample().labels) for _ in range(60))
    assert 16 in prepared.centroids and hits > 30


@pytest.mark.shared_data
def test_real_cases_load_with_verse007_held_out(shared_data):
    config = DataConfig(spacing_mm=[4.0] * 3, shared_root=str(shared_data / "ct"),
                        phantom_train_seeds=[], phantom_val_seeds=[])
    train, val = load_datasets(config)
    assert [c.name for c in val] == ["verse007"]
    assert {c.name for c in train} == {"verse006", "tptbox_lumbar", "ts_dicom"}
    for case in train + val:
        assert case.grid.orientation == "LPS" and case.centroids
        assert np.median(case.image[case.labels > 0]) > scale_window(np.array([150.0]), config.window)[0]
    ts = next(c for c in train if c.name == "ts_dicom")
    assert sorted(ts.centroids) == [18, 19] and ts.centroids[18][2] > ts.centroids[19][2]


def test_phantom_case_is_seeded_and_prepares():
    small = {"first_level": "L3", "last_level": "L5", "spacing_mm": [3.0, 3.0, 3.0], "fov_mm": 160.0,
             "centre_on_spine": True}
    a, b = phantom_case(3, small), phantom_case(3, small)
    assert np.array_equal(a.labels.array, b.labels.array), "seeded"
    prepared = prepare(a, DataConfig(spacing_mm=[4.0] * 3))
    assert prepared.centroids and prepared.grid.orientation == "LPS"


def test_phantom_stream_replaces_the_oldest_phantom_with_a_fresh_one():
    from training.data import PatchSampler, PhantomStream, toy_spine_case

    config = DataConfig(spacing_mm=[4.0] * 3, patch_size=[16, 16, 16], phantom_stream=2, phantom_stream_every=3,
                        phantom_options={"first_level": "L3", "last_level": "L5", "spacing_mm": [4.0] * 3,
                                         "fov_mm": 120.0, "centre_on_spine": True})
    sampler = PatchSampler([prepare(toy_spine_case(0), config)], config)
    stream = PhantomStream(sampler, config, seed=0)
    names = [c.name for c in sampler.cases]
    assert names == ["toy0", f"phantom{PhantomStream.FIRST_SEED}", f"phantom{PhantomStream.FIRST_SEED + 1}"]
    for _ in range(3):
        stream.tick()
    assert [c.name for c in sampler.cases] == ["toy0", f"phantom{PhantomStream.FIRST_SEED + 2}", names[2]]
    assert {sampler.cases[c].name for c, _ in sampler.pairs} == {"toy0", names[2],
                                                                  f"phantom{PhantomStream.FIRST_SEED + 2}"}
    assert sampler.sample().image.shape == (1, 16, 16, 16)
