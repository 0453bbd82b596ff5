"""Which models run by default: `spineplan models use ID | use shipped:ID | rollback` keep the site's active
set (with its history) in the site registry; an analysis without --models runs the shipped models with
each active site model in place of the shipped one of its id, every one still verified; `models list`
shows both side by side; the batch report names the models of each case."""
import csv
import json

import pytest

from spine_core.errors import SpineError
from spine_core.models.card import sha256_of
from spine_core.models.registry import SHIPPED_FOLDER, ModelUnavailable
from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.pipeline.api import LABELER_ID, LOCALIZER_ID
from spine_core.pipeline.models import ModelSet
from tests.core.test_model_integrity import retrained_labeler, spineplan


@pytest.fixture(autouse=True)
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    monkeypatch.setenv(SITE_ENV, str(folder))
    return folder


@pytest.fixture
def registered(tmp_path, site):
    """A retrained labeler registered at the site (not yet active); its sha256."""
    onnx, card = retrained_labeler(tmp_path)
    SiteModels().register(onnx, card)
    return sha256_of(onnx)


def test_use_makes_the_default_set_run_the_site_model_and_rollback_restores_shipped(registered, site):
    assert ModelSet(None, "cpu")._registry_of(LABELER_ID).folder == SHIPPED_FOLDER   # registered, not active
    run = spineplan("models", "use", LABELER_ID)
    assert run.returncode == 0, run.stderr
    assert SiteModels().active() == [LABELER_ID] and SiteModels().history() == [[]]
    models = ModelSet(None, "cpu")
    assert models._registry_of(LABELER_ID).folder == site
    assert models._registry_of(LOCALIZER_ID).folder == SHIPPED_FOLDER              # the shipped ones stay
    models.get(LABELER_ID)
    assert models.records([LABELER_ID]) == [{"id": LABELER_ID, "version": "site-1", "sha256": registered}]
    assert models.records([LABELER_ID])[0]["sha256"] != sha256_of(SHIPPED_FOLDER / f"{LABELER_ID}.onnx")

    run = spineplan("models", "rollback")
    assert run.returncode == 0, run.stderr
    assert SiteModels().active() == []
    assert ModelSet(None, "cpu")._registry_of(LABELER_ID).folder == SHIPPED_FOLDER
    run = spineplan("models", "rollback")
    assert run.returncode == 2 and "no earlier set of active models" in run.stderr


def test_use_shipped_returns_the_role_and_explicit_models_options_are_untouched(registered, site):
    SiteModels().use(LABELER_ID)
    assert ModelSet(SHIPPED_FOLDER, "cpu")._registry_of(LABELER_ID).folder == SHIPPED_FOLDER   # --models DIR
    assert ModelSet(site, "cpu")._registry_of(LABELER_ID).folder == site                       # --models site
    run = spineplan("models", "use", f"shipped:{LABELER_ID}")
    assert run.returncode == 0 and "none (all shipped)" in run.stdout
    assert SiteModels().active() == [] and SiteModels().history() == [[], [LABELER_ID]]
    SiteModels().rollback()
    assert SiteModels().active() == [LABELER_ID]


def test_unknown_id_is_refused_with_exit_2(registered):
    run = spineplan("models", "use", "no-such-model")
    assert run.returncode == 2
    assert "'no-such-model' is not a registered site model" in run.stderr and LABELER_ID in run.stderr
    assert "Traceback" not in run.stderr
    assert SiteModels().active() == []


def test_an_active_site_model_is_still_verified_and_never_swapped_silently(registered, site):
    SiteModels().use(LABELER_ID)
    (site / f"{LABELER_ID}.onnx").write_bytes(b"damaged")
    with pytest.raises(ModelUnavailable, match="integrity check"):
        ModelSet(None, "cpu").require(LABELER_ID)
    (site / f"{LABELER_ID}.onnx").unlink()
    with pytest.raises(ModelUnavailable, match=f"active at this site.*models use shipped:{LABELER_ID}"):
        ModelSet(None, "cpu").require(LABELER_ID)
    run = spineplan("models", "use", LABELER_ID)          # re-activating a damaged model is refused too
    assert run.returncode == 2


def test_register_keeps_the_active_set_and_a_damaged_registry_is_named(registered, tmp_path, site):
    SiteModels().use(LABELER_ID)
    SiteModels().register(tmp_path / "export" / f"{LABELER_ID}.onnx", tmp_path / "export" / f"{LABELER_ID}.json",
                          "other-labeler")
    assert SiteModels().active() == [LABELER_ID]
    (site / "registry.json").write_text(json.dumps({"models": {}, "active": "oops"}))
    with pytest.raises(SpineError, match="unreadable"):
        SiteModels().active()


def test_list_shows_shipped_and_site_side_by_side_with_the_active_one(registered):
    SiteModels().use(LABELER_ID)
    run = spineplan("models", "list")
    assert run.returncode == 0, run.stderr
    line = next(x for x in run.stdout.splitlines() if x.split()[:1] == [LABELER_ID] and x.rstrip().endswith("site"))
    assert "site-1" in line and registered[:12] in line
    assert sha256_of(SHIPPED_FOLDER / f"{LABELER_ID}.onnx")[:12] in line
    localizer = next(x for x in run.stdout.splitlines() if x.split()[:1] == [LOCALIZER_ID] and "shipped" in x)
    assert localizer.rstrip().endswith("shipped")


def test_batch_report_names_each_cases_models(tmp_path):
    from spine_core.workflows.batch_folder import BatchFolder
    from spine_core.workflows.batch_report import write_reports

    folder = BatchFolder(tmp_path / "out")
    folder.append("c1", "queued", source="/in/c1.nii.gz", kind="file")
    folder.append("c1", "done", status="ok", flags=[], levels="L1-L3", n_vertebrae=3, seconds=1.0)
    result = folder.case_dir("c1")
    result.mkdir(parents=True)
    models = [{"id": LABELER_ID, "version": "site-1", "sha256": "ab" * 32},
              {"id": LOCALIZER_ID, "version": "0.1", "sha256": "cd" * 32}]
    (result / "metrics.json").write_text(json.dumps({"models": models}))
    paths = write_reports(folder, {"pipeline": "per-vertebra"})
    case = json.loads(paths["summary.json"].read_text())["cases"][0]
    assert case["models"] == models
    with open(paths["summary.csv"], newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert row["models"] == f"{LABELER_ID} abababab; {LOCALIZER_ID} cdcdcdcd"
    assert f"{LABELER_ID} abababab" in paths["report.html"].read_text()


def test_a_withheld_model_runs_as_if_not_installed(registered, site):
    """A cross-validation fold withholds the shipped networks that saw its held-out case: neither the
    site's registered copy nor the shipped one may stand in."""
    models = ModelSet(site, "cpu", withheld=frozenset({LABELER_ID}))
    assert not models.has(LABELER_ID) and models.has(LOCALIZER_ID)     # the shipped localizer fills the gap
    with pytest.raises(ModelUnavailable, match=LABELER_ID):
        models.require(LABELER_ID)
