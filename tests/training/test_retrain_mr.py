"""`spineplan retrain --modality mr` (training/retrain.py, training/tasks_mr_adapt.py) with tiny budgets: the
shipped MR model's weights come back into torch exactly although its BatchNorms were folded at export; an
MR site folder with corrected cases is adapted end to end and the accepted model is what `segment
--modality mr` runs; without corrections the MR adaptation is refused before it trains. (A worse model's
refusal is the CT tests' guarded failure: the comparison is the same code for both.)"""
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from spine_core.models.card import ModelCard, sha256_of
from spine_core.models.registry import SHIPPED_FOLDER
from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.phantom.mr import MRPhantomOptions, generate_mr_phantom
from training.onnx_weights import load_onnx_weights

MR_ID = "mr-spine-seg"


def _small(seed):
    return generate_mr_phantom(MRPhantomOptions(seed=seed, first_level="L2", width_mm=40.0))


@pytest.fixture(scope="module")
def mr_site(tmp_path_factory):
    """A site folder holding one (generated) lumbar T2 MR under a patient-like name."""
    from spine_core.io import save_volume

    scans = tmp_path_factory.mktemp("mr-site") / "scans"
    scans.mkdir()
    save_volume(_small(4545).image, scans / "ROE_JANE_1961.nii.gz")
    return scans


@pytest.fixture(scope="module")
def mr_corrections(tmp_path_factory):
    """Two corrected MR cases (image + labels pairs): one trains, one is held back for the check."""
    from spine_core.io import save_volume
    from spine_core.io.writers import save_labelmap

    root = tmp_path_factory.mktemp("mr-corrections")
    for seed in (4646, 4747):
        case, phantom = root / f"case{seed}", _small(seed)
        case.mkdir()
        save_volume(phantom.image, case / "image.nii.gz")
        save_labelmap(phantom.labels, case / "labels.nii.gz")
    return root


@pytest.fixture()
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site-models"
    monkeypatch.setenv(SITE_ENV, str(folder))
    return folder


def _retrain(scans, out, *extra):
    return main(["retrain", "--scans", str(scans), "-o", str(out), "--budget-minutes", "5", "--device", "cpu",
                 "--threads", "1", "--reference-seeds", "78001", *extra])


def test_the_shipped_mr_model_loads_into_torch_although_its_batch_norms_were_folded():
    import onnx
    import onnxruntime as ort
    import torch

    from training.nets import build_model

    path = SHIPPED_FOLDER / f"{MR_ID}.onnx"
    names = {i.name for i in onnx.load(str(path)).graph.initializer}
    model = build_model("mr_scar", {}).eval()
    assert not any(k in names for k in model.state_dict() if ".body.0.weight" in k)    # folded at export
    load_onnx_weights(model, path)
    x = torch.rand(1, 3, 96, 64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        got = model(x)
    assert max(float(np.abs(g.numpy() - e).max()) for g, e in zip(got, expected)) < 1e-4
    # the convolutions keep weights of their trained size; the BatchNorm scales carry the rest
    conv = model.encoders[1].body[0].weight
    he = np.sqrt(2.0 / conv[0].numel())
    assert np.allclose(conv.detach().reshape(conv.shape[0], -1).pow(2).mean(1).sqrt().numpy(), he, rtol=1e-3)


def test_mr_retrain_runs_end_to_end_and_the_accepted_model_is_what_segment_runs(mr_site, mr_corrections, tmp_path,
                                                                                site, capsys):
    out = tmp_path / "retrain"
    code = _retrain(mr_site, out, "--corrections", str(mr_corrections), "--max-steps", "2", "--set", "optim.lr=1e-7")
    assert code == 0, capsys.readouterr().err
    outcome = json.loads((out / "retrain.json").read_text())
    assert outcome["accepted"] and outcome["modality"] == "MR" and outcome["model_id"] == MR_ID
    assert {r["metric"] for r in outcome["comparison"]} == {"mean body/disc Dice", "binary body/disc Dice"}
    assert {r["set"] for r in outcome["comparison"]} == {"reference MR phantoms (1)", "held-back corrections (1)"}
    assert outcome["data"]["corrections_trained"] == 1 and outcome["data"]["corrections_held_back"] == 1
    card = ModelCard.load(outcome["card"])
    adaptation = card.training["site_adaptation"]
    assert card.id == MR_ID and "+site" in card.version and card.sha256 == sha256_of(outcome["onnx"])
    assert adaptation["parent"]["sha256"] == sha256_of(SHIPPED_FOLDER / f"{MR_ID}.onnx")
    assert "cross pseudo supervision" in adaptation["method"] and adaptation["data"]["site_scans"] == 1
    assert "ROE" not in (out / "retrain.json").read_text() + Path(outcome["card"]).read_text()   # digests only

    SiteModels().register(outcome["onnx"], outcome["card"])
    SiteModels().use(MR_ID)
    scan = next(mr_site.iterdir())
    assert main(["segment", str(scan), "-o", str(tmp_path / "result"), "--device", "cpu", "--modality", "mr"]) == 0
    used = {m["id"]: m["sha256"] for m in json.loads((tmp_path / "result" / "metrics.json").read_text())["models"]}
    assert used[MR_ID] == card.sha256 != sha256_of(SHIPPED_FOLDER / f"{MR_ID}.onnx")


def test_scans_of_the_other_modality_are_set_aside_with_a_note(mr_site, tmp_path, capsys):
    """--modality ct on a folder of MR scans: nothing to adapt, and the message says what to do."""
    assert _retrain(mr_site, tmp_path / "out", "--modality", "ct", "--max-steps", "1") == 2
    err = capsys.readouterr().err
    assert "No CT scan that loads was found" in err and "1 MR scan(s): adapt the MR model with --modality mr" in err


def test_mr_adaptation_without_corrections_is_refused_before_training(mr_site, tmp_path, capsys):
    """Cross pseudo supervision alone collapsed when measured: the run says what it needs instead of
    spending the budget on a model the check would refuse."""
    assert _retrain(mr_site, tmp_path / "out", "--modality", "mr", "--max-steps", "1") == 2
    err = capsys.readouterr().err
    assert "needs the site's corrected MR cases" in err and "--corrections" in err
    assert not (tmp_path / "out" / "work" / "training").exists()



def test_the_mr_check_time_grows_with_the_mr_grid_not_a_fixed_guess():
    from dataclasses import replace

    from training.retrain import mr_analysis_s

    image = generate_mr_phantom(MRPhantomOptions(seed=1)).image
    half = replace(image, array=image.array[: image.shape[0] // 2])
    assert 0 < mr_analysis_s(half) < mr_analysis_s(image) < 60
