"""From the pipeline's LPS-aligned working grid back to the scan: labels on the input grid (same shape
and affine), per-vertebra centroid, volume, confidence and flags."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from spine_core.labels import is_disc, label_names
from spine_core.pipeline.api import SegmentResult, VertebraResult
from spine_core.pipeline.preprocess import index_box, crop_volume
from spine_core.pipeline.stages import Context
from spine_core.resample import resample_to_grid
from spine_core.review import (AT_EDGE, LOW_CONFIDENCE, LOW_CONFIDENCE_BELOW, counted_through, craniocaudal_key,
                               ids_on_border, out_of_order)
from spine_core.volume import LabelMap, Volume

# A vertebra whose centre lies the wrong way round against the one named next to it contradicts its
# own name, however sure each network was: its number is shown as more likely wrong than right.
CONTRADICTED_CAP = 0.3
# Levels are a count along the chain (from the last rib, the sacrum or the labeler's sequence): where two
# of its vertebrae cross, one mask holds the wrong part of the column, so every name counted through
# them is unproven, however sure the anchor. Each other vertebra is shown below the review flag too; so is
# every level of a chain with no anchor in view (pipeline.ribs).
UNPROVEN_COUNT_CAP = 0.45


def to_input_grid(ids: np.ndarray, grid: Volume, volume: Volume) -> np.ndarray:
    """``ids`` (on ``grid``) on the scan's own grid, nearest neighbour through LPS. Only the part of
    the scan that ``grid`` covers is resampled; the rest is background."""
    out = np.zeros(volume.shape, np.int16)
    box = index_box(volume, grid)
    if box is None:
        return out
    target = crop_volume(Volume(np.broadcast_to(np.uint8(0), volume.shape), volume.affine), box)
    source = LabelMap(ids.astype(np.int16, copy=False), grid.affine, names={1: "vertebra"})
    out[box] = resample_to_grid(source, target, labels=True, fill=0).array
    return out


def result_rows(labels: LabelMap, confidences: dict[int, float], flags: dict[int, tuple]) -> list[VertebraResult]:
    ids = labels.ids()
    if not ids:
        return []
    box = ndimage.find_objects(labels.array)
    touching = ids_on_border(labels.array)
    voxel_mm3 = float(abs(np.linalg.det(labels.affine[:3, :3])))
    parts = {vid: labels.array[box[vid - 1]] == vid for vid in ids}
    centroids = {vid: labels.index_to_lps(np.argwhere(parts[vid]).mean(axis=0)
                                          + np.array([s.start for s in box[vid - 1]], float)) for vid in ids}
    vertebrae = sorted((v for v in ids if not is_disc(v)), key=craniocaudal_key)
    crossed = out_of_order(vertebrae, [centroids[v][2] for v in vertebrae])
    unproven = counted_through(ids, crossed)
    rows = []
    for vid in ids:
        part, centroid = parts[vid], centroids[vid]
        conf = float(confidences.get(vid, 0.0))
        if vid in crossed:
            conf = min(conf, CONTRADICTED_CAP)
        elif vid in unproven:
            conf = min(conf, UNPROVEN_COUNT_CAP)
        extra = ((LOW_CONFIDENCE,) if conf < LOW_CONFIDENCE_BELOW else ()) + ((AT_EDGE,) if vid in touching else ())
        rows.append(VertebraResult(id=vid, name=labels.names.get(vid, str(vid)), position=centroid,
                                   confidence=round(conf, 4), volume_mm3=float(part.sum()) * voxel_mm3,
                                   flags=tuple(flags.get(vid, ())) + extra))
    return sorted(rows, key=lambda r: -r.position[2])


def finalize(ctx: Context) -> SegmentResult:
    inst, levels = ctx.instances, ctx.levels
    lut = np.zeros(len(inst.centres_mm) + 1, np.int16)
    lut[1:] = levels.ids
    array = to_input_grid(lut[inst.owner], inst.grid, ctx.volume)
    labels = LabelMap(array, ctx.volume.affine, ctx.volume.metadata, names=label_names(levels.ids))
    confidences = {vid: p * float(s) for vid, p, s in zip(levels.ids, levels.probability, inst.seg_probability)}
    flags = dict(zip(levels.ids, levels.flags))
    vertebrae = result_rows(labels, confidences, flags)
    lost = sorted(set(levels.ids) - {v.id for v in vertebrae})
    if lost:
        ctx.warn(f"{len(lost)} vertebra(e) vanished when mapped onto the scan's grid (too small)")
    return SegmentResult(labels=labels, vertebrae=vertebrae, timings_s=dict(ctx.timings),
                         provider=ctx.models.provider, warnings=list(ctx.warnings))
