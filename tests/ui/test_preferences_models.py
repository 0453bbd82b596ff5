"""Preferences > Models (ui/models_panel.py in ui/dialogs.py's PreferencesDialog): the shipped and site
models side by side, Use site model / Use shipped / Roll back on a site registry in tmp_path (never the
user's folder)."""
import json
import shutil
from pathlib import Path

import pytest

from spine_core.models.shipped import SHIPPED_SHA256
from ui.dialogs import PreferencesDialog

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.fixture
def site(tmp_path, monkeypatch):
    from spine_core.models.site import SiteModels

    monkeypatch.setenv("SPINEPLAN_SITE_MODELS", str(tmp_path / "site"))
    return SiteModels()


def _register_copy(site, tmp_path, model_id="ct-vertebra-seg"):
    """A copy of a shipped model, registered at the site under a site version."""
    onnx = shutil.copyfile(SHIPPED / f"{model_id}.onnx", tmp_path / f"{model_id}.onnx")
    card = json.loads((SHIPPED / f"{model_id}.json").read_text())
    card["version"] = "0.1.0+site412"
    card["training"] = dict(card["training"], command="spineplan retrain --scans SITE", steps=412)
    (tmp_path / f"{model_id}.json").write_text(json.dumps(card))
    site.register(onnx, tmp_path / f"{model_id}.json")


def _row(panel, model_id):
    ids = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    return ids.index(model_id)


def _cells(panel, model_id):
    r = _row(panel, model_id)
    return [panel.table.item(r, c).text() for c in range(panel.table.columnCount())]


def test_the_models_tab_lists_the_shipped_models(qtbot, site):
    dialog = PreferencesDialog("auto", 60, tab="models")
    qtbot.addWidget(dialog)
    panel = dialog.models_panel
    assert dialog.tabs.currentWidget() is panel and dialog.tabs.tabText(0) == "General"
    assert [panel.table.horizontalHeaderItem(c).text() for c in range(4)] == \
        ["Model", "Shipped (version, sha256)", "Site (version, sha256)", "Runs by default"]
    assert sorted(panel.table.item(r, 0).text() for r in range(panel.table.rowCount())) == sorted(SHIPPED_SHA256)
    model_id, shipped, site_cell, active = _cells(panel, "ct-vertebra-seg")
    assert shipped.endswith(SHIPPED_SHA256["ct-vertebra-seg"]["onnx"][:12]) and site_cell == "-"
    assert active == "shipped"
    panel.table.selectRow(_row(panel, "ct-vertebra-seg"))
    assert "1992 steps" in panel.details.text() and "spineplan train vertebra_seg" in panel.details.text()
    assert "command: spineplan train" in panel.table.item(_row(panel, "ct-vertebra-seg"), 1).toolTip()
    assert not panel.use_site_button.isEnabled() and not panel.use_shipped_button.isEnabled()
    assert not panel.rollback_button.isEnabled()


def test_use_site_model_then_roll_back(qtbot, site, tmp_path):
    _register_copy(site, tmp_path)
    dialog = PreferencesDialog("auto", 60, tab="models")
    qtbot.addWidget(dialog)
    panel = dialog.models_panel
    assert _cells(panel, "ct-vertebra-seg")[2].startswith("0.1.0+site412")
    panel.table.selectRow(_row(panel, "ct-vertebra-seg"))
    assert "412 steps" in panel.details.text() and "spineplan retrain" in panel.details.text()
    assert panel.use_site_button.isEnabled()
    panel.use_site_button.click()
    assert site.active() == ["ct-vertebra-seg"] and _cells(panel, "ct-vertebra-seg")[3] == "site"
    assert panel.use_shipped_button.isEnabled() and panel.rollback_button.isEnabled()
    assert not panel.use_site_button.isEnabled()
    panel.rollback_button.click()
    assert site.active() == [] and _cells(panel, "ct-vertebra-seg")[3] == "shipped"
    panel.table.selectRow(_row(panel, "ct-vertebra-seg"))
    panel.use_site_button.click()
    panel.use_shipped_button.click()
    assert site.active() == [] and _cells(panel, "ct-vertebra-seg")[3] == "shipped"


def test_an_altered_site_model_is_never_made_active(qtbot, site, tmp_path):
    _register_copy(site, tmp_path)
    with open(site.folder / "ct-vertebra-seg.onnx", "ab") as fh:
        fh.write(b"tampered")
    dialog = PreferencesDialog("auto", 60, tab="models")
    qtbot.addWidget(dialog)
    panel = dialog.models_panel
    assert "REFUSED" in _cells(panel, "ct-vertebra-seg")[2]
    panel.table.selectRow(_row(panel, "ct-vertebra-seg"))
    assert not panel.use_site_button.isEnabled() and "altered" in panel.details.text()
    panel._on_use_site_clicked()                      # even if asked: refused, with the reason in a box
    assert site.active() == [] and "integrity" in panel.last_error


def test_rollback_without_history_and_an_unreadable_registry_say_what_to_do(qtbot, site):
    dialog = PreferencesDialog("cpu", 30)
    qtbot.addWidget(dialog)
    panel = dialog.models_panel
    assert dialog.tabs.currentIndex() == 0 and dialog.device() == "cpu"
    assert not panel.rollback_button.isEnabled()
    panel._on_rollback_clicked()
    assert "no earlier set of active models" in panel.last_error
    site.folder.mkdir(parents=True)
    (site.folder / "registry.json").write_text("{not json")
    panel.refresh()
    assert panel.table.rowCount() == 0 and "unreadable" in panel.status_label.text()
    again = PreferencesDialog("gpu", 30)                          # the General tab still works
    qtbot.addWidget(again)
    assert again.device() == "gpu" and "unreadable" in again.models_panel.status_label.text()
