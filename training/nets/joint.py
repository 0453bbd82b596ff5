"""M3: joint vertebra segmentation + identification network.

Shared 4-stage encoder (two 3D convs + InstanceNorm + LeakyReLU per stage, x2 down), a long-range
block at the 1/8 bottleneck ("ssm": selective state space, "transformer", or "none"), and two
decoders: segmentation (3 upsampling steps with skips, binary vertebra logit at full resolution,
deep-supervision heads at 1/2 and 1/4 while training) and a lighter identification decoder with
3D-CBAM giving per-level heatmap logits at 1/4 resolution (channel c -> VerSe id label_ids[c]).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from training.nets.base import ExportableNet
from training.nets.blocks import CBAM3d, ConvINBlock, UpBlock, upsample_to
from training.nets.levels import EXTENDED_LEVELS, STANDARD_LEVELS
from training.nets.sequence import SSMBlock, TransformerLayer


@dataclass
class JointConfig:
    in_channels: int = 1
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    long_range: str = "ssm"              # "ssm", "transformer" or "none"
    sequence_layers: int = 1
    heads: int = 4                       # transformer heads
    ssm_state: int = 8
    ssm_expand: int = 2
    ssm_head_dim: int = 16
    bidirectional: bool = True
    id_channels: int = 32
    cbam: bool = True
    deep_supervision: bool = True
    label_ids: list[int] = field(default_factory=lambda: STANDARD_LEVELS + EXTENDED_LEVELS)


class LongRangeBlock(nn.Module):
    """Tokens of the bottleneck ordered cranio-caudally in axial slabs (array axis k), one slab per
    chunk; a depthwise-conv positional encoding keeps it size-agnostic."""

    def __init__(self, dim: int, cfg: JointConfig) -> None:
        super().__init__()
        if cfg.long_range not in ("ssm", "transformer"):
            raise ValueError(f"long_range must be 'ssm', 'transformer' or 'none', not '{cfg.long_range}'")
        self.kind = cfg.long_range
        self.pos = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        if self.kind == "ssm":
            make = lambda: SSMBlock(dim, cfg.ssm_state, cfg.ssm_expand, cfg.ssm_head_dim,  # noqa: E731
                                    bidirectional=cfg.bidirectional)
        else:
            make = lambda: TransformerLayer(dim, cfg.heads)  # noqa: E731
        self.layers = nn.ModuleList(make() for _ in range(cfg.sequence_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        b, c = x.shape[0], x.shape[1]
        tokens = x.permute(0, 4, 2, 3, 1).reshape(b, x.shape[4], -1, c)     # (b, K, I*J, C)
        for layer in self.layers:
            if self.kind == "ssm":
                tokens = layer(tokens)
            else:
                tokens = layer(tokens.reshape(b, -1, c)).reshape(b, x.shape[4], -1, c)
        return tokens.reshape(b, x.shape[4], x.shape[2], x.shape[3], c).permute(0, 4, 2, 3, 1)


class JointSegIdNet(ExportableNet):
    output_names = ("seg", "heatmaps")
    card_notes = ("Outputs: 'seg' = vertebra logit at full resolution (sigmoid > 0.5); 'heatmaps' = "
                  "per-level logits at 1/4 resolution, softmax over space per channel; channel c -> "
                  "label_ids[c]. Input sizes that are multiples of 8 keep the 1/4 grid exact.")

    def __init__(self, config: JointConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or JointConfig()
        c = list(cfg.channels)
        if len(c) != 4:
            raise ValueError("the joint network has 4 encoder stages: give 4 channel counts")
        self.encoders = nn.ModuleList(ConvINBlock(ci, co) for ci, co in zip([cfg.in_channels] + c[:-1], c))
        self.pool = nn.MaxPool3d(2)
        self.long_range = LongRangeBlock(c[3], cfg) if cfg.long_range != "none" else nn.Identity()
        self.up = nn.ModuleList([UpBlock(c[3], c[2], c[2], ConvINBlock), UpBlock(c[2], c[1], c[1], ConvINBlock),
                                 UpBlock(c[1], c[0], c[0], ConvINBlock)])
        self.seg_head = nn.Conv3d(c[0], 1, 1)
        self.ds_heads = nn.ModuleList([nn.Conv3d(c[1], 1, 1), nn.Conv3d(c[2], 1, 1)])   # 1/2, 1/4
        self.id_reduce = nn.Conv3d(c[3], cfg.id_channels, 3, padding=1, bias=False)
        self.id_block = ConvINBlock(cfg.id_channels + c[2], cfg.id_channels)
        self.cbam = CBAM3d(cfg.id_channels) if cfg.cbam else nn.Identity()
        self.id_head = nn.Conv3d(cfg.id_channels, len(cfg.label_ids), 1)

    @property
    def label_ids(self) -> list[int]:
        return list(self.config.label_ids)

    def forward(self, image: torch.Tensor):
        skips, x = [], image
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        bottleneck = self.long_range(x)
        quarter = self.up[0](bottleneck, skips[2])
        half = self.up[1](quarter, skips[1])
        seg = self.seg_head(self.up[2](half, skips[0]))
        ident = self.id_block(torch.cat([self.id_reduce(upsample_to(bottleneck, skips[2])), skips[2]], dim=1))
        heatmaps = self.id_head(self.cbam(ident))
        if self.training and self.config.deep_supervision:
            return seg, heatmaps, self.ds_heads[0](half), self.ds_heads[1](quarter)
        return seg, heatmaps
