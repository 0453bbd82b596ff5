"""M1: "SpineContextResUNet", the binary whole-spine localizer (stage 1 of coarse-to-fine).

3D residual U-Net, 3 encoder stages (ResBlock, max-pool 2x), an ASPP context block at the
bottleneck (dilations configurable, default {1, 2, 4, 8}), trilinear upsample + conv decoders with
concatenated skips, and one output channel: the spine logit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from training.nets.base import ExportableNet
from training.nets.blocks import ASPP, ResBlock, UpBlock


@dataclass
class LocalizerConfig:
    in_channels: int = 1
    base_channels: int = 8
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    out_channels: int = 1


class SpineContextResUNet(ExportableNet):
    card_notes = "Output: one logit per voxel, sigmoid > 0.5 = spine (any vertebra)."

    def __init__(self, config: LocalizerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LocalizerConfig()
        b = cfg.base_channels
        self.enc1 = ResBlock(cfg.in_channels, b)
        self.enc2 = ResBlock(b, 2 * b)
        self.enc3 = ResBlock(2 * b, 4 * b)
        self.pool = nn.MaxPool3d(2)
        self.context = ASPP(4 * b, 8 * b, cfg.dilations, branch_channels=2 * b)
        self.up3 = UpBlock(8 * b, 4 * b, 4 * b)
        self.up2 = UpBlock(4 * b, 2 * b, 2 * b)
        self.up1 = UpBlock(2 * b, b, b)
        self.head = nn.Conv3d(b, cfg.out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(image)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        x = self.context(self.pool(e3))
        x = self.up3(x, e3)
        x = self.up2(x, e2)
        x = self.up1(x, e1)
        return self.head(x)
