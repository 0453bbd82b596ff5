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
        assert exported == set(required_models(SegmentOptions(), optional=True))
        assert all(Path(c[c.index("--out") + 1]) == tmp_path / case / "models" for c in commands if "export-onnx" in c)


def test_a_fold_whose_models_are_kept_skips_their_training(tmp_path):
    """A fold's models outlive its run folders (checkpoints are not kept between sessions): a run
    whose model is exported is not trained again, and the first segmentation run goes with its
    fine-tune's model."""
    from training.loco import _done
    commands = fold_commands("verse006", tmp_path, minutes=None, device="cpu", max_steps=None, shipped_steps=True)
    assert not any(_done(commands, n) for n in range(len(commands)))
    models = tmp_path / "verse006" / "models"
    models.mkdir(parents=True)
    for name in ("ct-spine-localizer", "ct-vertebra-seg"):
        (models / f"{name}.onnx").write_bytes(b"")
        (models / f"{name}.json").write_text("{}")
    skipped = [" ".join(c[3:5]) for n, c in enumerate(commands) if _done(commands, n)]
    assert skipped == ["train localizer", "export-onnx " + str(tmp_path / "verse006" / "localizer_cpu" / "last.pt"),
                       "train vertebra_seg", "train vertebra_seg",
                       "export-onnx " + str(tmp_path / "verse006" / "vertebra_seg_cpu_ft" / "last.pt")]


def test_kept_models_are_copied_whole(tmp_path):
    """A model is copied only with its card, and never over one already there."""
    from training.loco import _copy_models
    source, target = tmp_path / "a", tmp_path / "b"
    source.mkdir()
    (source / "m.onnx").write_bytes(b"onnx")
    (source / "m.json").write_text("{}")
    (source / "half.onnx").write_bytes(b"no card yet")
    _copy_models(source, target)
    assert sorted(p.name for p in target.iterdir()) == ["m.json", "m.onnx"]
    (source / "m.onnx").write_bytes(b"retrained")
    _copy_models(source, target)
    assert (target / "m.onnx").read_bytes() == b"onnx"
    _copy_models(tmp_path / "missing", target)
