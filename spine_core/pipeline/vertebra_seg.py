"""Stage 3 (M2): one ROI per detected centre, inputs [CT, centre-weight map] exactly as training builds
them; sigmoid > 0.5 pasted back into one owner array (a voxel claimed twice goes to the higher
probability); fragments removed; centres recomputed from the masks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.pipeline.api import VERTEBRA_SEG_ID
from spine_core.pipeline.instance_ops import drop_small, instances_from_owner, remove_fragments, sigmoid
from spine_core.pipeline.preprocess import centre_weight_map, crop
from spine_core.pipeline.stages import Context, ModelStage

DEFAULT_WEIGHT_SIGMA_VOX = 12.0   # training/configs/vertebra_seg.json task.weight_sigma_vox


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


def paste(state: _Paste, prob: np.ndarray, origin: np.ndarray, label: int, options: VertebraSegOptions,
          centre_index: np.ndarray) -> int:
    """Claim voxels of ``prob`` above threshold and above what they hold; returns the label used.
    A second detection of an already segmented vertebra (its centre inside that mask, most of the new
    mask overlapping it) adds to that vertebra; a centre between two vertebrae (a disc) does not."""
    shape = state.owner.shape
    src = tuple(slice(max(o, 0), min(o + s, n)) for o, s, n in zip(origin, prob.shape, shape))
    if any(s.stop <= s.start for s in src):
        return label
    dst = tuple(slice(s.start - o, s.stop - o) for s, o in zip(src, origin))
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
