"""MR training (M5): a few steps on two shared MR cases with partial labels, export with an MR card,
and the cross-validation folds' plan."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from training.export import export_checkpoint  # noqa: E402
from training.mr_cv import folds  # noqa: E402
from training.trainer import run_training  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_folds_hold_every_case_once_and_spread_each_set():
    names = [f"VB2_{i:02d}" for i in range(8)] + [f"VB3_{i:02d}" for i in range(20)] + \
            ["IVD_1", "IVD_2", "IVD_3", "tptbox_cervical"]
    plan = folds(names, 4)
    assert sorted(sum(plan, [])) == sorted(names)
    assert all(sum(c.startswith("VB2") for c in f) == 2 for f in plan)
    assert sorted(sum(c.startswith("IVD") for c in f) for f in plan) == [0, 1, 1, 1]


def test_body_only_and_disc_only_cases_train_only_what_they_hold(shared_data, tmp_path):
    from training.tasks_mr import MRScarTask

    config = json.loads((CONFIGS / "mr_scar_cpu.json").read_text())
    config["net"].update(base_channels=4, branch_channels=4, levels=3)
    config["data"].update(patch_size=[3, 64, 64], train_cases=["VB3_02", "IVD_20"])
    config["optim"].update(max_steps=3, batch_size=4, log_every=1, checkpoint_every=3, threads=1)
    train, _ = MRScarTask.load_data(config)
    assert [(c.has_body, c.has_disc) for c in train] == [(True, False), (False, True)]
    task = MRScarTask(config, train, [], seed=0)
    batch = task.batch()
    assert batch["image"].shape == (4, 3, 64, 64) and batch["target"].shape == (4, 2, 64, 64)
    for known, target in zip(batch["known"], batch["target"]):
        # what a case does not hold is never a negative label: its loss is masked, not zero-filled
        assert known.tolist() in ([1.0, 0.0], [0.0, 1.0])
    last = run_training(config, tmp_path, command="pytest", progress_bar=False, datasets=(train, []))
    onnx, card_path, parity = export_checkpoint(last, tmp_path / "models", "mr-spine-seg")
    card = json.loads(card_path.read_text())
    assert card["modality"] == "MR" and card["label_ids"] == [1, 2] and parity < 1e-3
    assert card["training"]["data"]["train"]["names"] == ["VB3_02", "IVD_20"]
    assert np.isfinite([json.loads(r)["loss"] for r in (tmp_path / "metrics.jsonl").read_text().splitlines()
                        if '"train"' in r]).all()
