"""M3 inference: one joint network gives the vertebra mask and per-level heatmaps; instances and levels
come from them (the "joint" pipeline, after the M1 localizer's crop).

- Sliding windows along the crop with Gaussian weights; window starts on multiples of the heatmap
  stride so every window's 1/4-resolution heatmap lands on one shared grid.
- Mask: sigmoid > threshold, inside the localizer's spine grown by a margin. Each mask voxel votes for the level whose channel is largest at its
  heatmap cell (the network's softmax over levels, which its instance Dice loss trains).
- Centres: per level, the mean of its votes (or its heatmap peak); levels holding too little bone
  are ignored; by non-maximum suppression in order of voting volume, a centre closer than
  ``merge_fraction`` x the typical spacing at its level to a kept one is the same vertebra. Each mask voxel then takes the nearest centroid (the paper's rule),
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
from spine_core.pipeline.instance_ops import (drop_small, instances_from_owner, keep_at_most_levels,
                                              remove_fragments, sigmoid)
from spine_core.pipeline.preprocess import resample_image
from spine_core.pipeline.sizes import instance_sizes
from spine_core.pipeline.sequence import SequenceOptions, assign_levels
from spine_core.pipeline.sliding import gaussian_importance, window_starts
from spine_core.pipeline.stages import Context, Levels, ModelStage, SpineNotFound
from spine_core.progress import NullProgress, Progress
from spine_core.volume import Volume

STRIDE = 4      # heatmaps are at 1/4 of the input resolution
LATERAL_WEIGHT = 0.25   # L-R and A-P distances count a quarter in suppression (M2 clustering does too)


@dataclass(frozen=True)
class JointOptions:
    overlap: float = 0.5
    threshold: float = 0.5
    min_level_ml: float = 2.0          # a level needs this much voting bone to become a vertebra
    merge_fraction: float = 0.6        # level centres closer than this x the typical spacing are one vertebra
    min_size_fraction: float = 0.25    # as M2: smaller inner instances are leftovers
    gate_margin_mm: float = 8.0        # bone further than this from the localizer's spine is not vertebra
    centres: str = "peaks"             # "peaks": the level heatmap peak inside its votes (M3); "votes": their mean
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


# Typical centre-to-centre distance to the next vertebra, mm (adult CT; the phantoms' dimension
# table is calibrated on VerSe). Two level centres much closer than this are one vertebra.
_SPACING_MM = [(2, 14.0), (7, 16.0), (11, 20.0), (16, 23.0), (19, 27.0), (26, 34.0), (28, 27.0)]


def expected_spacing_mm(vid: int) -> float:
    return next(mm for last, mm in _SPACING_MM if vid <= last)


def suppress_close(centres: list[np.ndarray], weights: list[float], ids: list[int], spacing_mm: np.ndarray,
                   fraction: float) -> list[np.ndarray]:
    """Non-maximum suppression: levels in order of their voting volume; a centre closer than
    ``fraction`` x its level's typical spacing to one already kept is the same vertebra, whose votes
    split between levels (the network unsure of the number, not of the bone)."""
    kept: list[np.ndarray] = []
    # distances mostly along S: one level's votes may sit on the body, another's on the arch behind it
    scale = np.asarray(spacing_mm, float) * np.array([LATERAL_WEIGHT, LATERAL_WEIGHT, 1.0])
    for n in np.argsort(-np.asarray(weights)):
        limit = fraction * expected_spacing_mm(ids[n])
        if all(np.linalg.norm((centres[n] - k) * scale) >= limit for k in kept):
            kept.append(centres[n])
    return kept


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
                         gate: np.ndarray | None = None, heat_logits: np.ndarray | None = None,
                         level_ids: list[int] | None = None) -> np.ndarray:
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
    centres, weights, levels = [], [], []
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
        levels.append(int(level_ids[level]) if level_ids is not None else int(level) + 1)
    if not centres:
        return owner
    centres = suppress_close(centres, weights, levels, np.asarray(spacing_mm, float), options.merge_fraction)
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


class JointStage(ModelStage):
    name = "joint"
    weight = 4.0
    model_id = JOINT_ID

    def __init__(self, options: JointOptions | None = None) -> None:
        self.options = options or JointOptions()

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
        label_ids = list(ctx.models.get(JOINT_ID).card.label_ids)
        owner = instances_from_votes(prob, level_probs, grid.spacing, self.options, gate, peaks, label_ids)
        if not owner.any():
            raise SpineNotFound("No vertebra could be segmented in this scan. Check that the series shows "
                                "the spine, or try another series.")
        ctx.instances = instances_from_owner(grid, owner, prob)
        ctx.centres_mm = ctx.instances.centres_mm
        probs = instance_level_probabilities(ctx.instances.owner, len(ctx.instances.centres_mm), level_probs)
        probs = keep_at_most_levels(ctx, probs)
        result = assign_levels(probs, label_ids, ctx.instances.centres_mm, self.options.sequence,
                               instance_sizes(ctx))
        ctx.levels = Levels(result.ids, result.probability, result.flags)
