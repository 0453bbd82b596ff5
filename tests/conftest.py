import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPINEPLAN_SHARED", ROOT.parent / "shared")) / "data"


@pytest.fixture(autouse=True)
def _isolated_logs(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPINEPLAN_LOG_DIR", str(tmp_path_factory.getbasetemp() / "logs"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "manifest.json").exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def make_volume(shape=(40, 30, 12), spacing=(0.8, 0.7, 2.5), origin=(-10.0, 20.0, -300.0), seed=0):
    from spine_core.volume import Volume, affine_from_geometry

    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 2000, shape).astype(np.int16)
    return Volume(array, affine_from_geometry(spacing, None, origin))
