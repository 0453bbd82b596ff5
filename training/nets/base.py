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


class CPSPair(nn.Module):
    """Two networks of one architecture, initialised differently, trained together by one optimizer
    (cross pseudo supervision: each learns from the other's pseudo-labels). ``forward`` is the first
    network's; export takes ``exported()``, the first network, so the card and the ONNX file describe
    one network. ``make`` builds a network; the second is built under ``seed`` without disturbing the
    caller's random state."""

    def __init__(self, make, seed: int) -> None:
        super().__init__()
        self.a = make()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.b = make()
        if all(torch.equal(x, y) for x, y in zip(self.a.parameters(), self.b.parameters())):
            raise ValueError(f"the pair's second network (seed {seed}) starts as the first: choose another "
                             "pair seed than the training seed")

    def forward(self, *inputs):
        return self.a(*inputs)

    def exported(self) -> nn.Module:
        return self.a

    # what export and the tasks ask of a network, answered by the first one
    input_names = property(lambda self: self.a.input_names)
    output_names = property(lambda self: self.a.output_names)
    dynamic_axes = property(lambda self: self.a.dynamic_axes)
    label_ids = property(lambda self: self.a.label_ids)
    card_notes = property(lambda self: self.a.card_notes)

    def example_inputs(self, patch_size, seed: int = 0):
        return self.a.example_inputs(patch_size, seed)

    def card_patch_size(self, patch_size):
        return self.a.card_patch_size(patch_size)
