"""The analysis pipelines' stages, the input checks, and ``segment`` itself (names, descriptions and
the old aliases: ``spine_core.pipeline.registry``).

- "per-vertebra" (alias "default"): M1 localize -> M2 detect -> M2 per-vertebra segmentation -> M2
  labeling, then the anatomy stages (off-spine filter, rib anchor, bone refinement).
- "joint" (alias "m3"): M1 localize -> M3 joint segmentation + identification network (one model,
  both tasks), then the anatomy stages.
- "localizer-components" (alias "m1-only"): the localizer's binary mask split into connected
  components (for comparison); levels
  from the labeler when it is installed, placeholders otherwise.
- An MR scan goes to the MR method ``SegmentOptions.pipeline`` names ("mr-scar", the default, or
  "mr-sshs"; spine_core.pipeline.registry.MR_PIPELINES), run by ``spine_core.pipeline.mr``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from spine_core.errors import UnsupportedImage
from spine_core.io.content import MIN_STRUCTURE, scan_modality, structure
from spine_core.pipeline.api import SegmentOptions, SegmentResult
from spine_core.pipeline.bone_refine import BoneRefineStage
from spine_core.pipeline.detect import DetectStage
from spine_core.pipeline.labeling import LabelStage
from spine_core.pipeline.localize import LocalizeStage
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.off_spine import OffSpineStage
from spine_core.pipeline.registry import is_mr, mr_method, resolve
from spine_core.pipeline.ribs import RibAnchorStage
from spine_core.pipeline.output import finalize
from spine_core.pipeline.preprocess import box_grid, resample_image
from spine_core.pipeline.stages import Context, Stage
from spine_core.pipeline.instance_ops import instances_from_owner
from spine_core.progress import NullProgress, Progress, SubProgress
from spine_core.volume import Volume

log = logging.getLogger(__name__)

MIN_EXTENT_MM, MIN_VOXELS = 32.0, 16
MIN_SPACING_MM, MAX_SPACING_MM = 0.2, 6.0


class ComponentsStage(Stage):
    """M1 only: the localizer's probability, resampled linearly to ``spacing_mm`` inside the crop,
    thresholded and split into 6-connected components (vertebrae separated by their discs)."""
    name = "components"
    weight = 1.0

    def __init__(self, spacing_mm: float = 1.0, min_ml: float = 1.0) -> None:
        self.spacing_mm, self.min_ml = spacing_mm, min_ml

    def preprocess(self, ctx: Context, progress):
        loc = ctx.localizer
        grid = box_grid(*ctx.box_mm, self.spacing_mm)
        source = Volume(loc.probability * loc.mask, loc.grid.affine)
        return grid, resample_image(source, grid, fill=0.0)

    def predict(self, ctx: Context, inputs, progress):
        grid, probability = inputs
        owner, count = ndimage.label(probability > 0.5)
        sizes = np.bincount(owner.ravel())
        small = sizes * float(np.prod(grid.spacing)) / 1000.0 < self.min_ml
        small[0] = True
        owner[small[owner]] = 0
        return grid, owner.astype(np.int16), probability

    def postprocess(self, ctx: Context, outputs, progress) -> None:
        grid, owner, probability = outputs
        ctx.instances = instances_from_owner(grid, owner, probability)


def per_vertebra_stages() -> list[Stage]:
    from spine_core.pipeline.vertebra_seg import DiscPartitionStage, GapFillStage, VertebraSegStage

    # the off-spine filter again after gap filling: a vertebra added past the chain's end is judged too
    return [LocalizeStage(), DetectStage(), VertebraSegStage(), OffSpineStage(), GapFillStage(), OffSpineStage(),
            DiscPartitionStage(), LabelStage(), RibAnchorStage(), BoneRefineStage()]


def localizer_component_stages() -> list[Stage]:
    return [LocalizeStage(), ComponentsStage(), OffSpineStage(), LabelStage(required=False), RibAnchorStage(),
            BoneRefineStage()]


def joint_stages() -> list[Stage]:
    from spine_core.pipeline.joint import JointStage

    return [LocalizeStage(), JointStage(), OffSpineStage(), RibAnchorStage(), BoneRefineStage()]


# the stages of each pipeline in spine_core.pipeline.registry (names and descriptions live there)
PIPELINES: dict[str, Callable[[], list[Stage]]] = {"per-vertebra": per_vertebra_stages, "joint": joint_stages,
                                                   "localizer-components": localizer_component_stages}


def check_input(volume: Volume) -> None:
    """Refuse scans whose geometry the models cannot read, with a message that says what to do."""
    spacing, extent = volume.spacing, volume.physical_extent_mm()
    if np.any(spacing > MAX_SPACING_MM) or np.any(spacing < MIN_SPACING_MM):
        sp = " x ".join(f"{s:.3g}" for s in spacing)
        raise UnsupportedImage(f"The voxel spacing {sp} mm is outside what SpinePlan analyses "
                               f"({MIN_SPACING_MM}-{MAX_SPACING_MM} mm). Use a reconstruction with "
                               "ordinary spacing (e.g. 0.5-3 mm).")
    if min(volume.shape) < MIN_VOXELS or np.any(extent < MIN_EXTENT_MM):
        size = " x ".join(f"{e:.0f}" for e in extent)
        raise UnsupportedImage(f"The scan is too small to analyse ({size} mm, {' x '.join(map(str, volume.shape))} "
                               f"voxels); it needs at least {MIN_EXTENT_MM:.0f} mm and {MIN_VOXELS} voxels "
                               "in every direction. Choose the full series.")


def check_structure(volume: Volume) -> None:
    """Refuse an image without structure (noise, blank, scrambled) before any model runs."""
    if structure(volume) < MIN_STRUCTURE:
        raise UnsupportedImage("The image holds no anatomy: neighbouring voxels are unrelated, as in noise or "
                               "a blank or scrambled image. Check the file; choose another series.")


@dataclass
class _Plan:
    stages: list[Stage]
    weights: np.ndarray


def _plan(options: SegmentOptions) -> _Plan:
    if is_mr(options.pipeline):
        raise UnsupportedImage(f"The pipeline '{options.pipeline}' analyses MR scans and this scan is not an MR. "
                               f"Choose a CT pipeline ({', '.join(PIPELINES)}), or an MR series.")
    stages = PIPELINES[resolve(options.pipeline)]()
    weights = np.array([s.weight for s in stages], float)
    return _Plan(stages, np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]))


def _segment_mr(volume, options, progress, models, notes) -> SegmentResult:
    from spine_core.pipeline.mr import segment_mr

    method = mr_method(options.pipeline, options.mr_method)
    missing = [m for m in method.models if not models.has(m)]
    if missing:
        what = " and ".join(f"'{m}'" for m in missing)
        raise UnsupportedImage(f"This is an MR scan. MR analysis needs the model{'s' * (len(missing) > 1)} {what}, "
                               f"which {'are' if len(missing) > 1 else 'is'} not installed, and the CT analysis "
                               "cannot read an MR. Choose a CT series, or install a SpinePlan release with the "
                               f"MR model{'s' * (len(method.models) > 1)} (MR method '{method.name}').")
    models.require(*method.models)
    check_structure(volume)
    result = segment_mr(volume, options, progress, models)
    result.warnings = [*notes, *result.warnings]
    result.models = models.records(list(method.models))
    result.pipeline = method.name
    log.info("segmented %d MR structures in %.1f s (%s)", len(result.vertebrae), result.timings_s["total"],
             result.provider)
    return result


def required_models(options: SegmentOptions, optional: bool = False) -> list[str]:
    """The model ids the pipeline of ``options`` needs (a batch worker loads them once, up front); with
    ``optional`` also those it runs only where installed and the scan calls for them."""
    if is_mr(options.pipeline):
        return list(mr_method(options.pipeline, options.mr_method).models)
    stages = _plan(options).stages
    ids = [m for s in stages for m in s.model_ids] + [m for s in stages for m in s.optional_model_ids if optional]
    return list(dict.fromkeys(ids))


def segment(volume: Volume, options: SegmentOptions | None = None, progress: Progress | None = None,
            models: ModelSet | None = None) -> SegmentResult:
    """Vertebra labels on ``volume``'s own grid, with per-vertebra centroid, confidence and flags."""
    options, progress = options or SegmentOptions(), progress or NullProgress()
    check_input(volume)
    modality, notes = scan_modality(volume, options.modality)
    models = models or ModelSet(options.models_dir, options.device)
    if modality == "MR":
        return _segment_mr(volume, options, progress, models, notes)
    plan = _plan(options)
    models.require(*[m for s in plan.stages for m in s.model_ids])
    check_structure(volume)
    ctx = Context(volume, options, models)
    ctx.warnings.extend([*volume.metadata.warnings, *notes])
    started = time.perf_counter()
    for n, stage in enumerate(plan.stages):
        stage.run(ctx, SubProgress(progress, 0.95 * plan.weights[n], 0.95 * plan.weights[n + 1]))
    began = time.perf_counter()
    result = finalize(ctx)
    result.timings_s["output"] = round(time.perf_counter() - began, 3)
    result.timings_s["total"] = round(time.perf_counter() - started, 3)
    # each stage's models as it ran them (the detector is chosen by the scan's slices)
    result.models = models.records(list(dict.fromkeys(m for s in plan.stages for m in s.model_ids)))
    result.pipeline = resolve(options.pipeline)
    progress.update(1.0, f"{len(result.vertebrae)} vertebrae")
    log.info("segmented %d vertebrae in %.1f s (%s)", len(result.vertebrae), result.timings_s["total"],
             result.provider)
    return result
