"""M5 (SCAR-Net style) for sagittal MR: vertebral bodies and discs with a key-point recognition branch.

A 2D residual encoder with an ASPP bottleneck and a U-Net decoder (DeepLabv3+-like: atrous context,
full-resolution skips) on three adjacent sagittal slices. The decoded features split into a body
branch and a disc branch joined by multi-channel cross attention: each branch's channels are
re-weighted from both branches' pooled descriptors (inter-class) and each receives the other's
features gated by its own spatial attention (intra-class), so a body is segmented knowing where the
discs are and the reverse. The recognition branch predicts key points (body and disc centres) as
heatmaps; inference uses them to split touching structures, and their supervision lets cases
labelled with points only train the network (mixed supervision; masked per case in the loss).

Outputs: 'segmentation' logits (B, 2, H, W): body, disc; 'keypoints' logits (B, 2, H, W): body
centres, disc centres. The paper's version has a heavier encoder and an explicit label-fusion stage.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from training.nets.base import CPSPair, ExportableNet2D
from training.nets.blocks import ASPP, ResBlock, Up2d


@dataclass
class MRScarConfig:
    in_channels: int = 3            # adjacent sagittal slices
    base_channels: int = 16
    levels: int = 4
    branch_channels: int = 16


class CrossClassAttention(nn.Module):
    """Two class branches exchange information: channel gates from both branches' pooled features,
    and each branch adds the other's features where its own spatial attention says they matter."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(4, 2 * channels // reduction)
        self.channel = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, 2 * channels))
        self.spatial = nn.ModuleList(nn.Conv2d(channels, 1, 7, padding=3) for _ in range(2))
        self.mix = nn.ModuleList(nn.Conv2d(channels, channels, 1, bias=False) for _ in range(2))
        self.channels = channels

    def forward(self, body: torch.Tensor, disc: torch.Tensor):
        pooled = torch.cat([body.mean(dim=(2, 3)), disc.mean(dim=(2, 3))], dim=1)
        gates = torch.sigmoid(self.channel(pooled))[:, :, None, None]
        body_g, disc_g = body * gates[:, :self.channels], disc * gates[:, self.channels:]
        body_out = body_g + self.mix[0](disc_g) * torch.sigmoid(self.spatial[0](body_g))
        disc_out = disc_g + self.mix[1](body_g) * torch.sigmoid(self.spatial[1](disc_g))
        return body_out, disc_out


class MRScarNet(ExportableNet2D):
    input_names = ("image",)
    output_names = ("segmentation", "keypoints")
    card_notes = ("Input: three adjacent sagittal slices (array axes j->P, k->S of the LPS grid at "
                  "input_spacing_mm), each scaled by the scan's 0.5-99.5 percentiles to [0, 1] "
                  "(spine_core.pipeline.mr_input). Outputs: 'segmentation' logits (body, disc) and "
                  "'keypoints' logits (body centres, disc centres).")

    def __init__(self, config: MRScarConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MRScarConfig()
        chans = [cfg.base_channels * 2 ** i for i in range(cfg.levels)]
        self.encoders = nn.ModuleList(ResBlock(c_in, c, dims=2)
                                      for c_in, c in zip([cfg.in_channels] + chans[:-1], chans))
        self.pool = nn.MaxPool2d(2)
        self.context = ASPP(chans[-1], chans[-1], (1, 2, 4, 6), branch_channels=chans[-1] // 2, dims=2)
        self.ups = nn.ModuleList(Up2d(chans[i + 1], chans[i], chans[i]) for i in reversed(range(cfg.levels - 1)))
        b = cfg.branch_channels
        self.body = ResBlock(chans[0], b, dims=2)
        self.disc = ResBlock(chans[0], b, dims=2)
        self.cross = CrossClassAttention(b)
        self.seg_body, self.seg_disc = nn.Conv2d(b, 1, 1), nn.Conv2d(b, 1, 1)
        self.recognition = nn.Sequential(ResBlock(2 * b + chans[0], b, dims=2), nn.Conv2d(b, 2, 1))
        nn.init.constant_(self.recognition[-1].bias, -2.19)   # sigmoid ~ 0.1: few key-point pixels

    @property
    def label_ids(self) -> list[int]:
        return [1, 2]            # body, disc (levels come from their order along the spine)

    def forward(self, image: torch.Tensor):
        skips, x = [], image
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        x = self.context(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        body, disc = self.cross(self.body(x), self.disc(x))
        segmentation = torch.cat([self.seg_body(body), self.seg_disc(disc)], dim=1)
        keypoints = self.recognition(torch.cat([x, body, disc], dim=1))
        return segmentation, keypoints


@dataclass
class MRScarPairConfig(MRScarConfig):
    pair_seed: int = 1              # the second network's initialisation (site adaptation replaces both)


class MRScarPair(CPSPair):
    """Two ``MRScarNet`` trained by cross pseudo supervision (the MR site adaptation,
    training/tasks_mr_adapt.py); export takes ``.a``, so the ONNX file is one MRScarNet."""

    def __init__(self, config: MRScarPairConfig | None = None) -> None:
        config = config or MRScarPairConfig()
        net = MRScarConfig(**{f.name: getattr(config, f.name) for f in fields(MRScarConfig)})
        super().__init__(lambda: MRScarNet(net), config.pair_seed)
        self.config = config

    def train(self, mode: bool = True) -> "MRScarPair":
        """BatchNorm statistics stay frozen: the parent's are restored from a folded ONNX file
        (training/onnx_weights.py) and the adaptation's small batches would not estimate them better."""
        from training.onnx_weights import freeze_batch_norm

        super().train(mode)
        freeze_batch_norm(self)
        return self
