"""Stage 4 (M2): vertebra labeling. Each vertebra's binary mask (bounding box + 2 voxels, resized as
``training.tasks_m2.vertebra_masks`` does) -> the labeler over the cranio-caudal sequence -> class
probabilities -> positional logic (``sequence.assign_levels``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.labels import CRANIOCAUDAL
from spine_core.pipeline.api import LABELER_ID
from spine_core.pipeline.instance_ops import keep_at_most_levels
from spine_core.pipeline.preprocess import box_grid
from spine_core.pipeline.sizes import instance_sizes
from spine_core.pipeline.sequence import SequenceOptions, assign_levels
from spine_core.pipeline.stages import Context, Instances, Levels, Stage
from spine_core.resample import resample_to_grid
from spine_core.review import UNIDENTIFIED
from spine_core.volume import LabelMap



@dataclass(frozen=True)
class LabelOptions:
    margin_vox: int = 2          # around each mask's bounding box, as in training
    max_sequence: int = 12       # training shows the labeler runs of at most 12 vertebrae
    sequence: SequenceOptions = SequenceOptions()


def resize_linear(array: np.ndarray, size) -> np.ndarray:
    """Trilinear resize with torch's ``align_corners=False`` sampling (what training used)."""
    coords = []
    for n_in, n_out in zip(array.shape, size):
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        coords.append(np.maximum(x, 0.0))
    grid = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(array.astype(np.float32), grid, order=1, mode="nearest")


def vertebra_mask_inputs(owner: np.ndarray, count: int, size, margin: int) -> np.ndarray:
    """(count, 1, *size) binary float32 masks, vertebra n = owner value n + 1."""
    boxes = ndimage.find_objects(owner, max_label=count)
    out = np.zeros((count, 1, *size), np.float32)
    for n, box in enumerate(boxes):
        if box is None:
            continue
        lo = [max(s.start - margin, 0) for s in box]
        hi = [min(s.stop + margin, d) for s, d in zip(box, owner.shape)]
        part = (owner[tuple(slice(a, b) for a, b in zip(lo, hi))] == n + 1).astype(np.float32)
        out[n, 0] = resize_linear(part, size) > 0.5
    return out


def windowed_probabilities(run, masks: np.ndarray, max_len: int) -> np.ndarray:
    """Class probabilities per vertebra, averaged over overlapping runs of <= ``max_len``."""
    n = len(masks)
    length = min(n, max_len)
    starts = sorted(set(list(range(0, n - length + 1, max(length // 2, 1))) + [n - length]))
    total, count = None, np.zeros(n)
    for s in starts:
        logits = np.asarray(run(masks[s:s + length][None]), np.float64)[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        total = np.zeros((n, probs.shape[1])) if total is None else total
        total[s:s + length] += probs
        count[s:s + length] += 1
    return total / count[:, None]


def placeholder_levels(instances: Instances) -> Levels:
    """Without a labeler (localizer-components): consecutive ids from C1 down, each flagged unidentified."""
    n = len(instances.centres_mm)
    return Levels(list(CRANIOCAUDAL[:n]), [0.0] * n, [(UNIDENTIFIED,)] * n)


class LabelStage(Stage):
    name = "label"
    weight = 0.5
    model_ids = (LABELER_ID,)

    def __init__(self, options: LabelOptions | None = None, required: bool = True) -> None:
        self.options = options or LabelOptions()
        self.required = required
        self.model_ids = (LABELER_ID,) if required else ()

    def preprocess(self, ctx: Context, progress):
        inst = ctx.instances
        if not ctx.models.has(LABELER_ID):
            return None
        card = ctx.models.get(LABELER_ID).card
        owner, grid = inst.owner, inst.grid
        if not np.allclose(grid.spacing, card.input_spacing_mm):
            target = box_grid(*ctx.box_mm, card.input_spacing_mm)
            owner = resample_to_grid(LabelMap(owner, grid.affine, names={1: "v"}), target).array
        return vertebra_mask_inputs(owner, len(inst.centres_mm), card.patch_size, self.options.margin_vox)

    def predict(self, ctx: Context, masks, progress):
        if masks is None:
            return None
        model = ctx.models.get(LABELER_ID)
        name = model.card.inputs[0] if model.card.inputs else "masks"
        return windowed_probabilities(lambda x: model.run({name: x})[0], masks, self.options.max_sequence)

    def postprocess(self, ctx: Context, probs, progress) -> None:
        if probs is None:
            ctx.warn("the vertebra labeler is not installed: levels are placeholders (C1 down)")
            ctx.levels = placeholder_levels(ctx.instances)
            return
        label_ids = list(ctx.models.get(LABELER_ID).card.label_ids)
        probs = keep_at_most_levels(ctx, probs)
        result = assign_levels(probs, label_ids, ctx.instances.centres_mm, self.options.sequence,
                               instance_sizes(ctx))
        ctx.levels = Levels(result.ids, result.probability, result.flags)


