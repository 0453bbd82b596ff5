"""M4 (SSHSNet style) for sagittal MR: a 2D stage and a 3D stage for vertebral bodies and discs.

Stage 1, ``MRSSHS2D``: a DeepLabv3+-style 2D network on three adjacent sagittal slices. The input is
downsampled once (the paper's stage 1 works at half resolution); a residual encoder ends in ASPP,
and the decoder joins it with one low-level skip (1/4 of the input size), as DeepLabv3+ does. It
gives coarse body / disc logits at the full input size and its decoder features (1/4 of the input
size) for stage 2. Trained semi-supervised as a cross pseudo supervision pair (``MRSSHS2DPair``:
two differently initialised copies; only the first is exported).

Stage 2, ``MRSSHS3D``: a small 3D encoder-decoder on full-resolution patches of [image, stage-1
body probability, stage-1 disc probability] (in-plane pooling only: sagittal MR slices are thick).
At its bottleneck (1/4 in-plane) a cross tri-attention module fuses its 3D features with the
stage-1 features of the same slices, stacked along the left-right slice axis:

- inter-slice attention: each slice's 2D features (blind across slices) take in the 3D features of
  the slices they relate to, by a softmax over the slices of (2D query . 3D key) from slice-pooled
  descriptors;
- intra-slice attention: the 3D features (coarse in-plane) are gated by a spatial map computed, per
  sagittal slice, from the 2D features (mean and max over channels, a 7x7 in-plane conv);
- channel attention: SE-like gates over the concatenated 2D and 3D channels, then a 1x1x1 fusion.

Simplified against the paper: encoders are plain residual blocks (no SE-ResNeXt50, no pretraining),
inter-slice attention uses one slice-pooled descriptor per slice (not per-pixel attention across
slices), intra-slice attention is a spatial gate (not full non-local attention within the slice),
and the two heads are independent sigmoids (body, disc) as in M5, not 19 labelled structures: levels
come from the shared MR post-processing (spine_core.pipeline.mr).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.nets.base import CPSPair, ExportableNet, ExportableNet2D
from training.nets.blocks import ASPP, ResBlock, UpBlock, upsample_to

CARD_INPUT = ("three adjacent sagittal slices (array axes j->P, k->S of the LPS grid at input_spacing_mm), "
              "each scaled by the scan's 0.5-99.5 percentiles to [0, 1] (spine_core.pipeline.mr_input)")


@dataclass
class MRSSHS2DConfig:
    in_channels: int = 3            # adjacent sagittal slices
    base_channels: int = 16
    levels: int = 4                 # encoder stages on the half-resolution input; stage 1 is the low-level skip
    feature_channels: int = 16      # decoder features handed to stage 2
    dilations: tuple = (1, 2, 4, 6)
    pair_seed: int = 1              # the CPS pair's second network is initialised from this seed


class MRSSHS2D(ExportableNet2D):
    input_names = ("image",)
    output_names = ("segmentation", "features")
    card_notes = (f"Input: {CARD_INPUT}; sizes divisible by 32. Outputs: 'segmentation' logits (body, disc) "
                  "at the input size and 'features' (decoder features at 1/4 of the input size) for the "
                  "stage-2 model mr-sshs-3d.")

    def __init__(self, config: MRSSHS2DConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MRSSHS2DConfig()
        if cfg.levels < 3:
            raise ValueError("MRSSHS2D needs at least 3 levels (stage 1 is the low-level skip)")
        chans = [cfg.base_channels * 2 ** i for i in range(cfg.levels)]
        self.encoders = nn.ModuleList(ResBlock(c_in, c, dims=2)
                                      for c_in, c in zip([cfg.in_channels] + chans[:-1], chans))
        self.pool = nn.MaxPool2d(2)
        self.context = ASPP(chans[-1], chans[-1], cfg.dilations, branch_channels=chans[-1] // 2, dims=2)
        low = max(8, chans[1] // 2)
        self.low_level = nn.Sequential(nn.Conv2d(chans[1], low, 1, bias=False), nn.BatchNorm2d(low),
                                       nn.ReLU(inplace=True))
        self.decoder = ResBlock(chans[-1] + low, chans[1], dims=2)
        f = cfg.feature_channels
        self.features = nn.Sequential(nn.Conv2d(chans[1], f, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(f, 2, 1)

    @property
    def label_ids(self) -> list[int]:
        return [1, 2]            # body, disc

    @property
    def dynamic_axes(self) -> dict:
        axes = {0: "batch", 2: "h", 3: "w"}
        return {"image": axes, "segmentation": axes, "features": {0: "batch", 2: "h4", 3: "w4"}}

    def forward(self, image: torch.Tensor):
        x = F.avg_pool2d(image, 2)                     # stage 1 reads the slices at half resolution
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        low = self.low_level(skips[1])
        x = self.decoder(torch.cat([upsample_to(self.context(x), low), low], dim=1))
        features = self.features(x)
        return upsample_to(self.head(features), image), features


class MRSSHS2DPair(CPSPair):
    """Two ``MRSSHS2D`` for cross pseudo supervision; export takes ``.a``."""

    def __init__(self, config: MRSSHS2DConfig | None = None) -> None:
        config = config or MRSSHS2DConfig()
        super().__init__(lambda: MRSSHS2D(config), config.pair_seed)
        self.config = config


@dataclass
class MRSSHS3DConfig:
    in_channels: int = 3            # image + stage-1 body and disc probabilities
    feature_channels: int = 16      # stage 1's feature_channels
    base_channels: int = 8
    dilations: tuple = (1, 2, 4)
    tri_attention: bool = True      # False: the 2D features are added, not attended (ablation)


class CrossTriAttention(nn.Module):
    """Fuses 3D features ``f3`` and slice-stacked 2D features ``f2`` (both B, C, D, H, W; D the
    left-right slice axis): inter-slice, intra-slice and channel attention (module docstring)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Conv3d(channels, channels, 1) for _ in range(3))
        self.spatial = nn.Conv3d(2, 1, (1, 7, 7), padding=(0, 3, 3))
        hidden = max(4, 2 * channels // reduction)
        self.channel = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, 2 * channels))
        self.out = nn.Sequential(nn.Conv3d(2 * channels, channels, 1, bias=False), nn.BatchNorm3d(channels),
                                 nn.ReLU(inplace=True))
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, f3: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        # inter-slice: slice i of the 2D features reads the 3D features of slice j with weight a_ij
        q, k = self.query(f2).mean(dim=(3, 4)), self.key(f3).mean(dim=(3, 4))          # (B, C, D)
        attn = torch.softmax(torch.einsum("bci,bcj->bij", q, k) * self.scale, dim=-1)    # (B, D, D)
        f2 = f2 + torch.einsum("bij,bcjhw->bcihw", attn, self.value(f3))
        # intra-slice: where in each sagittal slice the 2D features respond, the 3D features count
        pooled = torch.cat([f2.mean(dim=1, keepdim=True), f2.amax(dim=1, keepdim=True)], dim=1)
        f3 = f3 * torch.sigmoid(self.spatial(pooled))
        # channel: SE gates over both feature sets
        both = torch.cat([f3, f2], dim=1)
        gates = torch.sigmoid(self.channel(both.mean(dim=(2, 3, 4))))[:, :, None, None, None]
        return self.out(both * gates)


class MRSSHS3D(ExportableNet):
    input_names = ("image", "features2d")
    output_names = ("segmentation",)
    card_notes = ("Input 'image': channel 0 the scan's MR grid (scaled as mr-sshs-2d's input), channels 1-2 "
                  "mr-sshs-2d's body and disc probabilities (sigmoid of its logits), axes (L, P, S), in-plane "
                  "sizes divisible by 4; 'features2d': mr-sshs-2d's 'features' of the same slices stacked "
                  "along L (B, F, L, P/4, S/4). Output: 'segmentation' logits (body, disc).")

    def __init__(self, config: MRSSHS3DConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MRSSHS3DConfig()
        c = cfg.base_channels
        self.enc0 = ResBlock(cfg.in_channels, c)
        self.enc1 = ResBlock(c, 2 * c)
        self.enc2 = ResBlock(2 * c, 4 * c)
        self.pool = nn.MaxPool3d((1, 2, 2))            # in-plane only: sagittal slices are thick
        self.context = ASPP(4 * c, 4 * c, cfg.dilations, branch_channels=2 * c)
        self.project2d = nn.Sequential(nn.Conv3d(cfg.feature_channels, 4 * c, 1, bias=False),
                                       nn.BatchNorm3d(4 * c), nn.ReLU(inplace=True))
        self.fuse = CrossTriAttention(4 * c) if cfg.tri_attention else None
        self.up1 = UpBlock(4 * c, 2 * c, 2 * c)
        self.up0 = UpBlock(2 * c, c, c)
        self.head = nn.Conv3d(c, 2, 1)

    @property
    def label_ids(self) -> list[int]:
        return [1, 2]

    @property
    def dynamic_axes(self) -> dict:
        axes = {0: "batch", 2: "d", 3: "h", 4: "w"}
        return {"image": axes, "segmentation": axes, "features2d": {0: "batch", 2: "d", 3: "h4", 4: "w4"}}

    def example_inputs(self, patch_size, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        d, h, w = (int(s) for s in patch_size[-3:])
        return (torch.rand((1, self.config.in_channels, d, h, w), generator=gen),
                torch.rand((1, self.config.feature_channels, d, h // 4, w // 4), generator=gen))

    def forward(self, image: torch.Tensor, features2d: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(image)
        e1 = self.enc1(self.pool(e0))
        x3 = self.context(self.enc2(self.pool(e1)))
        x2 = self.project2d(upsample_to(features2d, x3))
        x = self.fuse(x3, x2) if self.fuse is not None else x3 + x2
        return self.head(self.up0(self.up1(x, e1), e0))
