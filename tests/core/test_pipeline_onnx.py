"""Plumbing through real ONNX files: tiny "oracle" torch networks exported with model cards into a
temporary models folder, run by ``spineplan segment`` (shapes, grids, output files, sha256 check)."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from spine_core.io import load_labels, save_volume  # noqa: E402
from spine_core.models.card import ModelCard, sha256_of  # noqa: E402
from spine_core.pipeline.api import DETECTOR_ID, LABELER_ID, LOCALIZER_ID, VERTEBRA_SEG_ID  # noqa: E402
from tests.core.test_pipeline_oracle import BONE, LEVELS, ORIENTATIONS, WINDOW, dice, make_scan  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LABEL_IDS = list(range(1, 25)) + [25, 26, 28]


class Localizer(torch.nn.Module):
    def forward(self, image):
        return 40.0 * (image - BONE)


class Detector(torch.nn.Module):
    """Bone fraction in a vertebra-sized window: highest at each vertebra's section centre."""
    def forward(self, image):
        bone = torch.sigmoid(40.0 * (image - BONE))
        mean = torch.nn.functional.avg_pool2d(bone, (13, 9), stride=1, padding=(6, 4), count_include_pad=True)
        return 20.0 * (mean - 0.75), torch.zeros_like(image).repeat(1, 2, 1, 1)


class VertebraSeg(torch.nn.Module):
    def forward(self, image):
        near = 40.0 * (image[:, 1:2] - 0.67)       # within ~16 mm of the centre
        return torch.minimum(40.0 * (image[:, 0:1] - BONE), near)


class Labeler(torch.nn.Module):
    """Vertebra i of a run is called LEVELS[0] + i: enough to check the plumbing."""
    def forward(self, masks):
        ones = masks[:, :, 0, 0, 0, 0] * 0.0 + 1.0
        position = torch.cumsum(ones, dim=1) - 1.0 + LEVELS[0]
        ids = torch.tensor([float(v) for v in LABEL_IDS]).view(1, 1, -1)
        return -5.0 * torch.abs(ids - position.unsqueeze(-1))


SPECS = {  # id: (module, example input shape, input name, outputs, spacing, patch)
    LOCALIZER_ID: (Localizer(), (1, 1, 16, 16, 16), "image", ["logits"], 3.0, [32, 32, 32]),
    DETECTOR_ID: (Detector(), (1, 1, 32, 32), "image", ["heatmap", "size"], 2.0, [128, 128]),
    VERTEBRA_SEG_ID: (VertebraSeg(), (1, 2, 16, 16, 16), "image", ["logits"], 1.5, [32, 32, 32]),
    LABELER_ID: (Labeler(), (1, 3, 1, 12, 12, 6), "masks", ["logits"], 1.5, [12, 12, 6]),
}


def export_models(folder: Path) -> None:
    for model_id, (module, shape, name, outputs, spacing, patch) in SPECS.items():
        path = folder / f"{model_id}.onnx"
        dims = {0: "b", 1: "n"} if name == "masks" else {0: "b", **{i: f"s{i}" for i in range(2, len(shape))}}
        with warnings.catch_warnings():      # the legacy exporter's deprecation notices
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.rand(shape),), str(path), input_names=[name], output_names=outputs,
                              dynamic_axes={n: dims for n in [name, *outputs]}, opset_version=17, dynamo=False)
        label_ids = LABEL_IDS if model_id == LABELER_ID else [1]
        ModelCard(id=model_id, version="test", sha256=sha256_of(path), task="test", modality="CT",
                  input_spacing_mm=[spacing] * 3, patch_size=patch, intensity_window=WINDOW, label_ids=label_ids,
                  training={"weight_sigma_vox": 12.0}, metrics={}, license="test", inputs=[name],
                  outputs=outputs).save(folder / f"{model_id}.json")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """The test models, registered as a site's own (only shipped or registered models run)."""
    from spine_core.models.site import SITE_ENV, SiteModels

    folder = tmp_path_factory.mktemp("models")
    export_models(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SITE_ENV, str(tmp_path_factory.mktemp("site")))
        for model_id in SPECS:
            SiteModels().register(folder / f"{model_id}.onnx", folder / f"{model_id}.json")
        yield folder


def spineplan(*args):
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("orientation", ["LPS", "oblique"])
def test_segment_cli_writes_every_result_on_the_input_grid(tmp_path, models_dir, orientation):
    volume, truth = make_scan(ORIENTATIONS[orientation])
    save_volume(volume, tmp_path / "scan.nii.gz")
    out = tmp_path / "result"
    run = spineplan("segment", tmp_path / "scan.nii.gz", "-o", out, "--models", models_dir, "--device", "cpu",
                   "--modality", "ct")      # a synthetic scan without fat or air: not HU by its values
    assert run.returncode == 0, run.stderr
    labels = load_labels(out / "labels.nii.gz")
    assert labels.shape == volume.shape and np.allclose(labels.affine, volume.affine, atol=1e-4)
    assert dice(labels.array > 0, truth.array > 0) > 0.8
    doc = json.loads((out / "centroids.json").read_text())
    assert doc["coordinate_system"] == "LPS" and doc["units"] == "mm"
    assert [v["id"] for v in doc["vertebrae"]] == LEVELS
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["provider"] == "CPUExecutionProvider" and metrics["peak_rss_mb"] > 0
    assert {"localize.predict", "detect.predict", "segment.predict", "label.predict", "total"} <= set(metrics["timings_s"])
    manifest = json.loads((out / "meshes" / "manifest.json").read_text())
    assert manifest["coordinate_system"] == "LPS" and len(manifest["meshes"]) == len(LEVELS)
    assert "segment" in (out / "segment.log").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".result")], "no staging folder left"


def test_altered_or_missing_model_is_refused_with_exit_2(tmp_path, models_dir):
    import shutil

    volume, _ = make_scan()
    save_volume(volume, tmp_path / "scan.nii.gz")
    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    (broken / f"{DETECTOR_ID}.onnx").write_bytes(b"not a model")
    run = spineplan("segment", tmp_path / "scan.nii.gz", "-o", tmp_path / "out", "--models", broken,
                   "--modality", "ct")
    assert run.returncode == 2 and "integrity check" in run.stderr and "Traceback" not in run.stderr
    (broken / f"{DETECTOR_ID}.onnx").unlink()
    run = spineplan("segment", tmp_path / "scan.nii.gz", "-o", tmp_path / "out", "--models", broken,
                   "--modality", "ct")
    assert run.returncode == 2 and "not installed" in run.stderr
    assert not (tmp_path / "out").exists()
