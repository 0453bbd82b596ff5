"""Sliding-window inference with Gaussian importance weights: out = sum(P * W) / sum(W) (M1, nnU-Net).

Windows overlap by ``overlap`` (0.5: each voxel away from the border is seen by up to 8 windows);
a window's centre counts more than its edges, where the network lacks context. A volume no larger
than one patch runs once, padded to the patch.
"""
from __future__ import annotations

from itertools import product
from typing import Callable

import numpy as np

from spine_core.progress import NullProgress, Progress

Predict = Callable[[np.ndarray], np.ndarray]   # (1, C, *patch) float32 -> (1, K, *patch)


def gaussian_importance(patch, sigma_scale: float = 0.125) -> np.ndarray:
    """Separable Gaussian, 1 at the patch centre; never 0, so every voxel gets some weight."""
    weight = np.ones((), np.float32)
    for n in patch:
        x = np.arange(n, dtype=np.float32) - (n - 1) / 2.0
        g = np.exp(-0.5 * (x / max(sigma_scale * n, 1e-3)) ** 2).astype(np.float32)
        weight = np.multiply.outer(weight, g)
    weight /= weight.max()
    return np.maximum(weight, 1e-3).astype(np.float32)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Evenly spread starts covering [0, size) with at least ``overlap`` between neighbours."""
    if size <= patch:
        return [0]
    step = max(int(patch * (1.0 - overlap)), 1)
    count = int(np.ceil((size - patch) / step)) + 1
    return sorted({int(round(s)) for s in np.linspace(0, size - patch, count)})


def sliding_window(image: np.ndarray, predict: Predict, patch, overlap: float = 0.5,
                   progress: Progress | None = None, pad_value: float = 0.0) -> np.ndarray:
    """``predict`` over ``image`` (C, *spatial) in windows of ``patch``; returns (K, *spatial) float32.

    Axes shorter than the patch are padded with ``pad_value`` (air after windowing) and cropped back.
    """
    progress = progress or NullProgress()
    spatial = image.shape[1:]
    patch = tuple(int(p) for p in patch)
    padded_shape = tuple(max(s, p) for s, p in zip(spatial, patch))
    if padded_shape != spatial:
        pads = [(0, 0)] + [(0, p - s) for s, p in zip(spatial, padded_shape)]
        image = np.pad(image, pads, constant_values=pad_value)
    weight = gaussian_importance(patch)
    starts = list(product(*[window_starts(s, p, overlap) for s, p in zip(padded_shape, patch)]))
    out = wsum = None
    for n, start in enumerate(starts):
        progress.update(n / len(starts), f"window {n + 1} of {len(starts)}")
        region = tuple(slice(s, s + p) for s, p in zip(start, patch))
        pred = np.asarray(predict(image[(slice(None), *region)][None]), np.float32)[0]
        if out is None:
            out = np.zeros((pred.shape[0], *padded_shape), np.float32)
            wsum = np.zeros(padded_shape, np.float32)
        out[(slice(None), *region)] += pred * weight
        wsum[region] += weight
    out /= wsum
    return np.ascontiguousarray(out[(slice(None), *[slice(0, s) for s in spatial])])


def run_whole(image: np.ndarray, predict: Predict, divisor: int = 8, pad_value: float = 0.0) -> np.ndarray:
    """``predict`` on the whole image at once, padded up to a multiple of ``divisor`` (the network's
    total down-sampling) and cropped back: the fast path for small coarse volumes."""
    spatial = image.shape[1:]
    target = tuple(int(np.ceil(s / divisor) * divisor) for s in spatial)
    pads = [(0, 0)] + [(0, t - s) for s, t in zip(spatial, target)]
    pred = np.asarray(predict(np.pad(image, pads, constant_values=pad_value)[None]), np.float32)[0]
    return np.ascontiguousarray(pred[(slice(None), *[slice(0, s) for s in spatial])])
