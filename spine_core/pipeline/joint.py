"""M3 inference: one joint network gives the vertebra mask and per-level heatmaps; instances and levels
come from them (the "m3" pipeline, after the M1 localizer's crop).

- Sliding windows along the crop with Gaussian weights; window starts on multiples of the heatmap
  stride so every window's 1/4-resolution heatmap lands on one shared grid.
- Mask: sigmoid > threshold, inside the localizer's spine grown by a margin. Each mask voxel votes for the level whose channel is largest at its
  heatmap cell (the network's softmax over levels, which its instance Dice loss trains).
- Centroids: per level, the mean of its votes; levels holding too little bone are ignored and
  centroids closer than ``merge_fraction`` x the typical level spacing are one vertebra split
  between two levels, merged. Each mask voxel then takes the nearest centroid (the paper's rule),
  fragments go to the vertebra they touch.
- Levels: each instance's mean level probabilities through the same sequence logic as M2 (one
  consecutive numbering, L6 / T13 only with evidence, gaps flagged).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from spine_core.pipeline.api import JOINT_ID
from spine_core.pipeline.labeling import keep_at_most_levels
from spine_core.pipeline.localize import sigmoid
from spine_core.pipeline.preprocess import box_grid, model_input, resample_image
from spine_core.pipeline.sequence import SequenceOptions, assign_levels
from spine_core.pipeline.sliding import gaussian_importance, window_starts
from spine_core.pipeline.stages import Context, Levels, SpineNotFound, Stage
from spine_core.pipeline.vertebra_seg import drop_small, instances_from_owner, remove_fragments
from spine_core.progress import NullProgress, Progress
from spine_core.volume import Volume

STRIDE = 4      # heatmaps are at 1/4 of the input resolution


@dataclass(frozen=True)
class JointOptions:
    overlap: float = 0.5
    threshold: float = 0.5
    min_level_ml: float = 1.0          # a level needs this much voting bone to become a vertebra
    merge_fraction: float = 0.5        # centroids closer than this x the median spacing are merged
    min_size_fraction: float = 0.25    # as M2: smaller inner instances are leftovers
    gate_margin_mm: float = 8.0        # bone further than this from the localizer's spine is not vertebra
    centres: str = "votes"             # "votes": mean of a level's votes; "peaks": its heatmap peak
    sequence: SequenceOptions = SequenceOptions()


def joint_windows(image: np.ndarray, run, patch, overlap: float = 0.5,
                  progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(seg logit (*spatial), heatmap logits (C, *spatial // 4)) over ``image`` (*spatial), windowed.

    ``run(x)`` maps a (1, 1, *patch) window to (seg (1, 1, *patch), heat (1, C, *patch // 4))."""
    progress = progress or NullProgress()
    patch = np.asarray(patch, int)
    if np.any(patch % STRIDE):
        raise ValueError(f"the joint model's patch {tuple(patch)} is not a multiple of {STRIDE}")
    spatial = np.asarray(image.shape)
    # pad to at least a patch and to the stride, so the 1/4 grids of all windows coincide
    padded = np.maximum(spatial, patch)
    padded = (np.ceil(padded / STRIDE) * STRIDE).astype(int)
    image = np.pad(image, [(0, p - s) for s, p in zip(spatial, padded)], constant_values=0.0)
    quarter_patch = patch // STRIDE
    w_full, w_quarter = gaussian_importance(patch), gaussian_importance(quarter_patch)
    starts = list(product(*[[(s // STRIDE) * STRIDE for s in window_starts(n, p, overlap)]
                            for n, p in zip(padded, patch)]))
    seg = np.zeros(padded, np.float32)
    seg_w = np.zeros(padded, np.float32)
    heat = heat_w = None
    for n, start in enumerate(starts):
        progress.update(n / len(starts), f"window {n + 1} of {len(starts)}")
        full = tuple(slice(s, s + p) for s, p in zip(start, patch))
        quarter = tuple(slice(s // STRIDE, s // STRIDE + q) for s, q in zip(start, quarter_patch))
        s_out, h_out = run(image[full][None, None])
        if heat is None:
            heat = np.zeros((h_out.shape[1], *(padded // STRIDE)), np.float32)
            heat_w = np.zeros(padded // STRIDE, np.float32)
        seg[full] += s_out[0, 0] * w_full
        seg_w[full] += w_full
        heat[(slice(None), *quarter)] += h_out[0] * w_quarter
        heat_w[quarter] += w_quarter
    seg /= seg_w
    heat /= heat_w
    seg = seg[tuple(slice(0, s) for s in spatial)]
    heat = heat[(slice(None), *[slice(0, int(np.ceil(s / STRIDE))) for s in spatial])]
    return np.ascontiguousarray(seg), np.ascontiguousarray(heat)


def level_probabilities(heat_logits: np.ndarray) -> np.ndarray:
    """Softmax over the level channels, per heatmap cell."""
    e = np.exp(heat_logits - heat_logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _merge_close(centres: list[np.ndarray], weights: list[float], spacing_mm: np.ndarray,
                 fraction: float) -> tuple[list[np.ndarray], list[float]]:
    """Merge the closest pair of centroids while it is nearer than ``fraction`` x the median distance
    between cranio-caudal neighbours (a vertebra whose votes split between two levels)."""
    centres, weights = list(centres), list(weights)
    while len(centres) >= 3:
        pts = np.array(centres) * spacing_mm
        order = np.argsort(-pts[:, 2])
        gaps = np.linalg.norm(np.diff(pts[order], axis=0), axis=1)
        i = int(np.argmin(gaps))
        if gaps[i] >= fraction * float(np.median(gaps)):
            break
        a, b = int(order[i]), int(order[i + 1])
        wa, wb = weights[a], weights[b]
        centres[a] = (centres[a] * wa + centres[b] * wb) / (wa + wb)
        weights[a] = wa + wb
        del centres[b], weights[b]
    return centres, weights


def spine_gate(ctx: Context, grid, margin_mm: float) -> np.ndarray | None:
    """The localizer's spine mask, grown by ``margin_mm``, on ``grid``: ribs, pelvis and sternum the
    joint network calls bone stay out of the vertebrae."""
    loc = ctx.localizer
    if loc is None:
        return None
    steps = max(int(np.ceil(margin_mm / float(np.min(loc.grid.spacing)))), 0)
    grown = ndimage.binary_dilation(loc.mask, iterations=steps) if steps else loc.mask
    return resample_image(Volume(grown.astype(np.float32), loc.grid.affine), grid, fill=0.0) > 0.5


def instances_from_votes(prob: np.ndarray, level_probs: np.ndarray, spacing_mm, options: JointOptions,
                         gate: np.ndarray | None = None, heat_logits: np.ndarray | None = None) -> np.ndarray:
    """Owner array (0 = background, 1..n) from the mask and the per-cell level probabilities; with
    ``heat_logits`` each level's centre is its heatmap peak inside its votes, else their mean."""
    fg = prob > options.threshold
    if gate is not None:
        fg &= gate
    idx = np.argwhere(fg)
    owner = np.zeros(prob.shape, np.int16)
    if len(idx) == 0:
        return owner
    cells = np.minimum(idx // STRIDE, np.array(level_probs.shape[1:]) - 1)
    votes = level_probs[(slice(None), *cells.T)].argmax(axis=0)
    min_voxels = options.min_level_ml * 1000.0 / float(np.prod(spacing_mm))
    centres, weights = [], []
    for level in np.unique(votes):
        mine = idx[votes == level]
        if len(mine) < min_voxels:
            continue
        centre = mine.mean(axis=0)
        if heat_logits is not None:
            # the level's heatmap peak among the cells its votes fill (KL-trained to sit on the centroid)
            cells_of = np.unique(np.minimum(mine // STRIDE, np.array(level_probs.shape[1:]) - 1), axis=0)
            best = cells_of[np.argmax(heat_logits[(level, *cells_of.T)])]
            centre = (best + 0.5) * STRIDE - 0.5
        centres.append(centre)
        weights.append(float(len(mine)))
    if not centres:
        return owner
    centres, _ = _merge_close(centres, weights, np.asarray(spacing_mm, float), options.merge_fraction)
    _, nearest = cKDTree(np.array(centres) * spacing_mm).query(idx * spacing_mm)
    owner[tuple(idx.T)] = nearest + 1
    remove_fragments(owner, {n + 1: c for n, c in enumerate(centres)})
    drop_small(owner, options.min_size_fraction)
    return owner


def instance_level_probabilities(owner: np.ndarray, count: int, level_probs: np.ndarray) -> np.ndarray:
    """(count, levels): the mean level probability over each instance's voxels."""
    idx = np.argwhere(owner > 0)
    cells = np.minimum(idx // STRIDE, np.array(level_probs.shape[1:]) - 1)
    per_voxel = level_probs[(slice(None), *cells.T)].T                 # (voxels, levels)
    which = owner[tuple(idx.T)].astype(int) - 1
    sums = np.zeros((count, level_probs.shape[0]))
    np.add.at(sums, which, per_voxel)
    return sums / np.maximum(np.bincount(which, minlength=count), 1)[:, None]


class JointStage(Stage):
    name = "joint"
    weight = 4.0
    model_ids = (JOINT_ID,)

    def __init__(self, options: JointOptions | None = None) -> None:
        self.options = options or JointOptions()

    def preprocess(self, ctx: Context, progress):
        card = ctx.models.get(JOINT_ID).card
        grid = box_grid(*ctx.box_mm, card.input_spacing_mm)
        return grid, model_input(ctx.volume, grid, card.intensity_window)

    def predict(self, ctx: Context, inputs, progress):
        grid, image = inputs
        model = ctx.models.get(JOINT_ID)
        name = model.card.inputs[0] if model.card.inputs else "image"

        def run(window):
            seg, heat = model.run({name: window})[:2]
            return seg, heat

        overlap = min(self.options.overlap, 0.25) if ctx.options.fast else self.options.overlap
        seg, heat = joint_windows(image, run, model.card.patch_size, overlap, progress)
        return grid, sigmoid(seg), heat

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        grid, prob, heat = outputs
        level_probs = level_probabilities(heat)
        gate = spine_gate(ctx, grid, self.options.gate_margin_mm)
        peaks = heat if self.options.centres == "peaks" else None
        owner = instances_from_votes(prob, level_probs, grid.spacing, self.options, gate, peaks)
        if not owner.any():
            raise SpineNotFound("No vertebra could be segmented in this scan. Check that the series shows "
                                "the spine, or try another series.")
        ctx.instances = instances_from_owner(grid, owner, prob)
        ctx.centres_mm = ctx.instances.centres_mm
        probs = instance_level_probabilities(ctx.instances.owner, len(ctx.instances.centres_mm), level_probs)
        probs = keep_at_most_levels(ctx, probs)
        label_ids = list(ctx.models.get(JOINT_ID).card.label_ids)
        result = assign_levels(probs, label_ids, ctx.instances.centres_mm, self.options.sequence)
        ctx.levels = Levels(result.ids, result.probability, result.flags)
