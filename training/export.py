"""Checkpoint -> single-file ONNX + model card (spine_core.models.ModelCard), with parity measured.

Each network class names its ``input_names``/``output_names`` and provides ``example_inputs``,
``dynamic_axes`` and ``label_ids``; the card takes spacing, patch size and window from the
checkpoint's data config, training facts from what the checkpoint recorded.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from spine_core.models.card import ModelCard, sha256_of
from training.nets import NETS, build_model
from training.nets.blocks import count_parameters
from training.tasks import data_config
from training.trainer import load_checkpoint

OPSET = 17
LICENSES = (("VerSe", "VerSe CC BY-SA 4.0"), ("TotalSegmentator", "TotalSegmentator Apache-2.0"),
            ("TPTBox", "TPTBox Apache-2.0"),
            ("MR VB2", "MR T2 lumbar data under the terms of Chu et al. 2015 (Zenodo 22304)"),
            ("MR VB3", "MyoSegmenTUM spine MR under the terms of Burian et al. 2019"),
            ("MR IVD", "IVD challenge MR under the challenge's terms"))


def export_onnx(model: torch.nn.Module, inputs: tuple, path) -> Path:
    """Legacy (TorchScript) exporter: one self-contained file, dynamic axes as the model declares."""
    path = Path(path)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), input_names=list(model.input_names),
                          output_names=list(model.output_names), dynamic_axes=model.dynamic_axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return path


def ort_session(path):
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("SPINEPLAN_ORT_THREADS", "0"))
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(session, model, inputs: tuple) -> list[np.ndarray]:
    feed = {n: t.numpy() for n, t in zip(model.input_names, inputs)}
    return session.run(None, feed)


@torch.no_grad()
def parity_error(model: torch.nn.Module, path, inputs: tuple) -> float:
    """Max |torch - onnxruntime| over all outputs."""
    model.eval()
    ref = model(*inputs)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    got = run_onnx(ort_session(path), model, inputs)
    return max(float(np.max(np.abs(r.numpy() - g))) for r, g in zip(ref, got))


def license_text(sources: list[str]) -> str:
    parts = ["phantoms"] if any("phantom" in s for s in sources) else []
    parts += [text for key, text in LICENSES if any(key.lower() in s.lower() for s in sources)]
    if any("toy" in s for s in sources):
        parts.append("toy volumes")
    return "Proprietary; trained on " + (" + ".join(parts) if parts else "unrecorded data") + (
        " data" if any(k in " ".join(parts) for k, _ in LICENSES) else "")


def _sources(training: dict) -> list[str]:
    data = training.get("data", {})
    return [s for part in data.values() if isinstance(part, dict) for s in part.get("sources", [])]


def build_card(ckpt: dict, model, model_id: str, onnx_path: Path, parity: float) -> ModelCard:
    data = data_config(ckpt["config"])
    spec = NETS[ckpt["model_name"]]
    training = dict(ckpt.get("training", {}))
    # Inference must build inputs as training did (e.g. the centre-weight sigma): ship the settings.
    training["task"] = dict(ckpt["config"].get("task", {}))
    metrics = {**ckpt.get("metrics", {}), "best_validation": ckpt.get("best"),
               "onnx_parity_max_abs_error": parity}
    version = str(ckpt["config"].get("version", "0.1.0"))
    modality = str(ckpt["config"].get("modality", "CT"))
    notes = ("Input: array axes LPS-aligned (i->L, j->P, k->S) at input_spacing_mm; "
             + ("HU clipped to intensity_window then scaled to [0, 1]. " if modality == "CT" else
                "each scan scaled by its own intensity percentiles to [0, 1] (intensity_window). ")
             + getattr(model, "card_notes", ""))
    return ModelCard(id=model_id, version=f"{version}+step{ckpt['step']}", sha256=sha256_of(onnx_path),
                     task=spec.task, modality=modality, input_spacing_mm=[float(s) for s in data.spacing_mm],
                     patch_size=[int(s) for s in model.card_patch_size(data.patch_size)],
                     intensity_window=[float(w) for w in data.window], label_ids=list(model.label_ids),
                     training=training, metrics=metrics, license=license_text(_sources(training)),
                     architecture=spec.architecture, parameters=count_parameters(model),
                     inputs=list(model.input_names), outputs=list(model.output_names), notes=notes.strip())


def export_checkpoint(checkpoint, out_dir, model_id: str | None = None) -> tuple[Path, Path, float]:
    """Write ``<id>.onnx`` and ``<id>.json`` into ``out_dir``; returns (onnx, card, parity error)."""
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt["model_name"], ckpt["net_config"])
    model.load_state_dict(ckpt["state_dict"])
    # a network trained with a partner (cross pseudo supervision) ships alone
    model = model.exported() if hasattr(model, "exported") else model
    model.eval()
    model_id = model_id or f"spineplan-{ckpt['model_name'].replace('_', '-')}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = model.example_inputs(data_config(ckpt["config"]).patch_size)
    onnx_path = out / f"{model_id}.onnx"
    tmp = out / f".{model_id}.onnx.tmp"
    export_onnx(model, inputs, tmp)
    os.replace(tmp, onnx_path)
    parity = parity_error(model, onnx_path, inputs)
    card = build_card(ckpt, model, model_id, onnx_path, parity)
    return onnx_path, card.save(out / f"{model_id}.json"), parity
