"""What export needs from a network: names, example inputs, dynamic axes, label ids."""
from __future__ import annotations

import torch
from torch import nn


class ExportableNet(nn.Module):
    """Default: one 3D image input (B, C, D, H, W), spatial axes dynamic."""
    input_names: tuple[str, ...] = ("image",)
    output_names: tuple[str, ...] = ("logits",)
    in_channels_attr = "in_channels"
    card_notes = ""

    @property
    def dynamic_axes(self) -> dict:
        spatial = {0: "batch", 2: "d", 3: "h", 4: "w"}
        return {**{n: spatial for n in self.input_names}, **{n: spatial for n in self.output_names}}

    @property
    def label_ids(self) -> list[int]:
        return [1]

    def example_inputs(self, patch_size, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        channels = getattr(self.config, self.in_channels_attr)
        return (torch.rand((1, channels, *patch_size), generator=gen),)

    def card_patch_size(self, patch_size) -> list[int]:
        return list(patch_size)


class ExportableNet2D(ExportableNet):
    """One 2D slice input (B, C, H, W): the card's patch size is the slice's two axes."""

    @property
    def dynamic_axes(self) -> dict:
        axes = {0: "batch", 2: "h", 3: "w"}
        return {n: axes for n in (*self.input_names, *self.output_names)}

    def card_patch_size(self, patch_size) -> list[int]:
        return [int(s) for s in patch_size[-2:]]

    def example_inputs(self, patch_size, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand((1, self.config.in_channels, *self.card_patch_size(patch_size)), generator=gen),)
