"""The networks, by name, with their config dataclasses (imported lazily: one name, one module)."""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, fields

from torch import nn


@dataclass(frozen=True)
class NetSpec:
    name: str
    module: str
    model_class: str
    config_class: str
    task: str
    architecture: str


NETS: dict[str, NetSpec] = {s.name: s for s in (
    NetSpec("localizer", "training.nets.localizer", "SpineContextResUNet", "LocalizerConfig",
            "spine-localization", "M1 SpineContextResUNet: 3D residual U-Net, 3 stages, ASPP bottleneck"),
    NetSpec("joint", "training.nets.joint", "JointSegIdNet", "JointConfig",
            "vertebra-segmentation-identification",
            "M3 joint U-Net: shared 4-stage IN encoder, long-range bottleneck, seg + CBAM ID decoders"),
    NetSpec("detector2d", "training.nets.detector2d", "CentreDetector2D", "Detector2DConfig",
            "vertebra-centre-detection-2d", "M2 2D centre-heatmap detector (CenterNet-style U-Net)"),
    NetSpec("vertebra_seg", "training.nets.attention_unet", "AttentionUNet3D", "AttentionUNetConfig",
            "single-vertebra-segmentation", "M2 3D attention-gated U-Net on [CT ROI, centre-weight map]"),
    NetSpec("labeler", "training.nets.labeler", "VertebraLabeler", "LabelerConfig",
            "vertebra-labeling", "M2 labeler: 3D ResNet mask encoder + Transformer over the vertebra sequence"),
    NetSpec("mr_scar", "training.nets.mr_scar", "MRScarNet", "MRScarConfig", "mr-body-disc-segmentation",
            "M5 SCAR-Net style: 2D residual encoder + ASPP, U-Net decoder, body / disc branches with "
            "cross-class attention, key-point recognition branch"),
    NetSpec("mr_scar_pair", "training.nets.mr_scar", "MRScarPair", "MRScarPairConfig", "mr-body-disc-segmentation",
            "M5 SCAR-Net style (as mr_scar), adapted to a site's scans as a cross pseudo supervision pair "
            "(first network exported)"),
    NetSpec("mr_sshs2d", "training.nets.mr_sshs", "MRSSHS2DPair", "MRSSHS2DConfig", "mr-body-disc-segmentation-2d",
            "M4 SSHSNet style, stage 1: 2D DeepLabv3+-style residual encoder + ASPP, low-level skip decoder, "
            "half-resolution input, trained as a cross pseudo supervision pair (first network exported)"),
    NetSpec("mr_sshs3d", "training.nets.mr_sshs", "MRSSHS3D", "MRSSHS3DConfig", "mr-body-disc-segmentation-3d",
            "M4 SSHSNet style, stage 2: 3D residual encoder-decoder + ASPP on [image, stage-1 probabilities], "
            "cross tri-attention (inter-slice, intra-slice, channel) fusing the stage-1 features"),
)}


def _spec(name: str) -> NetSpec:
    if name not in NETS:
        raise ValueError(f"unknown model '{name}'; choose one of {', '.join(NETS)}")
    return NETS[name]


def config_from_dict(name: str, values: dict | None):
    """The config dataclass of ``name`` from a JSON dict; unknown keys are refused (typos)."""
    spec = _spec(name)
    cls = getattr(importlib.import_module(spec.module), spec.config_class)
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {name} net settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**values)


def build_model(name: str, values: dict | None = None) -> nn.Module:
    spec = _spec(name)
    cls = getattr(importlib.import_module(spec.module), spec.model_class)
    return cls(config_from_dict(name, values))


def model_config_dict(model: nn.Module) -> dict:
    return asdict(model.config)
