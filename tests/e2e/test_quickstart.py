"""`./run.sh` without arguments runs `spineplan quickstart`: the demo study, then GUI or summary."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_without_a_display_prints_the_automatic_analysis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_DATA_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "app", "quickstart", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Size:         180 x 180 x" in result.stdout
    table = result.stdout.split("centroid L, P, S (mm)")[1].split("\n\n")[0].splitlines()[1:]
    names = [row.split()[0] for row in table]
    # The automatic analysis of the quick demo (T11-sacrum at 2 mm) finds the lumbar spine and sacrum.
    assert {"L1", "L4", "L5", "sacrum"} <= set(names), result.stdout
    volumes = {row.split()[0]: float(row.split()[1]) for row in table}
    assert 20 < volumes["L4"] < 120
    summary = [line for line in result.stdout.splitlines() if "Against the demo's reference labels" in line]
    assert summary and "identification" in summary[0]
    assert float(summary[0].split("identification ")[1].split(" %")[0]) >= 50


def test_run_sh_default_is_quickstart():
    assert "spineplan quickstart" in (ROOT / "run.sh").read_text()
