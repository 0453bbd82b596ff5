"""M4 (SSHSNet style) inference: body and disc probabilities from two networks (training/nets/mr_sshs.py).

Stage 1 ('mr-sshs-2d') reads every sagittal slice with its two neighbours, as M5 does, and gives coarse
body / disc logits and its decoder features (1/4 of the slice size). Stage 2 ('mr-sshs-3d') reads
windows of the card's patch size over the whole MR grid: [image, stage-1 probabilities] and the
stage-1 features of the same slices, averaged where windows overlap with Gaussian weights (a window's
centre counts more). M4 has no key-point branch: the key-point channels are 0, so the shared MR
post-processing (spine_core.pipeline.mr) splits touching bodies at their cores.
"""
from __future__ import annotations

from itertools import product

import numpy as np
from scipy import ndimage

from spine_core.pipeline.instance_ops import sigmoid
from spine_core.pipeline.mr_input import slice_stack
from spine_core.pipeline.sliding import gaussian_importance, window_starts
from spine_core.progress import Progress, SubProgress

# Stage 1 halves the slice, then pools up to 4 times: slice sizes padded to a multiple of 32.
DIVISOR = 32
BATCH = 8          # slices per stage-1 call
# Stage-2 windows overlap by a quarter: against a half, 2.2-2.6x fewer windows, body and disc Dice within
# 0.003 and the same levels on VB3_18, IVD_20 and VB2_05 (docs/BENCHMARKS.md, "M4 speed").
OVERLAP = 0.25
WINDOW_BATCH = 4      # stage-2 windows per network call (the same labels as one at a time, ~10 % faster)
NOTHING_BELOW = 0.1   # stage-1 probability under which a window holds no body or disc to refine
# Stage 2 runs only over the spinal column: the bodies stage 1 finds (its largest find, and every other
# at least as large as a small cervical body: on a curved lumbar spine the bodies are apart), this far
# around them front to back and left to right (discs lie between the bodies; a body stage 1 half-missed
# lies in line).
COLUMN_MARGIN_MM = 24.0
COLUMN_PIECE_ML = 4.0


def stage1_outputs(image: np.ndarray, model, progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 body and disc probabilities (2, L, P, S) and features (F, L, P / r, S / r) of ``image``
    (L, P, S, in-plane sizes divisible by ``DIVISOR``)."""
    n = image.shape[0]
    probs, features = np.zeros((2, *image.shape), np.float32), None
    for start in range(0, n, BATCH):
        stop = min(n, start + BATCH)
        seg, feats = model.run({"image": np.stack([slice_stack(image, i) for i in range(start, stop)])})[:2]
        probs[:, start:stop] = np.moveaxis(sigmoid(seg), 1, 0)
        if features is None:
            features = np.zeros((feats.shape[1], n, *feats.shape[2:]), np.float32)
        features[:, start:stop] = np.moveaxis(feats, 1, 0)
        progress.update(stop / n, f"MR slices {stop}/{n} (2D)")
    return probs, features


def _windows(shape, patch, ratio: int) -> list[tuple[int, ...]]:
    """Window starts covering ``shape``; in-plane starts on multiples of ``ratio`` (the feature grid)."""
    axes = [window_starts(shape[0], patch[0], OVERLAP)]
    for size, p in zip(shape[1:], patch[1:]):
        axes.append(sorted({ratio * round(s / ratio) for s in window_starts(size, p, OVERLAP)}))
    return list(product(*axes))


def stage2_probabilities(volume: np.ndarray, features: np.ndarray, model, progress: Progress) -> np.ndarray:
    """Stage-2 body and disc probabilities (2, L, P, S) of ``volume`` = [image, stage-1 probabilities]
    (3, L, P, S), in windows of the model card's patch size. Stage 2 refines what stage 1 found: a
    window where stage 1 gives no body or disc anywhere (all under ``NOTHING_BELOW``) keeps stage 1's
    probabilities, and is not run (most of a lumbar MR's field of view is gut, fat and muscle)."""
    spatial = volume.shape[1:]
    ratio = spatial[1] // features.shape[2]
    d, h, w = (int(s) for s in model.card.patch_size[-3:])
    patch = (d, max(ratio, h - h % ratio), max(ratio, w - w % ratio))
    padded = tuple(max(s, p) for s, p in zip(spatial, patch))
    volume = np.pad(volume, [(0, 0)] + [(0, p - s) for s, p in zip(spatial, padded)])
    features = np.pad(features, [(0, 0), (0, padded[0] - spatial[0])] +
                      [(0, p // ratio - f) for p, f in zip(padded[1:], features.shape[2:])])
    weight = gaussian_importance(patch)
    out, wsum = np.zeros((2, *padded), np.float32), np.zeros(padded, np.float32)
    starts = _windows(padded, patch, ratio)
    pending = []

    def run_pending() -> None:
        logits = model.run({"image": np.stack([volume[(slice(None), *r)] for r, _ in pending]),
                            "features2d": np.stack([features[(slice(None), *f)] for _, f in pending])})[0]
        for (region, _), window in zip(pending, logits):
            out[(slice(None), *region)] += sigmoid(window) * weight
        pending.clear()

    for k, (z, y, x) in enumerate(starts):
        region = (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))
        small = (slice(z, z + patch[0]), slice(y // ratio, (y + patch[1]) // ratio),
                 slice(x // ratio, (x + patch[2]) // ratio))
        coarse = volume[(slice(1, 3), *region)]
        if coarse.max() < NOTHING_BELOW:
            out[(slice(None), *region)] += coarse * weight
        else:
            pending.append((region, small))
            if len(pending) == WINDOW_BATCH:
                run_pending()
        wsum[region] += weight
        progress.update((k + 1) / len(starts), f"MR window {k + 1}/{len(starts)} (3D)")
    if pending:
        run_pending()
    return out[(slice(None), *[slice(0, s) for s in spatial])] / wsum[tuple(slice(0, s) for s in spatial)]


def column_box(body: np.ndarray, margins: tuple[int, int], ratio: int, piece_voxels: int = 0) -> tuple[slice, slice]:
    """The L and P extent of the spinal column in stage 1's body probabilities (L, P, S): its finds
    above one half, the largest and every one of at least ``piece_voxels``, widened by ``margins``
    voxels (L, P); P on multiples of ``ratio`` (the feature grid). The whole grid where stage 1 finds
    no body."""
    labels, n = ndimage.label(body > 0.5)
    if n == 0:
        return slice(0, body.shape[0]), slice(0, body.shape[1])
    sizes = np.bincount(labels.ravel())[1:]
    pieces = [box for box, size in zip(ndimage.find_objects(labels), sizes)
              if size >= min(piece_voxels, sizes.max())]
    lo = [min(box[a].start for box in pieces) - margins[a] for a in (0, 1)]
    hi = [max(box[a].stop for box in pieces) + margins[a] for a in (0, 1)]
    p0 = max(0, lo[1] // ratio * ratio)
    p1 = min(body.shape[1], -(-hi[1] // ratio) * ratio)
    return slice(max(0, lo[0]), min(body.shape[0], hi[0])), slice(p0, p1)


def sshs_probabilities(image: np.ndarray, stage1, stage2, progress: Progress,
                       spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Body and disc probabilities and (empty) body- and disc-centre likelihoods (4, L, P, S) of the
    normalised MR grid ``image`` (L, P, S; voxel ``spacing`` in mm), as
    ``spine_core.pipeline.mr.probabilities`` gives them. Outside the spinal column (``column_box``)
    nothing is found."""
    n, p, s = image.shape
    padded = np.pad(image, [(0, 0), (0, (-p) % DIVISOR), (0, (-s) % DIVISOR)])
    coarse, features = stage1_outputs(padded, stage1, SubProgress(progress, 0.0, 0.3))
    ratio = padded.shape[1] // features.shape[2]
    margins = tuple(int(np.ceil(COLUMN_MARGIN_MM / spacing[a])) for a in (0, 1))
    piece = int(COLUMN_PIECE_ML * 1000.0 / float(np.prod(spacing)))
    along_l, along_p = column_box(coarse[0], margins, ratio, piece)
    volume = np.concatenate([padded[None], coarse], axis=0)[:, along_l, along_p]
    fine = stage2_probabilities(volume, features[:, along_l, along_p.start // ratio:along_p.stop // ratio],
                                stage2, SubProgress(progress, 0.3, 1.0))
    out = np.zeros((4, n, padded.shape[1], s), np.float32)
    out[:2, along_l, along_p] = fine[:, :, :, :s]
    return out[:, :, :p]
