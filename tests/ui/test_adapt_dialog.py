"""Tools > Adapt to local scans (ui/adapt_dialog.py, ui/retrain_process.py) without a window: the dialog runs
a fake `spineplan retrain` (a small script that speaks the CLI's contract: JSON progress lines, retrain.json,
the exit codes) in a real subprocess, and Use this model writes a site registry in tmp_path."""
import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from ui.adapt_dialog import AdaptDialog, time_left
from ui.retrain_process import (ACCEPTED, BAD_INPUT, FAILED, REFUSED, STOPPED, RetrainRequest, outcome_of,
                                retrain_arguments, retrain_command)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "resources" / "models"
COMPARISON = [
    {"set": "reference phantoms (3)", "metric": "mean vertebra Dice", "parent": 0.81, "candidate": 0.82,
     "verdict": "not worse"},
    {"set": "held-out real CT (1)", "metric": "mean vertebra Dice", "parent": 0.72, "candidate": 0.74,
     "verdict": "better"},
    {"set": "site scans (5, pseudo-labels)", "metric": "agreement with the shipped model", "parent": 1.0,
     "candidate": 0.93, "verdict": "not worse"},
]

# The fake: argv as `spineplan retrain` gets it (after the program); behaviour from the environment-free
# settings file beside it, so one script serves every test.
FAKE = textwrap.dedent('''
    import json, signal, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    out = Path(args[args.index("-o") + 1])
    setup = json.loads(Path(__file__).with_suffix(".json").read_text())
    if setup.get("ignore_stop"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: (print("checkpoint saved", file=sys.stderr), sys.exit(143)))
    print("loading scans (log text, not JSON)", flush=True)
    if setup.get("bad_input"):
        print("Traceback-free log line", file=sys.stderr)
        print("spineplan: " + setup["bad_input"], file=sys.stderr, flush=True)
        sys.exit(2)
    stages = ["scans", "pseudo-labels", "training", "export", "check"]
    for i, stage in enumerate(stages):
        print(json.dumps({"event": "progress", "fraction": i / len(stages), "stage": stage,
                          "message": f"{stage} {i}", "eta_s": 60.0 * (len(stages) - i)}), flush=True)
        time.sleep(setup.get("sleep", 0.05))
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrain.json").write_text(json.dumps(setup["result"]))
    print(json.dumps({"event": "progress", "fraction": 1.0, "stage": "done", "message": "done", "eta_s": 0}))
    print(json.dumps({"event": "result", "path": str(out / "retrain.json")}), flush=True)
    sys.exit(setup.get("exit", 0))
''')


def _fake(tmp_path, **setup):
    script = tmp_path / "fake_retrain.py"
    script.write_text(FAKE)
    script.with_suffix(".json").write_text(json.dumps(setup))
    return lambda request: (sys.executable, [str(script), *retrain_arguments(request)[1:]])


def _candidate(tmp_path) -> tuple[Path, Path]:
    """A copy of the shipped ct-vertebra-seg as the 'adapted' model (a site version on its card)."""
    folder = tmp_path / "out-model"
    folder.mkdir()
    onnx = shutil.copyfile(SHIPPED / "ct-vertebra-seg.onnx", folder / "ct-vertebra-seg.onnx")
    card = json.loads((SHIPPED / "ct-vertebra-seg.json").read_text())
    card["version"] = "0.1.0+site412"
    card["training"]["command"] = "spineplan retrain --scans SITE --budget-minutes 30"
    (folder / "ct-vertebra-seg.json").write_text(json.dumps(card))
    return onnx, folder / "ct-vertebra-seg.json"


def _result(tmp_path, accepted: bool) -> dict:
    onnx, card = _candidate(tmp_path)
    return {"accepted": accepted, "model_id": "ct-vertebra-seg", "onnx": str(onnx) if accepted else None,
            "card": str(card) if accepted else None,
            "reason": "not worse than the model in use on any set" if accepted else
                      "worse on the reference phantoms (0.81 -> 0.74, tolerance 0.005)",
            "tolerance": 0.005, "comparison": COMPARISON if accepted else
            [dict(COMPARISON[0], candidate=0.74, verdict="worse")], "budget_minutes": 30, "steps": 412,
            "wall_s": 1790.0, "parent": {"id": "ct-vertebra-seg", "sha256": "7f4bd1cb"}}


@pytest.fixture
def site(tmp_path, monkeypatch):
    from spine_core.models.site import SiteModels

    monkeypatch.setenv("SPINEPLAN_SITE_MODELS", str(tmp_path / "site"))
    return SiteModels()


def _dialog(qtbot, tmp_path, command, scans=True) -> AdaptDialog:
    dialog = AdaptDialog(command=command)
    qtbot.addWidget(dialog)
    if scans:
        (tmp_path / "scans").mkdir(exist_ok=True)
        dialog.scans_edit.setText(str(tmp_path / "scans"))
    dialog.out_edit.setText(str(tmp_path / "out"))
    dialog.show()
    return dialog


def _finish(qtbot, dialog, timeout=4000):
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=timeout)
    return dialog.outcome


def test_the_command_is_spineplan_retrain_with_json_progress(tmp_path):
    request = RetrainRequest(tmp_path / "scans", None, 45, "cpu", tmp_path / "out")
    program, args = retrain_command(request)
    assert program == sys.executable
    assert args == ["-m", "app", "retrain", "--scans", str(tmp_path / "scans"), "--modality", "auto",
                    "--budget-minutes", "45", "--device", "cpu", "-o", str(tmp_path / "out"), "--progress", "json"]
    with_corrections = RetrainRequest(tmp_path / "scans", tmp_path / "plans", 30, "auto", tmp_path / "out", "mr")
    assert retrain_arguments(with_corrections)[3:7] == ["--corrections", str(tmp_path / "plans"), "--modality", "mr"]


def test_the_models_choice_reaches_the_command(qtbot, tmp_path):
    dialog = AdaptDialog(command=lambda r: pytest.fail("must not start"))
    qtbot.addWidget(dialog)
    assert dialog.modality_box.currentData() == "auto"
    (tmp_path / "scans").mkdir()
    dialog.scans_edit.setText(str(tmp_path / "scans"))
    dialog.modality_box.setCurrentIndex(dialog.modality_box.findData("mr"))
    request = dialog.request()
    assert request.modality == "mr" and retrain_arguments(request)[3:5] == ["--modality", "mr"]


def test_defaults_and_missing_scans_are_said(qtbot, tmp_path):
    dialog = AdaptDialog(command=lambda r: pytest.fail("must not start"))
    qtbot.addWidget(dialog)
    assert dialog.budget_box.value() == 30 and (dialog.budget_box.minimum(), dialog.budget_box.maximum()) == (1, 1440)
    assert [dialog.device_box.itemText(i) for i in range(dialog.device_box.count())] == ["auto", "cpu", "gpu"]
    assert Path(dialog.out_edit.text()).parent == tmp_path / "data" / "retrain"     # SPINEPLAN_DATA_DIR (conftest)
    dialog.start_button.click()
    assert "Choose the folder of the site's scans" in dialog.status_label.text() and not dialog.running()


def test_an_accepted_model_shows_the_check_and_can_be_used(qtbot, tmp_path, site):
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, result=_result(tmp_path, True), exit=0))
    fractions = []
    dialog.run.progress.connect(lambda f, *_: fractions.append(f))
    dialog.start_button.click()
    assert dialog.running() and not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    assert "checkpoint" in dialog.resume_label.text() and dialog.resume_label.isVisible()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() > 0, timeout=4000)
    assert "min left" in dialog.eta_label.text()
    outcome = _finish(qtbot, dialog)
    assert outcome.status == ACCEPTED and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert dialog.progress_bar.value() == 1000
    table = dialog.table
    assert table.rowCount() == 3 and table.isVisible()
    assert [table.horizontalHeaderItem(c).text() for c in range(5)] == \
        ["Set", "Metric", "Before", "Adapted", "Verdict"]
    assert [table.item(0, c).text() for c in range(5)] == \
        ["reference phantoms (3)", "mean vertebra Dice", "0.810", "0.820", "not worse"]
    assert "not in use yet" in dialog.status_label.text()
    assert dialog.use_button.isEnabled() and dialog.discard_button.isVisible()
    assert site.active() == []                                   # passing the check changes nothing
    notices = []
    dialog.notice.connect(notices.append)
    dialog.use_button.click()
    assert site.active() == ["ct-vertebra-seg"]
    assert site.entries()["ct-vertebra-seg"]["version"] == "0.1.0+site412"
    assert "New analyses use the adapted model" in dialog.status_label.text() and "rollback" in notices[0]
    assert not dialog.use_button.isEnabled()


def test_a_refused_model_shows_why_and_only_discard(qtbot, tmp_path, site):
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, result=_result(tmp_path, False), exit=4))
    dialog.start_button.click()
    outcome = _finish(qtbot, dialog)
    assert outcome.status == REFUSED
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 4).text() == "worse"
    assert "worse on the reference phantoms" in dialog.status_label.text()
    assert "The active model is unchanged" in dialog.status_label.text()
    assert not dialog.use_button.isEnabled() and not dialog.use_button.isVisible()
    assert dialog.discard_button.isVisible()
    notices = []
    dialog.notice.connect(notices.append)
    dialog.discard_button.click()
    assert not dialog.isVisible() and "Nothing changed" in notices[0]
    assert site.active() == [] and (tmp_path / "out" / "retrain.json").exists()      # the output stays


def test_bad_input_shows_the_clis_message(qtbot, tmp_path):
    said = "the folder holds no CT scans; choose the folder of the site's scans"
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, bad_input=said))
    dialog.start_button.click()
    outcome = _finish(qtbot, dialog)
    assert outcome.status == BAD_INPUT and dialog.status_label.text() == "T" + said[1:]
    assert not dialog.use_button.isVisible() and dialog.start_button.isEnabled()


def test_cancel_stops_the_training_and_says_the_checkpoint_is_kept(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, result={}, sleep=30))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.stage_label.text() == "Reading the site's scans", timeout=4000)
    dialog.cancel_button.click()
    assert not dialog.cancel_button.isEnabled()
    outcome = _finish(qtbot, dialog)
    assert outcome.status == STOPPED and outcome.exit_code == 143
    assert "last checkpoint is kept" in dialog.status_label.text() and "resumes" in dialog.status_label.text()
    assert dialog.start_button.isEnabled() and dialog.out_edit.text() == str(tmp_path / "out")


def test_a_training_that_ignores_the_stop_is_killed(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, result={}, sleep=30, ignore_stop=True))
    dialog.run.kill_after_ms = 200
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.stage_label.text() == "Reading the site's scans", timeout=4000)
    dialog.cancel_button.click()
    assert _finish(qtbot, dialog).status == STOPPED


def test_a_command_that_cannot_start_is_said(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path, lambda request: (str(tmp_path / "no-such-python"), []))
    dialog.start_button.click()
    outcome = _finish(qtbot, dialog)
    assert outcome.status == FAILED and "could not start" in dialog.status_label.text()
    assert dialog.start_button.isEnabled()


def test_tools_menu_opens_one_dialog_and_closing_the_window_stops_training(qtbot, window, tmp_path):
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    adapt = next(a for a in tools.actions() if a.text() == "&Adapt to local scans...")
    window.adapt.command = _fake(tmp_path, result={}, sleep=30)
    adapt.trigger()
    dialog = window.adapt.dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    adapt.trigger()
    assert window.adapt.dialog is dialog                          # shown again, with its state
    dialog.scans_edit.setText(str(tmp_path))
    dialog.out_edit.setText(str(tmp_path / "out"))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.stage_label.text() == "Reading the site's scans", timeout=4000)
    assert window.isEnabled() and window.adapt.running()         # the window stays usable
    process = dialog.run.process
    window.close()
    assert process.state() == process.ProcessState.NotRunning and process.exitCode() == 143


def test_closing_while_running_asks_and_stops_on_yes(qtbot, tmp_path):
    dialog = _dialog(qtbot, tmp_path, _fake(tmp_path, result={}, sleep=30))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.stage_label.text() == "Reading the site's scans", timeout=4000)
    dialog.confirm_stop = lambda: False
    dialog.close_button.click()
    assert dialog.isVisible() and dialog.running()               # "no": training and the dialog go on
    dialog.confirm_stop = lambda: True
    dialog.close_button.click()
    assert not dialog.isVisible()
    assert _finish(qtbot, dialog).status == STOPPED


def test_outcomes_of_exit_codes(tmp_path):
    out = tmp_path / "out"
    assert outcome_of(3, False, False, out, None, ["Traceback ...", "KeyError: 'x'"]).status == FAILED
    assert outcome_of(9, True, False, out, None, []).status == FAILED            # killed from outside
    assert outcome_of(15, True, True, out, None, []).status == STOPPED           # our SIGTERM, no handler
    assert outcome_of(130, False, False, out, None, []).status == STOPPED
    missing = outcome_of(0, False, False, out, None, [])                         # no retrain.json
    assert missing.status == FAILED and "unreadable" in missing.message
    assert outcome_of(2, False, False, out, None, ["spineplan: choose a folder"]).message == "Choose a folder"
    assert (time_left(None), time_left(30), time_left(600), time_left(7260)) == \
        ("Time left: estimating...", "Less than a minute left", "About 10 min left", "About 2 h 01 min left")
