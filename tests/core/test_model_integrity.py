"""Model integrity: only the shipped models (their sha256 in spine_core.models.shipped, not in the card
beside them) and models registered at the site run; every model of a pipeline is checked before its
first stage; `spineplan models list | verify | register`."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spine_core.io import save_volume
from spine_core.models.card import ModelCard, sha256_of
from spine_core.models.registry import SHIPPED_FOLDER, ModelUnavailable
from spine_core.models.shipped import SHIPPED_SHA256
from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.pipeline.api import DETECTOR_ID, LABELER_ID, LOCALIZER_ID, VERTEBRA_SEG_ID, SegmentOptions
from spine_core.pipeline.models import ModelSet
from tests.core.test_pipeline_oracle import make_scan
from training.ship import ship, shipped_table, table_source

ROOT = Path(__file__).resolve().parents[2]
PER_VERTEBRA = (LOCALIZER_ID, DETECTOR_ID, VERTEBRA_SEG_ID, LABELER_ID)


@pytest.fixture(autouse=True)
def site(tmp_path, monkeypatch):
    """A site folder of this test's own (never the user's)."""
    folder = tmp_path / "site"
    monkeypatch.setenv(SITE_ENV, str(folder))
    return folder


def spineplan(*args):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def tampered_copy(tmp_path: Path, model_id: str = LABELER_ID, card_too: bool = True) -> Path:
    """resources/models copied, ``model_id``'s ONNX changed and (``card_too``) its card's sha256 edited to
    match, as someone swapping a model would do."""
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED_FOLDER, folder)
    onnx = folder / f"{model_id}.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    if card_too:
        data = json.loads((folder / f"{model_id}.json").read_text())
        data["sha256"] = sha256_of(onnx)
        (folder / f"{model_id}.json").write_text(json.dumps(data, indent=2))
    return folder


def retrained_labeler(tmp_path: Path) -> tuple[Path, Path]:
    """A loadable ONNX that differs from the shipped labeler (what a site's retraining exports), with its
    card."""
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "export"
    out.mkdir()
    model = onnx.load(str(SHIPPED_FOLDER / f"{LABELER_ID}.onnx"))
    model.doc_string = "retrained at this site"
    onnx.save(model, str(out / f"{LABELER_ID}.onnx"))
    card = ModelCard.load(SHIPPED_FOLDER / f"{LABELER_ID}.json")
    data = {**card.to_dict(), "sha256": sha256_of(out / f"{LABELER_ID}.onnx"), "version": "site-1"}
    (out / f"{LABELER_ID}.json").write_text(json.dumps(data, indent=2))
    return out / f"{LABELER_ID}.onnx", out / f"{LABELER_ID}.json"


def test_shipped_table_matches_the_model_files():
    actual = shipped_table()
    assert actual == SHIPPED_SHA256, ("resources/models changed; if deliberately, paste this into "
                                      f"spine_core/models/shipped.py:\n{table_source(actual)}")


def test_a_checked_candidate_ships_with_its_table_and_a_mismatched_one_is_refused(tmp_path):
    folder = tampered_copy(tmp_path)                      # a labeler "retrained": new file, card to match
    candidates = tmp_path / "candidates"
    candidates.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.move(folder / f"{LABELER_ID}{suffix}", candidates / f"{LABELER_ID}{suffix}")
        shutil.copyfile(SHIPPED_FOLDER / f"{LABELER_ID}{suffix}", folder / f"{LABELER_ID}{suffix}")
    table = tmp_path / "shipped.py"
    shutil.copyfile(ROOT / "spine_core" / "models" / "shipped.py", table)
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    shutil.copyfile(candidates / f"{LABELER_ID}.onnx", mismatched / f"{LABELER_ID}.onnx")
    shutil.copyfile(SHIPPED_FOLDER / f"{LABELER_ID}.json", mismatched / f"{LABELER_ID}.json")
    with pytest.raises(ValueError, match="do not belong together"):
        ship([candidates / LABELER_ID, mismatched / LABELER_ID], folder, table)
    assert table.read_text() == (ROOT / "spine_core" / "models" / "shipped.py").read_text()   # nothing shipped
    assert sha256_of(folder / f"{LABELER_ID}.onnx") == SHIPPED_SHA256[LABELER_ID]["onnx"]

    assert ship([candidates / LABELER_ID], folder, table) == [LABELER_ID]
    written: dict = {}
    exec(table.read_text(), written)
    assert written["SHIPPED_SHA256"] == shipped_table(folder)
    assert written["SHIPPED_SHA256"][LABELER_ID]["onnx"] == sha256_of(candidates / f"{LABELER_ID}.onnx")
    assert written["SHIPPED_SHA256"][DETECTOR_ID] == SHIPPED_SHA256[DETECTOR_ID]         # the others untouched
    assert written["__doc__"] == (ROOT / "spine_core" / "models" / "shipped.py").read_text().split('"""')[1]


def test_tampered_model_with_edited_card_is_refused(tmp_path):
    folder = tampered_copy(tmp_path)
    with pytest.raises(ModelUnavailable, match=f"'{LABELER_ID}'.*integrity check"):
        ModelSet(folder, "cpu").require(*PER_VERTEBRA)
    assert ModelSet(tmp_path / "nothing", "cpu").has(LOCALIZER_ID) is False
    ModelSet(SHIPPED_FOLDER, "cpu").require(*PER_VERTEBRA)        # the untouched originals pass


def test_edited_card_alone_is_refused(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED_FOLDER, folder)
    data = json.loads((folder / f"{DETECTOR_ID}.json").read_text())
    data["intensity_window"] = [-500, 1500]
    (folder / f"{DETECTOR_ID}.json").write_text(json.dumps(data))
    with pytest.raises(ModelUnavailable, match=f"card of model '{DETECTOR_ID}'.*edited"):
        ModelSet(folder, "cpu").require(DETECTOR_ID)


def test_every_model_is_checked_before_the_first_stage(tmp_path):
    from spine_core.pipeline import segment
    from spine_core.progress import CallbackProgress

    folder = tampered_copy(tmp_path, LABELER_ID, card_too=False)     # the labeler runs last
    steps = []
    volume, _ = make_scan()
    models = ModelSet(folder, "cpu")
    with pytest.raises(ModelUnavailable, match=LABELER_ID):
        segment(volume, SegmentOptions(device="cpu"), CallbackProgress(lambda f, m: steps.append(m)), models)
    assert steps == [] and models.providers == {}, "no stage ran, no model was loaded"


def test_cli_refuses_a_tampered_copy_naming_the_model(tmp_path):
    volume, _ = make_scan()
    save_volume(volume, tmp_path / "scan.nii.gz")
    run = spineplan("segment", tmp_path / "scan.nii.gz", "-o", tmp_path / "out", "--models", tampered_copy(tmp_path),
                    "--device", "cpu", "--modality", "ct")     # a synthetic scan without fat or air
    assert run.returncode == 2, run.stderr
    assert LABELER_ID in run.stderr and "integrity check" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_unregistered_model_is_refused_until_registered(tmp_path, site):
    onnx, card = retrained_labeler(tmp_path)
    with pytest.raises(ModelUnavailable, match="is not that of the shipped one.*spineplan models register"):
        ModelSet(onnx.parent, "cpu").require(LABELER_ID)
    run = spineplan("models", "register", onnx, card)
    assert run.returncode == 0, run.stderr
    assert (site / f"{LABELER_ID}.onnx").read_bytes() == onnx.read_bytes()
    assert SiteModels(site).entries()[LABELER_ID]["onnx"] == sha256_of(onnx)
    ModelSet(onnx.parent, "cpu").require(LABELER_ID)              # the export folder matches the registry
    models = ModelSet(site, "cpu")                                 # --models site: shipped ones fill the gaps
    models.require(*PER_VERTEBRA)
    assert models._registry_of(LABELER_ID).folder == site
    assert models._registry_of(LOCALIZER_ID).folder == SHIPPED_FOLDER
    listing = spineplan("models", "list")
    assert listing.returncode == 0 and "site-1" in listing.stdout and "REFUSED" not in listing.stdout


def test_a_new_id_unknown_to_shipped_needs_registration(tmp_path, site):
    onnx, card = retrained_labeler(tmp_path)
    folder = onnx.parent
    shutil.copy(onnx, folder / "my-labeler.onnx")
    data = {**json.loads(card.read_text()), "id": "my-labeler"}
    (folder / "my-labeler.json").write_text(json.dumps(data))
    with pytest.raises(ModelUnavailable, match="'my-labeler'.*neither shipped.*nor registered.*models register"):
        ModelSet(folder, "cpu").require("my-labeler")
    SiteModels().register(onnx, card, "my-labeler")
    assert ModelCard.load(site / "my-labeler.json").id == "my-labeler"
    ModelSet(site, "cpu").require("my-labeler")


def test_verify_reports_a_site_model_altered_after_registration(tmp_path, site):
    onnx, card = retrained_labeler(tmp_path)
    SiteModels().register(onnx, card)
    assert spineplan("models", "verify").returncode == 0
    (site / f"{LABELER_ID}.onnx").write_bytes(b"damaged")
    run = spineplan("models", "verify")
    assert run.returncode == 2 and f"{LABELER_ID}.onnx was altered" in run.stdout
    with pytest.raises(ModelUnavailable, match="integrity check"):
        ModelSet(site, "cpu").require(LABELER_ID)


def test_register_refuses_a_card_of_another_file_and_a_broken_model(tmp_path, site):
    onnx, card = retrained_labeler(tmp_path)
    run = spineplan("models", "register", onnx, SHIPPED_FOLDER / f"{LABELER_ID}.json")
    assert run.returncode == 2 and "describes another file" in run.stderr
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    run = spineplan("models", "register", tmp_path / "junk.onnx", card)
    assert run.returncode == 2 and "not a model onnxruntime can load" in run.stderr and "Traceback" not in run.stderr
    assert not (site / "registry.json").exists()
