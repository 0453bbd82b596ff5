"""M3 semi-supervised pieces: ramps, the two consistency losses, and a few teacher-student steps."""
import pytest

torch = pytest.importorskip("torch")

from training.tasks_m3 import id_consistency, ramp, seg_consistency  # noqa: E402
from training.trainer import load_checkpoint, run_training  # noqa: E402
from tests.training.test_trainer_export import _rows, tiny_config  # noqa: E402


def test_ramp_is_zero_in_the_warm_up_then_linear_to_one():
    assert [ramp(s, 10, 20) for s in (0, 9, 10, 20, 30, 99)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]


def test_seg_consistency_counts_only_confident_teacher_voxels():
    teacher = torch.tensor([0.95, 0.05, 0.6]).view(1, 1, 3, 1, 1)
    wrong = torch.tensor([-5.0, 5.0, -5.0]).view(1, 1, 3, 1, 1)      # disagrees everywhere
    agree = torch.tensor([5.0, -5.0, -5.0]).view(1, 1, 3, 1, 1)      # disagrees only where unsure
    assert seg_consistency(agree, teacher, 0.9) < 0.01 < seg_consistency(wrong, teacher, 0.9)
    assert seg_consistency(agree, teacher, 0.5) > seg_consistency(agree, teacher, 0.9)


def test_id_consistency_follows_the_teacher_on_its_confident_foreground():
    teacher = torch.full((1, 3, 2, 1, 1), -5.0)
    teacher[0, 1, 0], teacher[0, 2, 1] = 5.0, 5.0                    # cell 0 -> level 1, cell 1 -> level 2
    fg = torch.tensor([True, False]).view(1, 2, 1, 1)                # cell 1 is background
    right = teacher.clone()
    wrong = teacher.clone()
    wrong[0, :, 0] = torch.tensor([5.0, -5.0, -5.0]).view(3, 1, 1)
    assert id_consistency(right, teacher, fg, 0.5, 0.5) < 0.01 < id_consistency(wrong, teacher, fg, 0.5, 0.5)
    assert float(id_consistency(wrong, teacher, fg * False, 0.5, 0.5)) == 0.0


def test_teacher_student_steps_log_consistency_and_resume_with_the_teacher(tmp_path):
    config = tiny_config("joint", steps=5)
    config["data"]["toy_unlabelled"] = 2
    config["task"]["semi"] = {"warmup_steps": 2, "ramp_steps": 2, "unlabelled_batch": 1, "ema_decay": 0.5}
    last = run_training(config, tmp_path, progress_bar=False)
    rows = [r for r in _rows(tmp_path) if r["phase"] == "train"]
    assert "seg_consistency" not in rows[1] and rows[2]["consistency_weight"] == 0.0
    assert rows[3]["consistency_weight"] == 0.5 and rows[4]["consistency_weight"] == 1.0
    assert all(r["id_consistency"] >= 0 and r["seg_consistency"] >= 0 for r in rows[2:])
    ckpt = load_checkpoint(last)
    teacher, student = ckpt["task_state"]["teacher"], ckpt["state_dict"]
    assert ckpt["task_state"]["steps_seen"] == 5 and teacher.keys() == student.keys()
    assert any(not torch.equal(teacher[k], student[k]) for k in student if student[k].is_floating_point())
    assert ckpt["training"]["data"]["unlabelled"]["cases"] == ["toy20000", "toy20001"]
    config["optim"]["max_steps"] = 6
    again = run_training(config, tmp_path / "resumed", resume=last, progress_bar=False)
    assert load_checkpoint(again)["task_state"]["steps_seen"] == 6


def test_unlabelled_folder_lists_each_scan(tmp_path):
    from training.data import unlabelled_scan_paths

    for name in ("a.nii.gz", "b.nrrd", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in unlabelled_scan_paths([tmp_path])] == ["a.nii.gz", "b.nrrd"]
    with pytest.raises(FileNotFoundError):
        unlabelled_scan_paths([tmp_path / "missing"])
    assert unlabelled_scan_paths([tmp_path / "a.nii.gz"]) == [tmp_path / "a.nii.gz"]


def test_level_ce_is_low_when_the_right_level_wins_inside_each_vertebra():
    from training.tasks_m3 import level_ce_loss

    instances = torch.zeros(1, 3, 2, 1, 1)
    instances[0, 1, 0], instances[0, 2, 1] = 1.0, 0.3          # cell 1 mostly background: ignored
    right = torch.full((1, 3, 2, 1, 1), -5.0)
    right[0, 1, 0] = 5.0
    wrong = torch.full((1, 3, 2, 1, 1), -5.0)
    wrong[0, 0, 0] = 5.0
    assert level_ce_loss(right, instances) < 0.01 < level_ce_loss(wrong, instances)
    assert float(level_ce_loss(right, instances * 0)) == 0.0
