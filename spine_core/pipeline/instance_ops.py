"""Operations on network outputs and instance owner arrays that several stages share (the stages
themselves never import each other: an import-linter independence contract)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from spine_core.pipeline.stages import Context, Instances, SpineNotFound, keep_instances
from spine_core.volume import Volume


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 probabilities of logits, without overflow for large ones (every network's output)."""
    from scipy.special import expit

    return expit(x).astype(np.float32, copy=False)


def reassign(owner: np.ndarray, freed: np.ndarray, steps: int = 6) -> None:
    """Freed voxels (fragments, dropped instances) join the instance they touch, growing at most
    ``steps`` voxels: an endplate rim cut off by a false detection goes back to its vertebra."""
    if not freed.any():
        return
    box = tuple(slice(max(s.start - steps, 0), s.stop + steps) for s in ndimage.find_objects(freed.astype(np.uint8))[0])
    part, todo = owner[box], freed[box].copy()
    for _ in range(steps):
        grown = ndimage.grey_dilation(part, size=(3, 3, 3))
        take = todo & (part == 0) & (grown > 0)
        if not take.any():
            break
        part[take] = grown[take]
        todo &= ~take


def remove_fragments(owner: np.ndarray, centres_index: dict[int, np.ndarray]) -> None:
    """Per label keep the component holding (or nearest to) its centre; the rest is reassigned."""
    freed = np.zeros(owner.shape, bool)
    boxes = ndimage.find_objects(owner)
    for label, box in enumerate(boxes, start=1):
        if box is None:
            continue
        part = owner[box] == label
        comps, count = ndimage.label(part, structure=np.ones((3, 3, 3)))
        if count <= 1:
            continue
        centre = centres_index[label] - np.array([s.start for s in box])
        idx = np.argwhere(comps > 0)
        nearest = comps[tuple(idx[np.argmin(((idx - centre) ** 2).sum(axis=1))])]
        cut = (comps > 0) & (comps != nearest)
        owner[box][cut] = 0
        freed[box] |= cut
    reassign(owner, freed)


def drop_small(owner: np.ndarray, fraction: float) -> int:
    """Remove instances under ``fraction`` x the median size that do not reach the grid's border
    (leftovers of a false detection; a vertebra cut by the scan's border may be small). Returns the
    number removed."""
    sizes = np.bincount(owner.ravel())
    labels = np.flatnonzero(sizes[1:]) + 1
    if len(labels) < 3:
        return 0
    limit = fraction * float(np.median(sizes[labels]))
    faces = [owner[0], owner[-1], owner[:, 0], owner[:, -1], owner[:, :, 0], owner[:, :, -1]]
    at_border = {int(v) for f in faces for v in np.unique(f)}
    small = [v for v in labels if sizes[v] < limit and v not in at_border]
    if small:
        freed = np.isin(owner, small)
        owner[freed] = 0
        reassign(owner, freed)
    return len(small)


def voxel_probability(inst: Instances) -> np.ndarray:
    """Each voxel's mask probability as far as ``inst`` keeps it: its vertebra's mean (0 outside)."""
    return np.where(inst.owner > 0, inst.seg_probability[np.maximum(inst.owner, 1) - 1], 0).astype(np.float32)


def instances_from_owner(grid: Volume, owner: np.ndarray, best: np.ndarray) -> Instances:
    """Relabel 1..n cranial first by the masks' own centroids (the centre is recomputed, M2)."""
    labels = [int(v) for v in np.unique(owner) if v > 0]
    if not labels:
        raise SpineNotFound("No vertebra could be segmented in this scan. Check that the series shows "
                            "the spine, or try another series.")
    centres_idx = np.array(ndimage.center_of_mass(np.ones_like(owner, np.uint8), owner, labels))
    centres_mm = grid.index_to_lps(centres_idx.reshape(-1, 3))
    mean_prob = np.array(ndimage.mean(best, owner, labels), float)
    order = np.argsort(-centres_mm[:, 2])
    lut = np.zeros(int(owner.max()) + 1, np.int16)
    lut[np.array(labels)[order]] = np.arange(1, len(labels) + 1)
    return Instances(grid, lut[owner], centres_mm[order], mean_prob[order])


def keep_at_most_levels(ctx: Context, probs: np.ndarray) -> np.ndarray:
    """More candidates than the spine has levels (rib heads, pelvis) cannot all be vertebrae: keep
    those the segmentation is surest of, drop the rest from the result and say so."""
    from spine_core.pipeline.sequence import chain
    from spine_core.labels import L6, T13

    inst = ctx.instances
    limit = len(chain((T13, L6)))
    if len(inst.centres_mm) <= limit:
        return probs
    keep = np.sort(np.argsort(-np.asarray(inst.seg_probability))[:limit])
    ctx.warn(f"{len(inst.centres_mm) - limit} candidate structures were discarded: more than the spine "
             "has levels were found; review the result")
    mask = np.zeros(len(inst.centres_mm), bool)
    mask[keep] = True
    ctx.instances = keep_instances(inst, mask)
    return probs[keep]
