"""M2 (b): per-vertebra 3D U-Net with attention gates on the skips.

Input: 2 channels [CT ROI in [0, 1], centre-weight map (Gaussian, 1 at the detected centre)];
output: one logit per voxel (sigmoid > 0.5 = this vertebra).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.nets.base import ExportableNet
from training.nets.blocks import AttentionGate, ConvINBlock, unet_decode, upsample_to


@dataclass
class AttentionUNetConfig:
    in_channels: int = 2
    base_channels: int = 8
    levels: int = 4
    out_channels: int = 1


class _GatedUp(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.gate = AttentionGate(cskip, cin, max(cskip // 2, 1))
        self.reduce = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.block = ConvINBlock(cout + cskip, cout)

    def forward(self, x, skip):
        gated = self.gate(skip, x)
        return self.block(torch.cat([self.reduce(upsample_to(x, skip)), gated], dim=1))


class AttentionUNet3D(ExportableNet):
    card_notes = ("Inputs: 2 channels [CT ROI, centre-weight map exp(-d^2 / 2 sigma^2) around the "
                  "vertebra centre]. Output: one logit per voxel; sigmoid > 0.5 = this vertebra.")

    def __init__(self, config: AttentionUNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or AttentionUNetConfig()
        chans = [cfg.base_channels * 2 ** i for i in range(cfg.levels)]
        self.encoders = nn.ModuleList(ConvINBlock(c_in, c) for c_in, c in zip([cfg.in_channels] + chans[:-1], chans))
        self.pool = nn.MaxPool3d(2)
        self.ups = nn.ModuleList(_GatedUp(chans[i + 1], chans[i], chans[i]) for i in reversed(range(cfg.levels - 1)))
        self.head = nn.Conv3d(chans[0], cfg.out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = unet_decode(self.encoders, self.pool, self.ups, image)
        return self.head(x)
