"""`./run.sh` without arguments runs `spineplan quickstart`: the demo study, then GUI or summary."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_without_a_display_prints_the_analysis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_DATA_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "app", "quickstart", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Size:         180 x 180 x" in result.stdout
    table = result.stdout.split("reference labels)")[1].splitlines()
    rows = [line.split() for line in table if line.startswith("  L")]
    assert [r[0] for r in rows] == ["L1", "L2", "L3", "L4", "L5"]
    # Lumbar bodies with their arches: tens of millilitres, growing towards L5.
    volumes = [float(r[1]) for r in rows]
    assert all(20 < v < 120 for v in volumes) and volumes[-1] > volumes[0]
    assert "not shipped yet" in result.stdout


def test_run_sh_default_is_quickstart():
    assert "spineplan quickstart" in (ROOT / "run.sh").read_text()
