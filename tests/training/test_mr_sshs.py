"""M4 (SSHSNet style): shapes, the CPS pair, cross pseudo supervision and CutMix, training on a toy MR,
export of both stages with onnxruntime parity, and the cross-validation plan."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from training.export import export_checkpoint, export_onnx, parity_error  # noqa: E402
from training.mr_data import MRCase  # noqa: E402
from training.nets import build_model  # noqa: E402
from training.tasks_mr_sshs import (MRSSHS2DTask, MRSSHS3DTask, cps_loss, cutmix, cutmix_boxes,  # noqa: E402
                                    pseudo_labels, ramp)

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
NET2D = {"base_channels": 4, "levels": 3, "feature_channels": 4}
NET3D = {"base_channels": 4, "feature_channels": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is faster than two on a shared machine (the Trainer does the same
    with optim.threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nets():
    torch.manual_seed(0)
    return build_model("mr_sshs2d", NET2D).eval(), build_model("mr_sshs3d", NET3D).eval()


@torch.no_grad()
def test_shapes_and_the_pair():
    pair, net3d = _nets()
    seg, features = pair(torch.rand(2, 3, 64, 48))
    assert seg.shape == (2, 2, 64, 48) and features.shape == (2, 4, 16, 12)   # features at 1/4
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(pair(x)[0], pair.a(x)[0])                             # the pair answers as its first
    assert not torch.equal(pair.a(x)[0], pair.b(x)[0])                       # differently initialised
    assert net3d(torch.rand(1, 3, 6, 32, 24), torch.rand(1, 4, 6, 8, 6)).shape == (1, 2, 6, 32, 24)
    plain = build_model("mr_sshs3d", {**NET3D, "tri_attention": False}).eval()
    assert plain(torch.rand(1, 3, 4, 16, 16), torch.rand(1, 4, 4, 4, 4)).shape == (1, 2, 4, 16, 16)
    # building the pair's second network leaves the caller's random stream as a single network would
    torch.manual_seed(3)
    build_model("mr_sshs2d", NET2D)
    after_pair = torch.rand(1)
    torch.manual_seed(3)
    from training.nets.mr_sshs import MRSSHS2D, MRSSHS2DConfig
    MRSSHS2D(MRSSHS2DConfig(**NET2D))
    assert torch.equal(after_pair, torch.rand(1))
    torch.manual_seed(1)
    with pytest.raises(ValueError, match="starts as the first"):              # pair seed = training seed
        build_model("mr_sshs2d", {**NET2D, "pair_seed": 1})


def test_both_stages_export_with_parity_at_two_sizes(tmp_path):
    pair, net3d = _nets()
    gen = torch.Generator().manual_seed(1)
    path = export_onnx(pair.exported(), (torch.rand(1, 3, 64, 64, generator=gen),), tmp_path / "s1.onnx")
    assert parity_error(pair.a, path, (torch.rand(1, 3, 64, 64, generator=gen),)) < 1e-4
    assert parity_error(pair.a, path, (torch.rand(2, 3, 96, 64, generator=gen),)) < 1e-4
    inputs = net3d.example_inputs([6, 32, 32])
    assert [tuple(t.shape) for t in inputs] == [(1, 3, 6, 32, 32), (1, 4, 6, 8, 8)]
    path = export_onnx(net3d, inputs, tmp_path / "s2.onnx")
    assert parity_error(net3d, path, inputs) < 1e-4
    other = (torch.rand(1, 3, 5, 48, 32, generator=gen), torch.rand(1, 4, 5, 12, 8, generator=gen))
    assert parity_error(net3d, path, other) < 1e-4


class Oracle(torch.nn.Module):
    """A 'network' that reads the centre slice: bright is body, mid-grey disc, with saturated logits."""

    def __init__(self, sign: float = 1.0) -> None:
        super().__init__()
        self.sign = sign

    def forward(self, x):
        centre = x[:, 1:2]
        body = (centre > 0.7).float()
        disc = ((centre > 0.3) & (centre < 0.6)).float()
        return self.sign * 40.0 * (2 * torch.cat([body, disc], 1) - 1), None


def _unlabelled_batch(known, n=4, size=16):
    gen = torch.Generator().manual_seed(0)
    return {"image": torch.rand((n, 3, size, size), generator=gen), "target": torch.zeros((n, 2, size, size)),
            "known": torch.tensor([known] * n, dtype=torch.float32), "box": cutmix_boxes(n, size, size, gen),
            "partner": torch.roll(torch.arange(n), 1)}


def test_cps_loss_is_zero_when_the_networks_agree_and_only_where_a_class_is_unlabelled():
    unlabelled = _unlabelled_batch((0, 0))
    assert float(cps_loss(Oracle(), Oracle(), unlabelled)) < 1e-5
    assert float(cps_loss(Oracle(), Oracle(-1.0), unlabelled)) > 1.0

    class BodyOpposite(Oracle):       # disagrees with Oracle on bodies only
        def forward(self, x):
            seg, _ = super().forward(x)
            return torch.cat([-seg[:, :1], seg[:, 1:]], 1), None

    assert float(cps_loss(Oracle(), BodyOpposite(), _unlabelled_batch((1, 0)))) < 1e-5    # bodies labelled
    assert float(cps_loss(Oracle(), BodyOpposite(), unlabelled)) > 1.0


def test_cutmix_mixes_images_and_pseudo_labels_with_the_same_box():
    gen = torch.Generator().manual_seed(2)
    image, labels = torch.rand((4, 3, 20, 24), generator=gen), (torch.rand((4, 2, 20, 24), generator=gen) > 0.5).float()
    box = cutmix_boxes(4, 20, 24, gen)
    partner = torch.roll(torch.arange(4), 1)
    mixed_image, mixed_labels = cutmix(box, partner, image, labels)
    for i in range(4):
        inside = box[i, 0] > 0
        assert 0 < int(inside.sum()) < 20 * 24
        assert torch.equal(mixed_image[i][:, inside], image[partner[i]][:, inside])
        assert torch.equal(mixed_labels[i][:, inside], labels[partner[i]][:, inside])
        assert torch.equal(mixed_image[i][:, ~inside], image[i][:, ~inside])
        assert torch.equal(mixed_labels[i][:, ~inside], labels[i][:, ~inside])


def test_pseudo_labels_never_contradict_a_labelled_class_and_the_weight_ramps():
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, :2] = 1.0                                  # labelled body in the top half
    labels = pseudo_labels(torch.full((1, 2, 4, 4), 5.0), target, torch.tensor([[1.0, 0.0]]))
    assert labels[0, 1, :2].sum() == 0 and labels[0, 1, 2:].sum() == 8
    assert ramp(0, 100) == pytest.approx(np.exp(-5)) and ramp(50, 100) < ramp(80, 100) < ramp(100, 100) == 1.0


def toy_case(name: str, body: bool, disc: bool, seed: int) -> MRCase:
    """A sagittal toy: bodies bright, discs mid-grey, stacked along S; labels only for what it holds."""
    rng = np.random.default_rng(seed)
    image = (0.1 + 0.05 * rng.random((8, 48, 64))).astype(np.float32)
    labels = np.zeros(image.shape, np.int16)
    s = 4
    for level in range(4):
        image[2:6, 12:36, s:s + 9] = 0.85
        labels[2:6, 12:36, s:s + 9] = 24 - level if body else 0
        image[2:6, 14:34, s + 9:s + 13] = 0.45
        labels[2:6, 14:34, s + 9:s + 13] = 124 - level if disc else 0
        s += 14
    return MRCase(name, image, labels, body, disc, np.arange(2, 6))


def _config(stem: str, **task) -> dict:
    config = json.loads((CONFIGS / f"{stem}.json").read_text())
    config["net"].update(NET2D if stem.startswith("mr_sshs2d") else NET3D)
    config["data"].update(patch_size=[3, 32, 32] if stem.startswith("mr_sshs2d") else [4, 32, 32])
    config["task"].update(task)
    config["optim"].update(batch_size=4, max_steps=2, log_every=1, checkpoint_every=2, validate_every=2, threads=1)
    return config


def _train(task, model, steps: int, lr: float = 0.01) -> tuple[float, float]:
    """Loss on one fixed batch before and after ``steps`` Adam steps on fresh batches."""
    torch.manual_seed(0)
    fixed = task.batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    before = float(task.loss(model, fixed)[0].detach())
    for _ in range(steps):
        optimizer.zero_grad()
        task.loss(model, task.batch())[0].backward()
        optimizer.step()
    return before, float(task.loss(model, fixed)[0].detach())


def _toy_train():
    return [toy_case("body_only", True, False, 0), toy_case("disc_only", False, True, 1)]


def test_a_few_cps_steps_lower_the_stage_one_loss_on_a_toy_mr():
    unlabelled = [toy_case("unlabelled", False, False, 2)]
    task = MRSSHS2DTask(_config("mr_sshs2d_cpu", ramp_steps=0), _toy_train(), [], seed=0, unlabelled=unlabelled)
    batch = task.batch()
    assert batch["u_image"].shape == (8, 3, 32, 32) and batch["u_box"].shape == (8, 1, 32, 32)
    assert task.consistency_weight() == pytest.approx(1.5)
    torch.manual_seed(0)
    before, after = _train(task, build_model("mr_sshs2d", NET2D), 15)
    assert after < before


def test_a_few_steps_lower_the_stage_two_loss_on_stage_one_outputs():
    torch.manual_seed(0)
    stage1 = build_model("mr_sshs2d", NET2D).exported().eval().requires_grad_(False)
    task = MRSSHS3DTask(_config("mr_sshs3d_cpu"), _toy_train(), [], seed=0, stage1=stage1)
    batch = task.batch()
    assert batch["slab"].shape == (4, 6, 32, 32) and batch["target"].shape == (4, 2, 4, 32, 32)
    image, features = task.inputs(batch)
    assert image.shape == (4, 3, 4, 32, 32) and features.shape == (4, 4, 4, 8, 8)
    assert torch.equal(image[:, 0], batch["slab"][:, 1:-1])                        # the patch's own slices
    assert float(image[:, 1:].min()) >= 0 and float(image[:, 1:].max()) <= 1     # stage-1 probabilities
    with torch.no_grad():                                  # slice k is read with its two neighbours
        expected = torch.sigmoid(stage1(batch["slab"][:, 1:4])[0])
    assert torch.allclose(image[:, 1:, 1], expected, atol=1e-5)
    torch.manual_seed(0)
    before, after = _train(task, build_model("mr_sshs3d", NET3D), 10)
    assert after < before


def test_trainer_runs_both_stages_and_exports_the_first_network_of_the_pair(tmp_path):
    from spine_core.models import ModelCard

    train = _toy_train()
    last1 = run(_config("mr_sshs2d_cpu"), tmp_path / "stage1", train)
    onnx1, card1, parity1 = export_checkpoint(last1, tmp_path / "models", "mr-sshs-2d")
    card1 = ModelCard.load(card1)
    assert parity1 < 1e-4 and card1.outputs == ["segmentation", "features"] and card1.patch_size == [32, 32]
    single = build_model("mr_sshs2d", NET2D).exported()
    assert card1.parameters == sum(p.numel() for p in single.parameters())          # one network, not two
    assert card1.modality == "MR" and card1.label_ids == [1, 2]
    config = _config("mr_sshs3d_cpu", stage1_checkpoint=str(last1))
    last2 = run(config, tmp_path / "stage2", train)
    onnx2, card2, parity2 = export_checkpoint(last2, tmp_path / "models", "mr-sshs-3d")
    card2 = ModelCard.load(card2)
    assert parity2 < 1e-4 and card2.inputs == ["image", "features2d"] and card2.patch_size == [4, 32, 32]
    # the exported pair runs in the inference code as the app runs it (onnxruntime sessions)
    from spine_core.pipeline.models import LoadedModel
    from spine_core.pipeline.mr_sshs import sshs_probabilities
    from spine_core.progress import NullProgress
    from training.export import ort_session

    stage1, stage2 = (LoadedModel(card, ort_session(path), "cpu") for card, path in ((card1, onnx1), (card2, onnx2)))
    prob = sshs_probabilities(train[0].image[:, :40, :50], stage1, stage2, NullProgress())
    assert prob.shape == (4, 8, 40, 50) and np.all((prob >= 0) & (prob <= 1)) and not prob[2:].any()


def run(config, out, train):
    from training.trainer import run_training

    return run_training(config, out, command="pytest", progress_bar=False, datasets=(train, []))


def test_cross_validation_plans_stage_one_then_stage_two_per_fold(tmp_path, monkeypatch, capsys):
    from training.mr_cv import main

    names = ["IVD_1", "VB2_1", "VB3_1", "VB3_2"]
    for name in names:
        folder = tmp_path / "shared" / "data" / "mr" / name
        folder.mkdir(parents=True)
        (folder / "image.nii.gz").touch()
        (folder / "labels.nii.gz").touch()
    monkeypatch.setenv("SPINEPLAN_SHARED", str(tmp_path / "shared"))
    out = tmp_path / "cv"
    assert main(["--method", "sshs", "--folds", "2", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8                                   # 2 folds x (train, export) x 2 stages
    folds = json.loads((out / "folds.json").read_text())
    for k in range(2):
        train1, export1, train2, export2 = lines[4 * k:4 * k + 4]
        assert "train mr_sshs2d" in train1 and "mr_sshs2d_cpu.json" in train1
        assert "train mr_sshs3d" in train2 and f"task.stage1_checkpoint={out / f'fold{k}' / 'stage1' / 'last.pt'}" in train2
        assert export1.endswith("--id mr-sshs-2d") and str(out / f"fold{k}" / "stage1" / "last.pt") in export1
        assert export2.endswith("--id mr-sshs-3d") and str(out / f"fold{k}" / "models") in export2
        for line in (train1, train2):
            train_cases = json.loads(line.split("data.train_cases=")[1].split(" --set")[0])
            assert sorted(train_cases + folds[f"fold{k}"]) == sorted(names)


def test_the_train_command_accepts_every_network_the_trainer_knows():
    """The cross-validation runs `spineplan train mr_sshs2d ...` as a subprocess: its dry run above cannot
    tell that the command refuses the network's name."""
    from app.cmd_train import MODELS
    from training.tasks import TASKS

    assert sorted(MODELS) == sorted(TASKS)
