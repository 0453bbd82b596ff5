"""Building blocks shared by the networks: residual and plain conv blocks, ASPP, CBAM, attention gates.

Every block exports to ONNX with the legacy tracer (opset 17) and keeps spatial sizes dynamic:
upsampling takes the skip connection's size, never a fixed scale, so odd sizes work too.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv3(cin: int, cout: int, dilation: int = 1, dims: int = 3, bias: bool = False) -> nn.Module:
    conv = nn.Conv3d if dims == 3 else nn.Conv2d
    return conv(cin, cout, 3, padding=dilation, dilation=dilation, bias=bias)


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Linear upsampling of ``x`` onto ``ref``'s spatial size (trilinear in 3D, bilinear in 2D)."""
    mode = "trilinear" if x.dim() == 5 else "bilinear"
    return F.interpolate(x, size=ref.shape[2:], mode=mode, align_corners=False)


class ResBlock(nn.Module):
    """Two 3x3x3 conv + BatchNorm + ReLU with a 1x1x1 shortcut (M1's residual block)."""

    def __init__(self, cin: int, cout: int, dims: int = 3) -> None:
        super().__init__()
        norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
        conv1 = nn.Conv3d if dims == 3 else nn.Conv2d
        self.body = nn.Sequential(conv3(cin, cout, dims=dims), norm(cout), nn.ReLU(inplace=True),
                                  conv3(cout, cout, dims=dims), norm(cout))
        self.shortcut = (nn.Sequential(conv1(cin, cout, 1, bias=False), norm(cout))
                         if cin != cout else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ConvINBlock(nn.Module):
    """Two 3D convs + InstanceNorm + LeakyReLU (M3's encoder/decoder stage)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3(cin, cout), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
            conv3(cout, cout), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ASPP(nn.Module):
    """Parallel dilated 3x3(x3) convs, concatenated, fused by 1x1(x1) conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int, dilations: Sequence[int] = (1, 2, 4, 8),
                 branch_channels: int | None = None, dims: int = 3) -> None:
        super().__init__()
        branch = branch_channels or cin
        conv, norm = (nn.Conv3d, nn.BatchNorm3d) if dims == 3 else (nn.Conv2d, nn.BatchNorm2d)
        self.dilations = tuple(int(d) for d in dilations)
        self.branches = nn.ModuleList(conv3(cin, branch, d, dims=dims, bias=True) for d in self.dilations)
        self.fuse = nn.Sequential(conv(branch * len(self.dilations), cout, 1, bias=False),
                                  norm(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([b(x) for b in self.branches], dim=1))


class Up2d(nn.Module):
    """2D decoder step: upsample onto the skip's size, reduce, concatenate the skip, residual block."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.block = ResBlock(cout + cskip, cout, dims=2)

    def forward(self, x, skip):
        return self.block(torch.cat([self.reduce(upsample_to(x, skip)), skip], dim=1))


class UpBlock(nn.Module):
    """Linear upsample + conv, concatenate the skip, then a block (residual or IN)."""

    def __init__(self, cin: int, cskip: int, cout: int, block=ResBlock) -> None:
        super().__init__()
        self.reduce = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.block = block(cout + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(upsample_to(x, skip))
        return self.block(torch.cat([x, skip], dim=1))


class CBAM3d(nn.Module):
    """3D CBAM: channel attention (avg + max pooled MLP) then spatial attention (7^3 conv)."""

    def __init__(self, channels: int, reduction: int = 4, kernel: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv3d(channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv3d(hidden, channels, 1))
        self.spatial = nn.Conv3d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3, 4), keepdim=True)
        mx = x.amax(dim=(2, 3, 4), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al.): the coarse gating signal weights the skip features."""

    def __init__(self, cskip: int, cgate: int, cinter: int) -> None:
        super().__init__()
        self.theta = nn.Conv3d(cskip, cinter, 1, bias=False)
        self.phi = nn.Conv3d(cgate, cinter, 1)
        self.psi = nn.Conv3d(cinter, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        g = upsample_to(self.phi(gate), skip)
        alpha = torch.sigmoid(self.psi(F.relu(self.theta(skip) + g)))
        return skip * alpha


def unet_decode(encoders, pool, ups, image: torch.Tensor) -> torch.Tensor:
    """The U-Net walk shared by the 2D and 3D nets: encode with pooling, decode through skips."""
    skips, x = [], image
    for i, enc in enumerate(encoders):
        x = enc(x if i == 0 else pool(x))
        skips.append(x)
    for up, skip in zip(ups, reversed(skips[:-1])):
        x = up(x, skip)
    return x


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
