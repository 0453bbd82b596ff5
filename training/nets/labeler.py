"""M2 (c): vertebra labeling: a small 3D ResNet encodes each vertebra's binary mask (resized, e.g.
24x48x48) into a feature vector; a Transformer encoder (training.nets.sequence.TransformerLayer,
exportable with a dynamic vertebra count) over the scan's vertebrae, ordered top to
bottom, gives per-vertebra class logits (channel -> VerSe id in ``label_ids``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from training.nets.base import ExportableNet
from training.nets.blocks import ResBlock
from training.nets.levels import EXTENDED_LEVELS, STANDARD_LEVELS
from training.nets.sequence import TransformerLayer


@dataclass
class LabelerConfig:
    in_channels: int = 1
    base_channels: int = 8
    mask_size: list[int] = field(default_factory=lambda: [48, 48, 24])   # (L, P, S) voxels
    feature_dim: int = 64
    heads: int = 4
    layers: int = 2
    max_vertebrae: int = 32
    dropout: float = 0.1
    label_ids: list[int] = field(default_factory=lambda: STANDARD_LEVELS + EXTENDED_LEVELS)


class MaskEncoder(nn.Module):
    """3D ResNet: stem (stride 2), three residual stages with 2x pooling, global average pool."""

    def __init__(self, cin: int, base: int, out_dim: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(cin, base, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm3d(base), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(ResBlock(base, base), nn.MaxPool3d(2), ResBlock(base, 2 * base),
                                    nn.MaxPool3d(2), ResBlock(2 * base, 4 * base))
        self.fc = nn.Linear(4 * base, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stages(self.stem(x)).mean(dim=(2, 3, 4)))


class VertebraLabeler(ExportableNet):
    input_names = ("masks",)
    output_names = ("logits",)
    card_notes = ("Input 'masks': (batch, vertebrae ordered cranio-caudally, 1, *patch_size) binary "
                  "masks, each vertebra's bounding box resized to patch_size. Output 'logits': "
                  "(batch, vertebrae, classes); class c -> label_ids[c].")

    def __init__(self, config: LabelerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LabelerConfig()
        self.encoder = MaskEncoder(cfg.in_channels, cfg.base_channels, cfg.feature_dim)
        self.position = nn.Parameter(torch.zeros(cfg.max_vertebrae, cfg.feature_dim))
        nn.init.normal_(self.position, std=0.02)
        self.transformer = nn.ModuleList(TransformerLayer(cfg.feature_dim, cfg.heads, 2.0, cfg.dropout)
                                         for _ in range(cfg.layers))
        self.classify = nn.Sequential(nn.LayerNorm(cfg.feature_dim), nn.Linear(cfg.feature_dim, len(cfg.label_ids)))

    @property
    def label_ids(self) -> list[int]:
        return list(self.config.label_ids)

    @property
    def dynamic_axes(self) -> dict:
        return {"masks": {0: "batch", 1: "vertebrae"}, "logits": {0: "batch", 1: "vertebrae"}}

    def card_patch_size(self, patch_size) -> list[int]:
        return list(self.config.mask_size)

    def example_inputs(self, patch_size=None, seed: int = 0, count: int = 5):
        gen = torch.Generator().manual_seed(seed)
        shape = (1, count, self.config.in_channels, *self.config.mask_size)
        return ((torch.rand(shape, generator=gen) > 0.5).float(),)

    def forward(self, masks: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n = masks.shape[0], masks.shape[1]
        feats = self.encoder(masks.flatten(0, 1)).view(b, n, -1)
        feats = feats + self.position[:n]
        for layer in self.transformer:
            feats = layer(feats, padding_mask)
        return self.classify(feats)
