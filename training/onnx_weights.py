"""A shipped ONNX model's weights back into its torch network, so a site can fine-tune what it runs.

The exporter keeps parameter names, except where it folds a BatchNorm into the convolution before it
(eval mode, constant folding): that convolution's weight and bias come out under generated names, and
the BatchNorm's scale, shift and statistics are gone. Such a pair is restored exactly for inference:
the convolution takes the folded weight (and no bias), the BatchNorm a per-channel scale and the
folded bias (mean 0, variance 1 - eps), the scale chosen so the convolution's weights are of the size
they were trained at (``_channel_scale``). Which folded tensor belongs to which convolution is
read from a marker export of the same network (every convolution filled with its own number), matched
to the shipped file node by node. Restored BatchNorms are right only with their running statistics,
so the caller trains with them frozen (``freeze_batch_norm``).

A network of another design is refused, never half-loaded.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spine_core.errors import SpineError

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_NODES = ("Conv", "ConvTranspose")


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.modules.batchnorm._BatchNorm]]:
    """(convolution, BatchNorm right after it in registration order), as the exporter folds them."""
    modules = [m for _, m in model.named_modules()]
    return [(prev, m) for prev, m in zip(modules, modules[1:])
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and isinstance(prev, _CONV)
            and prev.out_channels == m.num_features]


def _conv_tensors(onnx_model) -> list[tuple[str, str | None]]:
    """(weight initializer name, bias initializer name or None) of every convolution node, in graph order."""
    return [(n.input[1], n.input[2] if len(n.input) > 2 else None)
            for n in onnx_model.graph.node if n.op_type in _CONV_NODES]


def _marker_map(model: nn.Module, example_inputs: tuple, pairs) -> dict[int, int]:
    """Graph order of convolution nodes -> index of the folded pair they hold (a marker export)."""
    import onnx
    from onnx import numpy_helper

    from training.export import export_onnx

    marked = copy.deepcopy(model).eval()
    marked_pairs = _conv_bn_pairs(marked)
    with torch.no_grad():
        for k, (conv, bn) in enumerate(marked_pairs):
            conv.weight.fill_(k + 1.0)
            if conv.bias is not None:
                conv.bias.zero_()
            bn.weight.fill_(1.0)
            bn.bias.fill_(k + 1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(marked, example_inputs, Path(tmp) / "marker.onnx")
        proto = onnx.load(str(path))
    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    out = {}
    for order, (weight, _) in enumerate(_conv_tensors(proto)):
        value = values.get(weight)
        if value is None or value.size == 0:
            continue
        first = float(value.flat[0])
        k = int(round(first)) - 1
        if 0 <= k < len(pairs) and np.all(value == first) and value.shape == tuple(pairs[k][0].weight.shape):
            out[order] = k
    return out


def load_onnx_weights(model: nn.Module, onnx_path: Path, example_inputs: tuple | None = None) -> None:
    """The weights of ``onnx_path`` into ``model``: by name, and folded convolution + BatchNorm pairs as the
    module docstring says (``example_inputs`` for the marker export; default the network's own)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    found = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    own = model.state_dict()
    loaded = {k: torch.from_numpy(np.array(found[k])) for k, v in own.items()
              if k in found and tuple(found[k].shape) == tuple(v.shape)}
    pairs = _conv_bn_pairs(model)
    names = {id(m): name for name, m in model.named_modules()}
    folded = [p for p in pairs if f"{names[id(p[0])]}.weight" not in loaded]
    inputs = example_inputs or _example_inputs(model)
    if folded:
        orders = _marker_map(model, inputs, pairs)
        shipped = _conv_tensors(proto)
        for order, k in orders.items():
            if order >= len(shipped):
                continue
            conv, bn = pairs[k]
            weight, bias = shipped[order]
            if weight not in found or tuple(found[weight].shape) != tuple(conv.weight.shape):
                continue
            prefix, bn_prefix = names[id(conv)], names[id(bn)]
            folded_weight = torch.from_numpy(np.array(found[weight]))
            scale = _channel_scale(folded_weight)
            loaded[f"{prefix}.weight"] = folded_weight / scale.view(-1, *[1] * (folded_weight.dim() - 1))
            if conv.bias is not None:
                loaded[f"{prefix}.bias"] = torch.zeros_like(conv.bias)
            shift = found.get(bias) if bias else None
            loaded[f"{bn_prefix}.weight"] = scale
            loaded[f"{bn_prefix}.bias"] = (torch.from_numpy(np.array(shift)) if shift is not None
                                          else torch.zeros_like(bn.bias))
            loaded[f"{bn_prefix}.running_mean"] = torch.zeros_like(bn.running_mean)
            loaded[f"{bn_prefix}.running_var"] = torch.full_like(bn.running_var, 1.0 - bn.eps)
    for key in own:
        if key.endswith("num_batches_tracked") and key not in loaded:
            loaded[key] = own[key]
    bad = [k for k in own if k not in loaded]
    if bad:
        raise SpineError(f"The parent model '{Path(onnx_path).name}' does not match the adaptation network "
                         f"({len(bad)} of {len(own)} tensors not found, e.g. '{bad[0]}'); it cannot be adapted by "
                         "this version.")
    model.load_state_dict(loaded)
    _check_parity(model, onnx_path, inputs)


def _channel_scale(weight: torch.Tensor) -> torch.Tensor:
    """Per output channel, the folded weight's RMS over the He initialisation's (sqrt(2 / fan-in)): the
    convolution keeps weights of the size it was trained with and the BatchNorm's scale carries the rest,
    so optimizer steps are as large, relative to the weights, as in the original training (folded
    weights can be ten times smaller, and a fixed Adam step would then move them ten times as far)."""
    flat = weight.reshape(weight.shape[0], -1)
    rms = flat.pow(2).mean(dim=1).sqrt()
    he = float(np.sqrt(2.0 / flat.shape[1]))
    return torch.where(rms > 0, rms / he, torch.ones_like(rms))


def _example_inputs(model: nn.Module) -> tuple:
    from training.nets.base import ExportableNet2D

    two_d = isinstance(getattr(model, "a", model), ExportableNet2D)
    return model.example_inputs((64, 64) if two_d else (32, 32, 32))


def _check_parity(model: nn.Module, onnx_path: Path, inputs: tuple, limit: float = 1e-3) -> None:
    """The loaded network must compute what the ONNX file computes (a wrong match is refused)."""
    from training.export import parity_error

    was_training = model.training
    error = parity_error(model, onnx_path, inputs)
    model.train(was_training)
    if not error <= limit:
        raise SpineError(f"The parent model '{Path(onnx_path).name}' loaded into the adaptation network does not "
                         f"compute what the file computes (largest difference {error:.2g}); it cannot be adapted by "
                         "this version.")


def freeze_batch_norm(model: nn.Module) -> None:
    """BatchNorm layers to eval mode (running statistics kept; their scale and shift still train)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
