"""Stage 1 (M1): the binary spine localizer on the whole scan at its coarse spacing (~3 mm) ->
spine mask -> largest components -> crop box for the fine stages."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from spine_core.pipeline.api import LOCALIZER_ID
from spine_core.pipeline.instance_ops import sigmoid
from spine_core.pipeline.preprocess import canonical_grid, scan_bounds_mm
from spine_core.pipeline.sliding import run_whole, sliding_window
from spine_core.pipeline.stages import Context, ModelStage, SpineNotFound
from spine_core.volume import Volume


@dataclass(frozen=True)
class LocalizeOptions:
    threshold: float = 0.5
    overlap: float = 0.5
    margin_mm: float = 15.0             # around the spine: context for the fine stages
    keep_fraction: float = 0.1          # components below this x the largest are noise
    min_spine_ml: float = 3.0           # less bone-like mask than this: no spine in the scan
    whole_max_voxels: int = 0           # run the net on the whole volume up to this size (fast mode)


@dataclass
class SpineLocation:
    grid: Volume                        # LPS-aligned, at the localizer's spacing
    probability: np.ndarray             # float32 on ``grid``
    mask: np.ndarray                    # bool: kept spine components


def keep_large_components(mask: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Components of at least ``keep_fraction`` x the largest (26-connected); the spine can be
    split by a fracture, a metal artefact or a disc, so not only the single largest."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if count == 0:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= keep_fraction * sizes.max()) + 1
    return np.isin(labels, keep)


def spine_box(location: SpineLocation, volume: Volume, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The LPS box around the kept spine + margin, limited to the scan."""
    idx = np.argwhere(location.mask)
    lps = location.grid.index_to_lps(np.stack([idx.min(axis=0), idx.max(axis=0)]))
    lo_scan, hi_scan = scan_bounds_mm(volume)
    lo = np.maximum(lps.min(axis=0) - margin_mm, lo_scan)
    hi = np.minimum(lps.max(axis=0) + margin_mm, hi_scan)
    return lo, hi


class LocalizeStage(ModelStage):
    name = "localize"
    weight = 2.0
    model_id = LOCALIZER_ID

    def __init__(self, options: LocalizeOptions | None = None) -> None:
        self.options = options or LocalizeOptions()

    def grid(self, ctx: Context, spacing_mm) -> Volume:
        return canonical_grid(ctx.volume, spacing_mm)      # the whole scan: the spine is not found yet

    def predict(self, ctx: Context, inputs, progress):
        grid, image = inputs
        model = ctx.models.get(LOCALIZER_ID)
        name = model.card.inputs[0] if model.card.inputs else "image"

        def predict(batch):
            return model.run({name: batch})[0]

        opts = self.options
        if ctx.options.fast and not opts.whole_max_voxels:
            # fast: one pass over the whole coarse volume instead of ~8x overlapping windows
            opts = replace(opts, whole_max_voxels=4_000_000)
        if image.size <= opts.whole_max_voxels:
            logits = run_whole(image[None], predict)
        else:
            logits = sliding_window(image[None], predict, model.card.patch_size, opts.overlap, progress)
        return grid, sigmoid(logits[0])

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        grid, probability = outputs
        mask = keep_large_components(probability > self.options.threshold, self.options.keep_fraction)
        voxel_ml = float(np.prod(grid.spacing)) / 1000.0
        if mask.sum() * voxel_ml < self.options.min_spine_ml:
            raise SpineNotFound("No spine was found in this scan (the localizer found no vertebrae). "
                                "Check that the series covers the spine and is a CT, or choose another series.")
        ctx.localizer = SpineLocation(grid, probability, mask)
        ctx.box_mm = spine_box(ctx.localizer, ctx.volume, self.options.margin_mm)
