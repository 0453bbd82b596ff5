"""Training smoke runs on toy volumes, checkpoint + resume, export-onnx + model card + registry."""
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from app.cli import main  # noqa: E402
from spine_core.models import ModelCard, ModelRegistry, sha256_of  # noqa: E402
from training.trainer import load_checkpoint, run_training  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
TINY_NET = {"localizer": {"base_channels": 4},
            "joint": {"channels": [4, 8, 8, 16], "id_channels": 8, "ssm_head_dim": 8},
            "detector2d": {"base_channels": 4, "levels": 3},
            "vertebra_seg": {"base_channels": 4, "levels": 3},
            "labeler": {"base_channels": 4, "feature_dim": 16, "heads": 2, "mask_size": [16, 16, 8]}}
PATCH = {"detector2d": [1, 32, 32], "joint": [16, 16, 32]}


def tiny_config(model: str, steps: int = 4) -> dict:
    config = json.loads((CONFIGS / f"{model}.json").read_text())
    config["net"].update(TINY_NET[model])
    config["data"].update(patch_size=PATCH.get(model, [16, 16, 16]), spacing_mm=[3.0, 3.0, 3.0],
                          train_cases=[], val_cases=[], phantom_train_seeds=[], phantom_val_seeds=[],
                          toy_train=2, toy_val=1, val_patches=2)
    config["optim"].update(max_steps=steps, checkpoint_every=2, validate_every=2, batch_size=2, log_every=1)
    return config


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_shipped_configs_are_complete():
    from training.nets import NETS, build_model
    from training.tasks import data_config
    from training.trainer import optim_config

    # One reference config per network, plus variants such as the CPU budget runs (<name>_cpu).
    stems = sorted(p.stem for p in CONFIGS.glob("*.json"))
    assert sorted(s for s in stems if s in NETS) == sorted(NETS)
    for stem in stems:
        config = json.loads((CONFIGS / f"{stem}.json").read_text())
        name = config["model"]
        assert name in NETS and stem.startswith(name), stem
        data_config(config), optim_config(config), build_model(name, config["net"])


@pytest.mark.parametrize("model", ["localizer", "joint", "detector2d", "vertebra_seg", "labeler"])
def test_a_few_training_steps_run_log_and_checkpoint(model, tmp_path):
    last = run_training(tiny_config(model), tmp_path, command="pytest", progress_bar=False)
    rows = _rows(tmp_path)
    train = [r for r in rows if r["phase"] == "train"]
    assert len(train) == 4 and all(torch.isfinite(torch.tensor(r["loss"])) for r in train)
    assert [r["step"] for r in rows if r["phase"] == "val"] == [2, 4]
    ckpt = load_checkpoint(last)
    assert ckpt["step"] == 4 and ckpt["model_name"] == model and ckpt["metrics"]
    assert ckpt["training"]["command"] == "pytest" and (tmp_path / "best.pt").exists()


def test_resume_continues_from_the_checkpoint(tmp_path):
    first = run_training(tiny_config("localizer", steps=2), tmp_path / "a", progress_bar=False)
    config = tiny_config("localizer", steps=4)
    last = run_training(config, tmp_path / "a", resume=first, progress_bar=False)
    steps = [r["step"] for r in _rows(tmp_path / "a") if r["phase"] == "train"]
    assert steps == [1, 2, 3, 4]
    a, b = load_checkpoint(first), load_checkpoint(last)
    assert b["step"] == 4 and b["wall_time_s"] >= a["wall_time_s"]
    assert b["optimizer"]["state"], "optimizer state was saved"


def test_loss_decreases_on_a_toy_spine(tmp_path):
    config = tiny_config("localizer", steps=30)
    config["optim"].update(lr=0.01, validate_every=100, checkpoint_every=100, batch_size=2)
    config["task"] = {"random_spacing": False, "geometry": {"flip_p": [0, 0, 0], "max_rotation_deg": [0, 0, 0],
                                                             "scale_range": [1, 1]}}
    run_training(config, tmp_path, progress_bar=False)
    losses = [r["loss"] for r in _rows(tmp_path) if r["phase"] == "train"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_wall_clock_budget_stops_training(tmp_path):
    config = tiny_config("localizer", steps=10_000)
    config["optim"]["max_minutes"] = 0.001
    last = run_training(config, tmp_path, progress_bar=False)
    assert load_checkpoint(last)["step"] < 10_000
    assert any(r["phase"] == "stop" for r in _rows(tmp_path))


def test_resuming_a_run_whose_budget_is_spent_says_how_to_continue(tmp_path, capsys):
    config = tiny_config("localizer", steps=10_000)
    config["optim"]["max_minutes"] = 0.001
    config_path = tmp_path / "loc.json"
    config_path.write_text(json.dumps(config))
    assert main(["train", "localizer", "--config", str(config_path), "--out", str(tmp_path / "a")]) == 0
    stopped = load_checkpoint(tmp_path / "a" / "last.pt")["step"]
    capsys.readouterr()
    args = ["train", "localizer", "--config", str(config_path), "--out", str(tmp_path / "b"),
            "--resume", str(tmp_path / "a" / "last.pt")]
    assert main(args) == 2
    message = capsys.readouterr().err
    assert "optim.max_minutes" in message and "Traceback" not in message
    assert not (tmp_path / "b" / "last.pt").exists()
    assert main(args + ["--set", "optim.max_minutes=0", "--set", f"optim.max_steps={stopped + 2}"]) == 0
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == stopped + 2


def test_cli_train_then_export_onnx_writes_a_card_the_registry_accepts(tmp_path):
    config_path = tmp_path / "loc.json"
    config_path.write_text(json.dumps(tiny_config("localizer", steps=2)))
    assert main(["train", "localizer", "--config", str(config_path), "--out", str(tmp_path / "run")]) == 0
    models = tmp_path / "models"
    assert main(["export-onnx", str(tmp_path / "run" / "last.pt"), "--out", str(models), "--id", "loc-test"]) == 0
    card = ModelCard.load(models / "loc-test.json")
    assert card.sha256 == sha256_of(models / "loc-test.onnx")
    assert card.task == "spine-localization" and card.modality == "CT"
    assert card.input_spacing_mm == [3.0, 3.0, 3.0] and card.patch_size == [16, 16, 16]
    assert card.intensity_window == [-1000.0, 2000.0] and card.label_ids == [1]
    assert card.metrics["onnx_parity_max_abs_error"] < 1e-4 and "dice" in card.metrics
    assert card.training["steps"] == 2 and card.training["command"].startswith("spineplan train localizer")
    assert card.parameters > 0 and card.license.startswith("Proprietary")
    assert not list(models.glob("*.data")), "single-file ONNX"
    registry = ModelRegistry(models)
    assert registry.onnx_path("loc-test") == models / "loc-test.onnx"


@pytest.mark.parametrize("model", ["joint", "labeler", "detector2d"])
def test_export_multi_output_models(model, tmp_path):
    from training.export import export_checkpoint

    last = run_training(tiny_config(model, steps=2), tmp_path / "run", progress_bar=False)
    onnx_path, card_path, parity = export_checkpoint(last, tmp_path / "models")
    card = ModelCard.load(card_path)
    assert parity < 1e-4 and card.sha256 == sha256_of(onnx_path)
    if model == "joint":
        assert card.outputs == ["seg", "heatmaps"] and card.label_ids[-3:] == [25, 26, 28]
    if model == "labeler":
        assert card.inputs == ["masks"] and card.patch_size == [16, 16, 8]
    if model == "detector2d":
        assert card.outputs == ["heatmap", "size"] and card.patch_size == [32, 32]


def test_set_overrides_one_setting_and_is_recorded_in_the_command(tmp_path):
    from training.config import apply_overrides

    config = apply_overrides(tiny_config("joint", steps=2), ["net.long_range=transformer", "net.cbam=false",
                                                             "optim.lr=0.005"])
    assert config["net"]["long_range"] == "transformer" and config["net"]["cbam"] is False
    assert config["optim"]["lr"] == 0.005
    with pytest.raises(ValueError, match="SECTION.KEY=VALUE"):
        apply_overrides(config, ["lr0.1"])
    assert main(["train", "joint", "--config", str(CONFIGS / "joint.json"), "--set", "lr0.1"]) == 2
    path = tmp_path / "joint.json"
    path.write_text(json.dumps(tiny_config("joint", steps=2)))
    assert main(["train", "joint", "--config", str(path), "--set", "net.long_range=none",
                 "--out", str(tmp_path / "run")]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["net_config"]["long_range"] == "none"
    assert "--set net.long_range=none" in ckpt["training"]["command"]


def test_init_from_a_checkpoint_starts_from_its_weights(tmp_path):
    config = tiny_config("joint", steps=2)
    first = run_training(config, tmp_path / "run", progress_bar=False)
    config["optim"].update(max_steps=0)
    again = run_training(config, tmp_path / "again", progress_bar=False, init_from=first)
    a, b = load_checkpoint(first)["state_dict"], load_checkpoint(again)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    config["net"]["channels"] = [4, 8, 16, 16]
    with pytest.raises(ValueError, match="does not match this network"):
        run_training(config, tmp_path / "bad", progress_bar=False, init_from=first)


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "joint"}')
    assert main(["train", "localizer", "--config", str(bad)]) == 2
    assert main(["export-onnx", str(tmp_path / "missing.pt")]) == 2
    good = tmp_path / "loc.json"
    good.write_text(json.dumps(tiny_config("localizer", steps=1)))
    assert main(["train", "localizer", "--config", str(good), "--init-from", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
