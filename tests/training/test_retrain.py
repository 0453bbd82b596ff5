"""`spineplan retrain` (training/retrain.py) with tiny budgets: it runs end to end from the shipped weights,
resumes after being stopped, writes a full card, is refused when worse (the active model unchanged), and
an accepted model, once in use, is what `segment` runs (its sha256 in metrics.json)."""
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from spine_core.errors import Cancelled
from spine_core.models.card import ModelCard, sha256_of
from spine_core.models.registry import SHIPPED_FOLDER
from spine_core.models.site import SITE_ENV, SiteModels
from training.onnx_weights import load_onnx_weights
from training.retrain import CONFIG, MODEL_ID, Reporter, RetrainOptions, compare, run_retrain

SMALL = {"first_level": "T12", "last_level": "L3", "spacing_mm": (1.5, 1.5, 1.5), "fov_mm": 150.0,
         "centre_on_spine": True}
TINY = ["data.phantom_train_seeds=[1000]", 'data.phantom_options={"spacing_mm": [1.5, 1.5, 1.5], "fov_mm": 140.0, '
        '"centre_on_spine": true, "first_level": "T12", "last_level": "L3"}']


def _phantom(seed, **extra):
    from spine_core.phantom import PhantomOptions, generate_phantom

    return generate_phantom(PhantomOptions.sample(seed, **{**SMALL, **extra}))


@pytest.fixture(scope="module")
def site_folders(tmp_path_factory):
    """A site's scan folder (one patient-named file) and a corrections folder (one image + labels pair)."""
    from spine_core.io import save_volume
    from spine_core.io.writers import save_labelmap

    root = tmp_path_factory.mktemp("site")
    scans, corrections = root / "scans", root / "corrections" / "case1"
    scans.mkdir()
    corrections.mkdir(parents=True)
    save_volume(_phantom(4242).image, scans / "DOE_JOHN_1970.nii.gz")
    case = _phantom(4343)
    save_volume(case.image, corrections / "image.nii.gz")
    save_labelmap(case.labels, corrections / "labels.nii.gz")
    return scans, corrections.parent


@pytest.fixture()
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site-models"
    monkeypatch.setenv(SITE_ENV, str(folder))
    return folder


def _options(site_folders, out, **extra):
    """A tiny learning rate: four steps at the real one already move a held-back Dice by ~0.006, and this
    test is about the plumbing (the refusal has its own test)."""
    scans, corrections = site_folders
    return RetrainOptions(scans=scans, corrections=corrections, out=out, budget_minutes=5, device="cpu",
                          reference_seeds=(77001,), reference_options=dict(SMALL), threads=1,
                          overrides=[*TINY, "optim.lr=1e-7"], **extra)


def test_the_parent_weights_load_into_torch_and_reproduce_the_onnx_model():
    import onnxruntime as ort
    import torch

    from training.nets import build_model

    config = json.loads(CONFIG.read_text())
    model = build_model("vertebra_seg", config["net"]).eval()
    load_onnx_weights(model, SHIPPED_FOLDER / f"{MODEL_ID}.onnx")
    x = torch.rand(1, 2, 32, 32, 32)
    session = ort.InferenceSession(str(SHIPPED_FOLDER / f"{MODEL_ID}.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(model(x).numpy() - expected).max() < 1e-4


def test_compare_refuses_any_drop_beyond_the_tolerance():
    ok, rows, reason = compare({"ref": ({"dice": 0.80}, {"dice": 0.797})}, 0.005)
    assert ok and rows[0]["verdict"] == "not worse"
    ok, rows, reason = compare({"ref": ({"dice": 0.80}, {"dice": 0.85}),
                                "held back": ({"dice": 0.70}, {"dice": 0.60})}, 0.005)
    assert not ok and [r["verdict"] for r in rows] == ["better", "WORSE"] and "held back" in reason


def test_runs_end_to_end_resumes_after_a_stop_and_the_accepted_model_is_what_segment_runs(
        site_folders, tmp_path, site):
    out = tmp_path / "retrain"
    seen = []

    def stop_at_step_two(stage, fraction, message, eta_s):
        seen.append(stage)
        if message.startswith("training: step 2,"):
            raise Cancelled("stopped by the test")

    with pytest.raises(Cancelled):
        run_retrain(_options(site_folders, out, max_steps=4), Reporter(stop_at_step_two))
    import torch

    assert torch.load(out / "work" / "training" / "last.pt", weights_only=True)["step"] == 2
    assert not (out / "retrain.json").exists()

    outcome = run_retrain(_options(site_folders, out, max_steps=4))          # resumes: steps 3 and 4 only
    assert outcome["steps"] == 4
    metrics = [json.loads(line) for line in (out / "work" / "training" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["phase"] == "train"].count(1) == 1
    assert {r["set"] for r in outcome["comparison"]} == {"reference phantoms (1)", "held-back corrections (1)"}
    assert outcome["accepted"], outcome["reason"]

    card = ModelCard.load(outcome["card"])
    adaptation = card.training["site_adaptation"]
    assert card.id == MODEL_ID and "+site" in card.version and card.sha256 == sha256_of(outcome["onnx"])
    assert adaptation["parent"]["sha256"] == sha256_of(SHIPPED_FOLDER / f"{MODEL_ID}.onnx")
    assert adaptation["data"]["site_scans"] == 1 and len(adaptation["data"]["site_scan_digests"][0]) == 16
    assert adaptation["data"]["corrections_held_back"] == 1 and adaptation["budget_minutes"] == 5
    assert "DOE" not in Path(outcome["card"]).read_text()                    # no names, only digests
    assert len(outcome["comparison"]) == 4 and all(r["verdict"] in ("not worse", "better")
                                                   for r in outcome["comparison"])
    assert "held-back corrections (1)" in (out / "comparison.md").read_text()

    SiteModels().register(outcome["onnx"], outcome["card"])
    SiteModels().use(MODEL_ID)
    scan = next(site_folders[0].iterdir())
    assert main(["segment", str(scan), "-o", str(tmp_path / "result"), "--device", "cpu", "--modality", "ct"]) == 0
    used = {m["id"]: m["sha256"] for m in json.loads((tmp_path / "result" / "metrics.json").read_text())["models"]}
    assert used[MODEL_ID] == card.sha256 != sha256_of(SHIPPED_FOLDER / f"{MODEL_ID}.onnx")


def test_a_bad_retrain_is_refused_and_the_active_model_is_unchanged(site_folders, tmp_path, site, capsys):
    """Corrupted corrections (every label moved 40 mm off its vertebra) and a reckless learning rate (so
    that the damage shows within a tiny budget): the check refuses, nothing is registered or activated."""
    from spine_core.io import load_labels
    from spine_core.io.writers import save_labelmap

    scans, corrections = site_folders
    bad = tmp_path / "bad" / "case1"
    bad.mkdir(parents=True)
    (bad / "image.nii.gz").symlink_to(corrections / "case1" / "image.nii.gz")
    labels = load_labels(corrections / "case1" / "labels.nii.gz")
    save_labelmap(labels.with_array(np.roll(labels.array, 27, axis=1)), bad / "labels.nii.gz")
    (tmp_path / "bad" / "case2").symlink_to(bad)                               # one trained, one held back
    before = SiteModels().active()
    code = main(["retrain", "--scans", str(scans), "--corrections", str(tmp_path / "bad"), "-o", str(tmp_path / "out"),
                 "--budget-minutes", "5", "--device", "cpu", "--activate", "--max-steps", "6", "--threads", "1",
                 "--reference-seeds", "77001", "--hold-back", "0.5", "--set", "optim.lr=0.5",
                 *[a for s in TINY for a in ("--set", s)]])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 4, captured.err
    outcome = json.loads((tmp_path / "out" / "retrain.json").read_text())
    assert not outcome["accepted"] and "WORSE" in printed and outcome["onnx"] is None
    assert outcome["data"]["corrections_trained"] == 1
    assert not (tmp_path / "out" / "models").exists()
    assert SiteModels().active() == before and MODEL_ID not in SiteModels().entries()


def test_bad_input_is_refused_with_exit_2(tmp_path, capsys):
    assert main(["retrain", "--scans", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["retrain", "--scans", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 2
    assert "No scans were found" in capsys.readouterr().err


def test_the_recorded_command_leaves_the_sites_folders_out():
    from app.cli import build_parser
    from app.cmd_retrain import _recorded_command

    args = build_parser().parse_args(["retrain", "--scans", "/pacs/DOE_JOHN", "--corrections", "/plans/DOE_JOHN",
                                      "-o", "/out/DOE_JOHN", "--budget-minutes", "45", "--set", "optim.lr=0.0001"])
    command = _recorded_command(args)
    assert "DOE" not in command and "--scans SITE_SCANS" in command and "-o OUT" in command
    assert "--budget-minutes 45.0" in command and "--set optim.lr=0.0001" in command
