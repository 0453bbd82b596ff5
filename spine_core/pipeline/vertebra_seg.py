"""Stage 3 (M2): one ROI per detected centre, inputs [CT, centre-weight map] exactly as training builds
them; sigmoid > 0.5 pasted back into one owner array (a voxel claimed twice goes to the higher
probability); fragments removed; centres recomputed from the masks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.pipeline.api import VERTEBRA_SEG_ID
from spine_core.pipeline.discs import missed_between_discs, partition_at_discs
from spine_core.pipeline.instance_ops import (drop_small, instances_from_owner, remove_fragments, sigmoid,
                                              voxel_probability)
from spine_core.pipeline.preprocess import centre_weight_map, crop
from spine_core.pipeline.sequence import local_spacing, missed_gaps
from spine_core.pipeline.stages import Context, Instances, ModelStage

DEFAULT_WEIGHT_SIGMA_VOX = 12.0
DUPLICATE_MM = 10.0               # two gap proposals closer than this are one vertebra   # training/configs/vertebra_seg.json task.weight_sigma_vox


@dataclass(frozen=True)
class VertebraSegOptions:
    threshold: float = 0.5
    duplicate_overlap: float = 0.5    # a new mask covering this share of an earlier one is the same vertebra
    weight_sigma_vox: float | None = None   # None: from the model card, else the training default
    min_size_fraction: float = 0.25   # smaller instances (not at the border) are false detections


@dataclass
class _Paste:
    """Running state of the paste-back: owner ids, their probability, raw mask sizes."""
    owner: np.ndarray
    best: np.ndarray
    sizes: dict[int, int]
    centres: dict[int, np.ndarray]        # voxel index of each label's first detected centre


def weight_sigma(card, override: float | None) -> float:
    if override:
        return float(override)
    task = card.training.get("task", {}) if isinstance(card.training, dict) else {}
    for source in (task, card.training, card.metrics):
        value = source.get("weight_sigma_vox") if isinstance(source, dict) else None
        if value:
            return float(value)
    return DEFAULT_WEIGHT_SIGMA_VOX


def roi_input(image: np.ndarray, centre_index: np.ndarray, patch, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(1, 2, *patch) input and its origin: the ROI starts at round(centre) - patch // 2 and the weight
    map peaks at the (unrounded) centre, as ``VertebraSegTask`` builds them."""
    size = np.asarray(patch, int)
    origin = np.round(centre_index).astype(int) - size // 2
    ct = crop(image, origin, size, fill=0)
    weight = centre_weight_map(size, centre_index - origin, sigma)
    return np.stack([ct, weight])[None].astype(np.float32), origin


def _owner_at(owner: np.ndarray, index: np.ndarray) -> int:
    i = np.round(index).astype(int)
    return int(owner[tuple(i)]) if np.all(i >= 0) and np.all(i < owner.shape) else 0


def roi_slices(origin: np.ndarray, size, shape) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """(the grid's slices an ROI at ``origin`` of ``size`` covers, the same voxels' slices in the ROI);
    None when it lies outside the grid."""
    grid = tuple(slice(max(o, 0), min(o + s, n)) for o, s, n in zip(origin, size, shape))
    if any(g.stop <= g.start for g in grid):
        return None
    return grid, tuple(slice(g.start - o, g.stop - o) for g, o in zip(grid, origin))


def paste(state: _Paste, prob: np.ndarray, origin: np.ndarray, label: int, options: VertebraSegOptions,
          centre_index: np.ndarray) -> int:
    """Claim voxels of ``prob`` above threshold and above what they hold; returns the label used.
    A second detection of an already segmented vertebra (its centre inside that mask, most of the new
    mask overlapping it) adds to that vertebra; a centre between two vertebrae (a disc) does not."""
    slices = roi_slices(origin, prob.shape, state.owner.shape)
    if slices is None:
        return label
    src, dst = slices
    p = prob[dst]
    mask = p > options.threshold
    size = int(mask.sum())
    other = _owner_at(state.owner, centre_index)
    # the same vertebra twice: each centre lies in the other's mask (a disc centre lies in neither)
    if size and other and _owner_at(mask, state.centres[other] - origin):
        overlap = int((state.owner[src][mask] == other).sum())
        if overlap >= options.duplicate_overlap * min(size, state.sizes.get(other, size)):
            label = other
    state.centres.setdefault(label, centre_index)
    claim = mask & (p > state.best[src])
    state.owner[src][claim] = label
    state.best[src][claim] = p[claim]
    state.sizes[label] = max(state.sizes.get(label, 0), size)
    return label


class VertebraSegStage(ModelStage):
    name = "segment"
    weight = 4.0
    model_id = VERTEBRA_SEG_ID

    def __init__(self, options: VertebraSegOptions | None = None) -> None:
        self.options = options or VertebraSegOptions()

    def predict(self, ctx: Context, inputs, progress):
        grid, image = inputs
        model = ctx.models.get(VERTEBRA_SEG_ID)
        name = model.card.inputs[0] if model.card.inputs else "image"
        sigma = weight_sigma(model.card, self.options.weight_sigma_vox)
        state = _Paste(np.zeros(grid.shape, np.int16), np.zeros(grid.shape, np.float32), {}, {})
        centres = ctx.centres_mm
        for n, centre in enumerate(centres):
            progress.update(n / len(centres), f"vertebra {n + 1} of {len(centres)}")
            index = grid.lps_to_index(centre)
            feed, origin = roi_input(image, index, model.card.patch_size, sigma)
            prob = sigmoid(model.run({name: feed})[0][0, 0])
            paste(state, prob, origin, n + 1, self.options, index)
        return grid, state, state.centres

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        grid, state, centres_index = outputs
        remove_fragments(state.owner, centres_index)
        drop_small(state.owner, self.options.min_size_fraction)
        ctx.instances = instances_from_owner(grid, state.owner, state.best)
        dropped = len(ctx.centres_mm) - len(ctx.instances.centres_mm)
        if dropped > 0:
            ctx.warn(f"{dropped} detected centre(s) gave no separate vertebra (duplicates or empty masks)")


def gap_centres(centres: np.ndarray, factor: float, max_missing: int = 2) -> np.ndarray:
    """Centres (k, 3) to try, evenly spaced, inside each gap of the chain ``centres`` (LPS mm, cranial
    first) that the numbering flags (``sequence.missed_gaps``). A gap of more than ``max_missing``
    vertebrae is a broken chain (a false candidate, a skipped region), not a missed vertebra, and is
    left alone."""
    if len(centres) < 3:
        return np.zeros((0, 3))
    dist, step = local_spacing(centres)
    added = []
    for i in np.flatnonzero(missed_gaps(centres, factor)[1:]):
        missing = int(round(dist[i] / step[i])) - 1
        if missing <= max_missing:
            added += [centres[i] + (centres[i + 1] - centres[i]) * k / (missing + 1) for k in range(1, missing + 1)]
    return np.reshape(added, (-1, 3))


def on_spine(location, centres: np.ndarray, reach_mm: float = 6.0) -> np.ndarray:
    """Whether each centre lies within ``reach_mm`` of the localizer's kept spine mask."""
    if location is None or not len(centres):
        return np.ones(len(centres), bool)
    index = np.round(location.grid.lps_to_index(centres)).astype(int).reshape(-1, 3)
    r = np.ceil(reach_mm / np.asarray(location.grid.spacing)).astype(int)
    out = []
    for i in index:
        lo, hi = np.maximum(i - r, 0), np.minimum(i + r + 1, location.mask.shape)
        out.append(bool(np.all(hi > lo) and location.mask[tuple(slice(a, b) for a, b in zip(lo, hi))].any()))
    return np.array(out, bool)


def end_centres(centres: np.ndarray, location, reach_mm: float = 40.0, min_ml: float = 3.0) -> np.ndarray:
    """Past each end of the chain ``centres`` (LPS mm, cranial first): the centroid of the localizer's
    spine in the axial slab one local spacing further along z, within ``reach_mm`` (axial plane) of
    the end vertebra (so it follows the column, not the last step's direction, which a stray end
    candidate can turn sideways); none where the spine mask there holds less than ``min_ml`` (the spine
    ends, or the scan does)."""
    c = np.asarray(centres, float)
    if len(c) < 3 or location is None:
        return np.zeros((0, 3))
    idx = np.argwhere(location.mask)
    if not len(idx):
        return np.zeros((0, 3))
    points = location.grid.index_to_lps(idx)
    voxel_ml = float(np.prod(location.grid.spacing)) / 1000.0
    out = []
    for end, inner, inner2, sign in ((c[0], c[1], c[2], 1.0), (c[-1], c[-2], c[-3], -1.0)):
        dz = float(np.median(np.abs([end[2] - inner[2], inner[2] - inner2[2]])))
        target = end[2] + sign * dz
        near = points[(np.abs(points[:, 2] - target) <= 0.3 * dz)
                      & (np.linalg.norm(points[:, :2] - end[:2], axis=1) <= reach_mm)]
        if dz > 0 and len(near) * voxel_ml >= min_ml:
            out.append(near.mean(axis=0))
    return np.reshape(out, (-1, 3))


def hounsfield(ctx: Context, image: np.ndarray) -> np.ndarray:
    """The segmentation network's input (its intensity window scaled to 0-1) back in HU, clipped to
    the window: what the disc readings need, without resampling the scan again."""
    lo, hi = ctx.models.get(VERTEBRA_SEG_ID).card.intensity_window
    return image * (hi - lo) + lo


class GapFillStage(VertebraSegStage):
    """Vertebrae are contiguous: where two kept vertebrae lie more than ``gap_factor`` x the local spacing
    apart, the detector missed what lies between. The segmentation network is run at evenly spaced
    centres there, after the off-spine filter (so gaps are measured along the real column), and takes
    only voxels no vertebra holds; what it finds smaller than ``min_size_fraction`` x the others'
    median is not kept. A regular spacing can hide a miss (every other vertebra found), so it also
    runs where two discs in the column's bone hold no found vertebra (``pipeline.discs``); there a
    neighbour's mask has usually spilled over the disc into the missed body, and the new mask takes
    the voxels where it is the surer of the two. And the detector can stop short of the column's
    ends (cptac_abdomen, ricord_chest), so it runs one spacing past each end where the localizer's
    spine goes on (``end_centres``), a vertebra further each round, up to ``rounds``; a place tried
    once is not tried again. The off-spine filter runs again after this stage."""
    name = "gap-fill"
    weight = 1.0

    def __init__(self, options: VertebraSegOptions | None = None, gap_factor: float = 1.6, rounds: int = 8) -> None:
        super().__init__(options)
        self.gap_factor = gap_factor      # as spine_core.pipeline.sequence.SequenceOptions.gap_factor
        self.rounds = rounds              # each round can reach one vertebra further past each end

    def preprocess(self, ctx: Context, progress):
        grid, image = super().preprocess(ctx, progress)
        return grid, image, (hounsfield(ctx, image) if ctx.options.disc_gaps else None)

    def proposals(self, ctx: Context, inst: Instances, hu, tried: list, inside: bool) -> tuple[np.ndarray, np.ndarray]:
        """(centres to try, whether each comes from the discs), none within ``DUPLICATE_MM`` of one
        tried in an earlier round; gaps ``inside`` the chain only when asked (the first round)."""
        none = np.zeros((0, 3))
        between = missed_between_discs(inst, hu) if hu is not None and inside else none
        spacing = gap_centres(inst.centres_mm, self.gap_factor) if inside else none
        ends = end_centres(inst.centres_mm, ctx.localizer) if ctx.options.chain_ends else none
        proposals = np.concatenate([between, spacing, ends])
        from_discs = np.arange(len(proposals)) < len(between)
        keep = on_spine(ctx.localizer, proposals)
        for n, c in enumerate(proposals):
            # a spacing gap the discs already fill is one proposal, not two
            earlier = [*tried, *proposals[:n][keep[:n]]]
            if keep[n] and earlier and np.min(np.linalg.norm(np.asarray(earlier) - c, axis=1)) <= DUPLICATE_MM:
                keep[n] = False
        return proposals[keep], from_discs[keep]

    def predict(self, ctx: Context, inputs, progress):
        grid, image, hu = inputs
        inst = ctx.instances
        model = ctx.models.get(VERTEBRA_SEG_ID)
        name = model.card.inputs[0] if model.card.inputs else "image"
        sigma = weight_sigma(model.card, self.options.weight_sigma_vox)
        best = voxel_probability(inst)
        tried: list[np.ndarray] = []
        added = 0
        for round_ in range(self.rounds):
            # the gaps inside the chain are judged once, on the chain the detector gave (later rounds
            # found pieces between screws on ph-hardware); the ends are followed a vertebra per round
            proposals, from_discs = self.proposals(ctx, inst, hu, tried, inside=round_ == 0)
            if not len(proposals):
                break
            tried += list(proposals)
            state = _Paste(inst.owner.astype(np.int16, copy=True), best, {}, {})
            first = len(inst.centres_mm) + 1
            for n, centre in enumerate(proposals):
                progress.update(round_ / self.rounds, f"gap {n + 1} of {len(proposals)}")
                index = grid.lps_to_index(centre)
                feed, origin = roi_input(image, index, model.card.patch_size, sigma)
                prob = sigmoid(model.run({name: feed})[0][0, 0])
                slices = roi_slices(origin, prob.shape, state.owner.shape)
                if slices is None:
                    continue
                src, dst = slices
                # free voxels only, unless the discs show a whole body there that a neighbour's mask spilled into
                free = (state.owner[src] == 0) | ((prob[dst] > state.best[src]) & from_discs[n])
                claim = (prob[dst] > self.options.threshold) & free
                state.owner[src][claim] = first + n
                state.best[src][claim] = prob[dst][claim]
            kept = self.keep_whole(state.owner, first)
            if not kept:
                break
            added += kept
            inst, best = instances_from_owner(inst.grid, state.owner, state.best), state.best
        return inst, added

    def keep_whole(self, owner: np.ndarray, first: int) -> int:
        """Of the labels from ``first`` on, keep the largest piece of each, and only if it is at least
        ``min_size_fraction`` x the median of the others; returns how many are kept."""
        sizes = np.bincount(owner.ravel())
        existing = sizes[1:first][sizes[1:first] > 0]
        limit = self.options.min_size_fraction * float(np.median(existing)) if len(existing) else 0.0
        added = [v for v in range(first, len(sizes)) if sizes[v] > 0]
        for v in added:
            part, count = ndimage.label(owner == v)
            if count > 1:             # the largest piece only
                keep = np.argmax(np.bincount(part.ravel())[1:]) + 1
                owner[(part > 0) & (part != keep)] = 0
            if (owner == v).sum() < limit:
                owner[owner == v] = 0
        return sum(1 for v in added if (owner == v).any())

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        inst, added = outputs
        if added:
            ctx.instances = inst
            ctx.warn(f"{added} vertebra(e) segmented where the detector had left a gap in the column or "
                     "stopped short of its end; check them")


class DiscPartitionStage(VertebraSegStage):
    """Vertebrae are separated by discs: where the column's bone shows them, a mask running across a
    disc is cut there, its smaller part given to the vertebra beyond the disc or made a vertebra of its
    own (``discs.partition_at_discs``). Reads the segmentation stage's model input; runs no network."""
    name = "disc-partition"
    weight = 0.3

    def preprocess(self, ctx: Context, progress):
        if not ctx.options.disc_partition or len(ctx.instances.centres_mm) < 2:
            return None
        return hounsfield(ctx, super().preprocess(ctx, progress).image)

    def predict(self, ctx: Context, hu, progress):
        return None if hu is None else partition_at_discs(ctx.instances, hu)

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        if outputs is None or not any(outputs[1:]):
            return
        owner, handed, added = outputs
        ctx.instances = instances_from_owner(ctx.instances.grid, owner, voxel_probability(ctx.instances))
        said = [f"{handed} part(s) of a mask running across a disc given to the vertebra beyond it"] if handed else []
        said += [f"{added} mask(s) holding two bodies split at the disc between them"] if added else []
        ctx.warn("Vertebrae re-divided at the discs: " + "; ".join(said) + ". Check them")
