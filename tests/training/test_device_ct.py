"""The GPU-host route for the CT networks (training/pack.py, training/device_ct.py): prepared cases
travel exactly, reoriented phantoms need no resampling library, the host's imports need neither
SimpleITK nor pydicom, and the plan keeps every fold's held-out case out of its training."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.pipelines import required_models
from spine_core.pipeline.preprocess import FILL_HU, canonical_grid, resample_image
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume, affine_from_geometry
from training.data import (DataConfig, load_datasets, load_prepared, prepare, prepared_path, reoriented,
                           save_prepared, toy_spine_case)
from training.device_ct import FOLDS, main, plan
from training.loco import REAL_CASES

ROOT = Path(__file__).resolve().parents[2]
# In this project's environment but not in the GPU host's image (the device tool's package list)
ABSENT = ("SimpleITK", "pydicom", "highdicom", "nibabel", "pyjpegls", "PySide6", "shiboken6", "pyvista", "pyvistaqt",
          "vtk", "dask", "distributed", "pooch", "scooby", "platformdirs")


def test_a_prepared_case_comes_back_as_it_was_saved(tmp_path):
    config = DataConfig(spacing_mm=[4.0] * 3)
    case = prepare(toy_spine_case(3), config)
    path = prepared_path(tmp_path, case.name, config)
    save_prepared(case, path, compress=True)
    back = load_prepared(path)
    assert back.name == case.name and back.source == case.source
    assert np.abs(back.image - case.image).max() < 1e-3 and (back.labels == case.labels).all()
    assert back.grid.same_grid(case.grid) and back.grid.shape == case.grid.shape
    assert sorted(back.level_voxels) == sorted(case.level_voxels)
    assert all((back.level_voxels[v] == case.level_voxels[v]).all() for v in case.level_voxels)
    assert all(np.allclose(back.centroids[v], case.centroids[v]) for v in case.centroids)
    assert prepared_path(tmp_path, "x", DataConfig(spacing_mm=[2.0] * 3)) != prepared_path(tmp_path, "x", config)


def test_a_flipped_and_permuted_grid_is_reoriented_exactly_as_simpleitk_resamples_it():
    rng = np.random.default_rng(0)
    array = rng.normal(0, 100, (7, 9, 11)).astype(np.float32)
    direction = np.array([[0, -1.0, 0], [1.0, 0, 0], [0, 0, -1.0]])       # axes swapped, two flipped
    volume = Volume(array, affine_from_geometry([2.0, 2.0, 2.0], direction, (30.0, -12.0, 80.0)))
    grid = canonical_grid(volume, [2.0, 2.0, 2.0])
    fast = reoriented(volume, grid)
    assert fast is not None and fast.shape == tuple(grid.shape)
    assert np.abs(fast - resample_image(volume, grid, fill=FILL_HU)).max() < 1e-4
    labels = LabelMap(rng.integers(0, 5, array.shape).astype(np.int16), volume.affine)
    assert (reoriented(labels, grid) == resample_to_grid(labels, grid).array).all()
    assert reoriented(volume, canonical_grid(volume, [1.5, 1.5, 1.5])) is None     # another spacing
    oblique = np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1.0]])
    tilted = Volume(array, affine_from_geometry([2.0] * 3, oblique, (0.0, 0.0, 0.0)))
    assert reoriented(tilted, canonical_grid(tilted, [2.0] * 3)) is None


def test_training_reads_real_cases_from_a_pack_and_phantoms_from_a_cache(tmp_path):
    config = DataConfig(spacing_mm=[4.0] * 3, real_pack=str(tmp_path / "pack"), phantom_cache=str(tmp_path / "cache"),
                        train_cases=["toyreal"], val_cases=[], phantom_train_seeds=[1000], phantom_val_seeds=[],
                        phantom_options={"spacing_mm": [4.0, 4.0, 4.0], "fov_mm": 160.0, "centre_on_spine": True})
    with pytest.raises(FileNotFoundError, match="training.pack"):
        load_datasets(config)
    toy = prepare(toy_spine_case(5), config)
    toy.name = "toyreal"
    save_prepared(toy, prepared_path(config.real_pack, "toyreal", config), compress=True)
    train, _ = load_datasets(config)
    assert [c.name for c in train] == ["toyreal", "phantom1000"]
    cached = list(Path(config.phantom_cache).glob("phantom1000-*.npz"))
    assert len(cached) == 1
    again, _ = load_datasets(config)           # the second run reads the cache, the same phantom
    assert np.abs(again[1].image - train[1].image).max() < 1e-3 and (again[1].labels == train[1].labels).all()


def test_the_gpu_host_path_imports_without_simpleitk_or_pydicom(tmp_path):
    """The GPU host has torch, numpy and scipy but not the imaging stack: everything a chain imports
    (data, phantoms, tasks, trainer, export with its card) must load without SimpleITK and pydicom."""
    pytest.importorskip("torch")
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {ABSENT!r}:\n"
        "            raise ImportError('absent on the GPU host: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n")
    code = ("import training.device_ct, training.export, training.trainer, training.tasks, training.tasks_m2\n"
            "from training.data import DataConfig, prepared_phantom\n"
            "options = {'spacing_mm': [4.0] * 3, 'fov_mm': 160.0, 'centre_on_spine': True}\n"
            "p = prepared_phantom(1002, DataConfig(spacing_mm=[4.0] * 3, phantom_options=options), 0.0)\n"   # flipped
            "assert p.grid.orientation == 'LPS' and p.centroids\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


class _Args:
    pack, out, device, batch_scale, max_steps, max_phantoms = "pack", "runs/x", "auto", 1.0, None, None
    folds, set = list(FOLDS), ["optim.validate_every=200"]


def test_no_fold_trains_on_its_held_out_case_and_each_exports_the_default_pipeline():
    runs = plan(_Args(), minutes=6.0)
    assert {r["fold"] for r in runs} == set(FOLDS) and set(REAL_CASES) < set(FOLDS)
    for run in runs:
        data = run["config"]["data"]
        assert data["val_cases"] == [] and data["real_pack"].endswith("pack")
        held_out = run["fold"]
        cases = set(data["train_cases"])
        assert cases == set(REAL_CASES) - {held_out}, (held_out, cases)
        assert run["config"]["optim"]["max_minutes"] <= 6.0 and run["config"]["optim"]["validate_every"] == 200
    for fold in FOLDS:
        exported = {r["model_id"] for r in runs if r["fold"] == fold and r["model_id"]}
        assert exported == set(required_models(SegmentOptions(), optional=True))
    first, fine = [r for r in runs if r["fold"] == "all" and r["chain"] == "vertebra_seg"]
    assert fine["after"] == first["dir"] and first["config"]["optim"]["max_minutes"] < 6.0


def test_the_dry_run_prints_one_line_per_run(capsys):
    assert main(["--pack", "pack", "--dry-run", "--folds", "verse007"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("verse007 ") for line in lines)
    assert not any("verse007" in json.loads(line.split(" ", 4)[4].rsplit(" ", 1)[0]) for line in lines)
