"""The leave-one-case-out plan (training/loco.py): no fold's training or validation sees its held-out
case, the former validation case joins training, and every network of the default pipeline is
exported under its shipped id (so eval_real can load a fold's folder as the models)."""
import json
from pathlib import Path

from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.pipelines import required_models
from training.loco import REAL_CASES, fold_commands


def _sets(command):
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--set")


def test_no_fold_sees_its_held_out_case(tmp_path):
    for case in REAL_CASES:
        commands = fold_commands(case, tmp_path, minutes=2.0, device="auto", max_steps=None)
        trains = [c for c in commands if "train" in c]
        assert trains
        for command in trains:
            sets = _sets(command)
            cases = json.loads(sets["data.train_cases"])
            assert case not in cases and json.loads(sets["data.val_cases"]) == []
            if case != "verse007":
                assert "verse007" in cases
        exported = {c[c.index("--id") + 1] for c in commands if "export-onnx" in c}
        assert exported == set(required_models(SegmentOptions()))
        assert all(Path(c[c.index("--out") + 1]) == tmp_path / case / "models" for c in commands if "export-onnx" in c)
