"""M2 (a): compact 2D centre-heatmap detector on sagittal slices (CenterNet-style small U-Net).

Outputs a vertebra-centre heatmap logit per pixel and, optionally, the box size (extent along the
slice's two axes, in pixels) regressed at every pixel (read at the peaks). ``spine_core.pipeline.clustering``
turns per-slice peaks into 3D vertebra centres with DBSCAN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.nets.base import ExportableNet2D
from training.nets.blocks import ResBlock, Up2d, unet_decode


@dataclass
class Detector2DConfig:
    in_channels: int = 1
    base_channels: int = 16
    levels: int = 4                 # resolution levels (levels - 1 poolings)
    size_regression: bool = True


class CentreDetector2D(ExportableNet2D):
    card_notes = ("Input: one sagittal slice (array axes j->P, k->S) at input_spacing_mm. Outputs: "
                  "'heatmap' logit (sigmoid = vertebra-centre likelihood), 'size' = box extent (P, S) "
                  "in pixels, read at heatmap peaks.")

    def __init__(self, config: Detector2DConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or Detector2DConfig()
        chans = [cfg.base_channels * 2 ** i for i in range(cfg.levels)]
        self.encoders = nn.ModuleList(ResBlock(c_in, c, dims=2)
                                      for c_in, c in zip([cfg.in_channels] + chans[:-1], chans))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(Up2d(chans[i + 1], chans[i], chans[i]) for i in reversed(range(cfg.levels - 1)))
        self.heatmap = nn.Conv2d(chans[0], 1, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)   # CenterNet's prior: sigmoid ~ 0.1
        self.size = nn.Conv2d(chans[0], 2, 1) if cfg.size_regression else None
        self.output_names = ("heatmap", "size") if cfg.size_regression else ("heatmap",)

    def forward(self, image: torch.Tensor):
        x = unet_decode(self.encoders, self.pool, self.ups, image)
        if self.size is None:
            return self.heatmap(x)
        return self.heatmap(x), self.size(x)
