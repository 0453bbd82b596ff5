"""House rules (pyproject.toml contracts): spine_core and training never import Qt; viewers never import
ui; ui never imports app."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout


def test_core_imports_without_qt_or_torch():
    code = ("import sys, spine_core, spine_core.io, spine_core.resample; "
            "bad = [m for m in ('PySide6', 'torch', 'pyvistaqt') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
