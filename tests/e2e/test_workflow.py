"""The analysis workflow the CLI, the workstation and batch share (spine_core.workflows.analysis):
a site's own pipeline (SPINEPLAN_PIPELINE) is honoured by the CLI too, and the result folder carries
the review flags."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ui.study import synthetic_study

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_runs_a_sites_pipeline_and_writes_review_flags(tmp_path):
    scan, _labels, reference = synthetic_study(tmp_path)
    env = dict(os.environ, SPINEPLAN_PIPELINE="tests.ui.fake_pipeline:segment", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "app", "segment", str(scan), "-o", str(tmp_path / "out")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "test pipeline: not a real analysis" in run.stdout          # the fake pipeline ran
    doc = json.loads((tmp_path / "out" / "centroids.json").read_text())
    flags = {v["name"]: v["flags"] for v in doc["vertebrae"]}
    assert set(flags) == {"T11", "T12", "L1"}
    assert flags["T12"] == ["low confidence"] and flags["T11"] == [] and flags["L1"] == []
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["provider"] == "fake (auto)"
