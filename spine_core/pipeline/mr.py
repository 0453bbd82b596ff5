"""MR analysis: vertebral bodies and discs on sagittal slices (M5 network), numbered from the sacrum up.

The network (training/nets/mr_scar.py) reads three adjacent sagittal slices of the scan's MR grid
(spine_core.pipeline.mr_input) and gives body and disc probabilities per slice. Bodies and discs
become 3D components; discs cut the bodies apart where the body mask bridges them. Levels are
counted from the bottom: a disc below the lowest body is L5/S1, so that body is L5 and the rest
follow upwards; a disc is named after the body above it (100 + its id). Without that disc the
count is still made from the lowest body as L5, and the result says the numbering is not anchored.
"""
from __future__ import annotations

import time

import numpy as np
from scipy import ndimage

from spine_core.labels import label_names
from spine_core.pipeline.api import SegmentOptions, SegmentResult
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.mr_input import mr_input, slice_stack
from spine_core.pipeline.output import result_rows, to_input_grid
from spine_core.progress import NullProgress, Progress
from spine_core.volume import LabelMap, Volume

MR_MODEL = "mr-spine-seg"
L5, DISC = 24, 100
MIN_BODY_ML, MIN_DISC_ML = 1.5, 0.2
# Slices per network call: bounded memory on a 0.5 mm 512 x 512 reconstruction.
BATCH = 8
NOT_ANCHORED = ("numbering not anchored: no L5/S1 disc below the lowest body, which was taken as L5; "
                "check the levels against the sacrum")


def probabilities(image: np.ndarray, model, progress: Progress) -> np.ndarray:
    """Body and disc probabilities (2, L, P, S) of the normalised MR grid ``image`` (L, P, S)."""
    n, p, s = image.shape
    pad = [(0, (-p) % 8), (0, (-s) % 8)]              # three poolings: sizes divisible by 8
    out = np.zeros((2, n, p, s), np.float32)
    for start in range(0, n, BATCH):
        stop = min(n, start + BATCH)
        batch = np.stack([np.pad(slice_stack(image, i), [(0, 0), *pad]) for i in range(start, stop)])
        seg = model.run({"image": batch})[0][:, :, :p, :s]
        out[:, start:stop] = np.moveaxis(1.0 / (1.0 + np.exp(-seg)), 1, 0)
        progress.update(stop / n, f"MR slices {stop}/{n}")
    return out


def _components(mask: np.ndarray, min_voxels: float) -> tuple[np.ndarray, int]:
    labelled, n = ndimage.label(mask)
    if n == 0:
        return labelled, 0
    sizes = ndimage.sum_labels(np.ones_like(labelled), labelled, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, np.int32)
    kept = np.flatnonzero(sizes >= min_voxels)
    keep[kept + 1] = np.arange(1, len(kept) + 1)
    return keep[labelled], len(kept)


def _superior(labelled: np.ndarray, n: int) -> np.ndarray:
    """The S coordinate (array axis 2 of the LPS grid, growing upwards) of each component's centroid."""
    if n == 0:
        return np.zeros(0)
    return np.array([c[2] for c in ndimage.center_of_mass(np.ones_like(labelled), labelled, range(1, n + 1))])


def number_levels(body_s: np.ndarray, disc_s: np.ndarray) -> tuple[list[int], list[int], bool]:
    """VerSe ids of the bodies and discs (given their S coordinates, any order) and whether the count
    is anchored on an L5/S1 disc."""
    body_order = np.argsort(body_s)                   # lowest first
    anchored = bool(len(disc_s) and len(body_s) and disc_s.min() < body_s.min())
    body_ids = np.zeros(len(body_s), int)
    for rank, index in enumerate(body_order):
        body_ids[index] = L5 - rank
    disc_ids = []
    for s in disc_s:
        above = [(b, vid) for b, vid in zip(body_s, body_ids) if b > s]
        below = [(b, vid) for b, vid in zip(body_s, body_ids) if b < s]
        if above:                                     # named after the nearest body above
            disc_ids.append(DISC + int(min(above)[1]))
        elif below:                                   # above the top body: named after the level above it
            disc_ids.append(DISC + int(max(below)[1]) - 1)
        else:
            disc_ids.append(DISC + L5)
    return [int(i) for i in body_ids], disc_ids, anchored


def segment_mr(volume: Volume, options: SegmentOptions | None = None, progress: Progress | None = None,
               models: ModelSet | None = None) -> SegmentResult:
    options, progress = options or SegmentOptions(), progress or NullProgress()
    models = models or ModelSet(options.models_dir, options.device)
    started = time.perf_counter()
    model = models.get(MR_MODEL)
    image, grid = mr_input(volume)
    timings = {"preprocess": round(time.perf_counter() - started, 3)}
    began = time.perf_counter()
    prob = probabilities(image, model, progress)
    timings["network"] = round(time.perf_counter() - began, 3)
    began = time.perf_counter()
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    disc_mask = (prob[1] > 0.5) & (prob[1] >= prob[0])
    body_mask = (prob[0] > 0.5) & ~disc_mask
    bodies, n_bodies = _components(body_mask, MIN_BODY_ML / voxel_ml)
    discs, n_discs = _components(disc_mask, MIN_DISC_ML / voxel_ml)
    body_ids, disc_ids, anchored = number_levels(_superior(bodies, n_bodies), _superior(discs, n_discs))
    lut_b = np.array([0, *body_ids], np.int16)
    lut_d = np.array([0, *disc_ids], np.int16)
    ids = np.where(bodies > 0, lut_b[bodies], lut_d[discs]).astype(np.int16)
    confidence = {}
    for lut, comps, channel in ((lut_b, bodies, 0), (lut_d, discs, 1)):
        for k in range(1, len(lut)):
            confidence[int(lut[k])] = float(prob[channel][comps == k].mean())
    array = to_input_grid(ids, grid, volume)
    present = sorted(int(i) for i in np.unique(array) if i)
    labels = LabelMap(array, volume.affine, volume.metadata, names=label_names(present))
    warnings = list(volume.metadata.warnings)
    if present and not anchored:
        warnings.append(NOT_ANCHORED)
    timings["output"] = round(time.perf_counter() - began, 3)
    timings["total"] = round(time.perf_counter() - started, 3)
    progress.update(1.0, f"{len(body_ids)} bodies, {len(disc_ids)} discs")
    return SegmentResult(labels=labels, vertebrae=result_rows(labels, confidence, {}), timings_s=timings,
                         provider=models.provider, warnings=warnings)
