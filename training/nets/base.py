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
