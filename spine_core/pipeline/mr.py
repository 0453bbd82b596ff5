"""MR analysis: vertebral bodies and discs on sagittal slices (M5 or M4 networks), numbered from the sacrum up.

The MR method (spine_core.pipeline.registry.MR_PIPELINES) gives body and disc probabilities on the
scan's MR grid (spine_core.pipeline.mr_input): M5 (training/nets/mr_scar.py, the default) reads three
adjacent sagittal slices per slice and adds body- and disc-centre key points; M4
(spine_core.pipeline.mr_sshs) runs a 2D network, then a 3D network on its output. Bodies and discs
become 3D components along the spine's chain. Levels are counted from the bottom: a disc below the
lowest body is L5/S1, so that body is L5 and the rest follow upwards; a disc is named after the body
above it (100 + its id). Without that disc the count is still made from the lowest body as L5, and
the result says the numbering is not anchored. Counting rules past missed and merged bodies
(``CountingRules``: cut a mask along a disc it bridges; count a body the network missed inside the
column, flagged and named in the warnings; pieces of one body as one level) are each switchable;
``RULES`` holds the shipped choice, from the cross-validation. A cervical MR (its header says so,
or its bodies are too small to be lumbar) is counted down from the top body as C2, never anchored.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from typing import Mapping

import numpy as np
from scipy import ndimage

from spine_core.labels import label_name, label_names
from spine_core.pipeline.api import SegmentOptions, SegmentResult
from spine_core.pipeline.instance_ops import sigmoid
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.mr_input import mr_input, slice_stack
from spine_core.pipeline.output import result_rows, to_input_grid
from spine_core.pipeline.registry import MR_SCAR_MODEL, mr_method
from spine_core.progress import NullProgress, Progress
from spine_core.review import MISSED_ABOVE
from spine_core.volume import LabelMap, Volume

MR_MODEL = MR_SCAR_MODEL
C2, L5, DISC, SACRUM = 2, 24, 100, 26
# A caudal-most "body" this small next to the chain's others is the top of the sacrum (S1 looks like a
# body on MR; the network finds part of it, or the field of view cuts it): it is not L5.
SACRAL_TOP_FRACTION = 0.4
# S1 found whole under the L5/S1 disc is the top of a wedge, smaller than the lumbar bodies above it.
S1_FRACTION = 0.7
MIN_BODY_ML, MIN_DISC_ML = 1.5, 0.2
# Slices per network call: bounded memory on a 0.5 mm 512 x 512 reconstruction.
BATCH = 8
# Body-centre peaks at least this far apart (half a small lumbar body) and this likely seed the split.
MARKER_DISTANCE_MM, MARKER_LEVEL = 10.0, 0.3
BODY_HALF_HEIGHT_MM = 35.0     # from its seed: past this a region reaches the centre of the next body (steps 30-40 mm)
BODY_WIDTH_MM = 50.0           # peaks this far apart left-right at one height and depth: one lumbar body
CORE_LEVELS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
CUT_SACRUM = ("numbering not anchored: the lowest body, small and cut by the lower edge of the scan, was taken "
              "for the top of the sacrum; if it is a cut L5, every name is one level too low (the one labelled "
              "sacrum is L5, L5 is L4). Check the levels against the sacrum")
CERVICAL = ("numbering not anchored: this MR shows the cervical spine ({why}), so the levels were counted down "
            "from the top body as C2; check them against the dens")
NOT_ANCHORED = ("numbering not anchored: no L5/S1 disc below the lowest body, which was taken as L5; "
                "check the levels against the sacrum")
CUT_LOWEST = ("numbering not anchored: the lowest body is cut by the lower edge of the scan and was taken as L5; "
              "if it is the top of the sacrum, every name is one level too high (the one labelled L5 is S1, L4 is "
              "L5). Check the levels against the sacrum")


def count_anchor(anchored: bool, cervical: bool, body_ids) -> str:
    """What the level count rests on: the key of an MR method's ``level_trust`` (registry.MRPipeline)."""
    if anchored:
        return "sacrum"
    if cervical:
        return "cervical"
    return "cut_sacrum" if SACRUM in body_ids else "none"


def probabilities(image: np.ndarray, model, progress: Progress) -> np.ndarray:
    """Body and disc probabilities and body- and disc-centre likelihoods (4, L, P, S) of the normalised
    MR grid ``image`` (L, P, S)."""
    n, p, s = image.shape
    pad = [(0, (-p) % 8), (0, (-s) % 8)]              # three poolings: sizes divisible by 8
    out = np.zeros((4, n, p, s), np.float32)
    for start in range(0, n, BATCH):
        stop = min(n, start + BATCH)
        batch = np.stack([np.pad(slice_stack(image, i), [(0, 0), *pad]) for i in range(start, stop)])
        logits = np.concatenate(model.run({"image": batch})[:2], axis=1)[:, :, :p, :s]
        out[:, start:stop] = np.moveaxis(sigmoid(logits), 1, 0)
        progress.update(stop / n, f"MR slices {stop}/{n}")
    return out


def split_bodies(body_mask: np.ndarray, body_prob: np.ndarray, centres: np.ndarray, spacing) -> np.ndarray:
    """Bodies that touch through a missed disc, separated by a watershed of the body probability inside
    the body mask, seeded by the recognition branch's body centres (one seed per peak) or, where it
    finds none, by the cores of the bodies: the most likely voxels, at the probability level that
    leaves the most body-sized parts (a disc between two bodies is less likely body than either)."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = max(1, int(round(MARKER_DISTANCE_MM / float(min(spacing)))))
    peaks = peak_local_max(np.where(body_mask, centres, 0.0), min_distance=distance, threshold_abs=MARKER_LEVEL,
                           exclude_border=False)
    if len(peaks):
        markers = np.zeros(body_mask.shape, np.int32)
        markers[tuple(peaks.T)] = one_seed_per_body(peaks, spacing) + 1
    else:
        markers = _body_cores(body_prob, body_mask, spacing)
    if markers.max() == 0:
        return ndimage.label(body_mask)[0]
    split = watershed(-body_prob, markers, mask=body_mask)
    split = _within_a_body_height(split, markers, spacing)
    # parts of the mask without a seed stay as components of their own
    rest, _ = ndimage.label(body_mask & (split == 0))
    return np.where(rest > 0, rest + int(markers.max()), split)


def _within_a_body_height(split: np.ndarray, markers: np.ndarray, spacing) -> np.ndarray:
    """Each seed's region cut to a body's half height above and below its seed: where the body mask
    runs on through lateral slices with no disc found, the watershed carries one seed's region over
    its neighbours' heights (a 'body' 110 mm tall then falls out of the chain of bodies). What is cut
    off becomes a part of its own."""
    seeded = np.flatnonzero(markers)                  # seed voxels only: no index grid of the whole volume
    seed_k = ndimage.median(np.unravel_index(seeded, markers.shape)[2], markers.ravel()[seeded],
                            index=np.arange(1, int(markers.max()) + 1))
    reach = BODY_HALF_HEIGHT_MM / float(spacing[2])
    low = np.concatenate([[-np.inf], np.asarray(seed_k, float) - reach]).astype(np.float32)
    high = np.concatenate([[np.inf], np.asarray(seed_k, float) + reach]).astype(np.float32)
    k = np.arange(split.shape[2], dtype=np.float32)
    return np.where((k >= low[split]) & (k <= high[split]), split, 0)


def one_seed_per_body(peaks: np.ndarray, spacing) -> np.ndarray:
    """A body label for each centre peak (voxel indices L, P, S). The sagittal networks mark a body's
    centre on every slice through it, so one body can give peaks side by side, left and right: those
    at one height and depth, less than a body's width apart, are one body (split in two halves, its
    halves would fall out of the chain of bodies)."""
    from scipy.sparse.csgraph import connected_components

    mm = peaks * np.asarray(spacing, float)
    apart = np.abs(mm[:, None, :] - mm[None, :, :])
    same = (apart[..., 0] <= BODY_WIDTH_MM) & (apart[..., 1] <= MARKER_DISTANCE_MM) & \
        (apart[..., 2] <= MARKER_DISTANCE_MM)
    return connected_components(same, directed=False)[1]


def _body_cores(body_prob: np.ndarray, body_mask: np.ndarray, spacing) -> np.ndarray:
    best, best_count = np.zeros(body_mask.shape, np.int32), 0
    for level in CORE_LEVELS:
        cores, n = ndimage.label(body_mask & (body_prob > level))
        if n == 0:
            break
        _, volumes, extents = _stats(cores, n, spacing)
        sized = (volumes >= BODY_ML[0] / 2) & (extents <= BODY_EXTENT_MM)
        if sized.sum() > best_count:
            keep = np.zeros(n + 1, np.int32)
            keep[np.flatnonzero(sized) + 1] = np.arange(1, int(sized.sum()) + 1)
            best, best_count = keep[cores], int(sized.sum())
    return best


def _components(mask: np.ndarray, min_voxels: float, labelled: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Connected parts of ``mask`` (or the given ``labelled`` parts) of at least ``min_voxels``, numbered 1..n."""
    if labelled is None:
        labelled, n = ndimage.label(mask)
    else:
        n = int(labelled.max())
    if n == 0:
        return labelled, 0
    sizes = ndimage.sum_labels(np.ones_like(labelled), labelled, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, np.int32)
    kept = np.flatnonzero(sizes >= min_voxels)
    keep[kept + 1] = np.arange(1, len(kept) + 1)
    return keep[labelled], len(kept)


# A vertebral body (C3 to L5, with margin) and the spacing of neighbouring bodies along the spine.
BODY_ML = (2.0, 120.0)
BODY_EXTENT_MM = 90.0      # a lumbar body is up to ~55 mm wide; the abdominal wall or gut run longer
STEP_MM = (12.0, 55.0)          # centre to centre, cranio-caudal
GAP_STEP_MM = 2 * STEP_MM[1]    # a step over one body the network missed


@dataclass(frozen=True)
class CountingRules:
    """The post-processing rules past missed, merged and stray structures (the numbering's, and two mask
    clean-ups, enclosed_discs and filled_bodies), each on its own so each can be measured
    (benchmarks/eval_mr.py ``--rules``; docs/BENCHMARKS.md "MR numbering past missed and merged bodies")."""
    split_at_discs: bool = True   # a body mask that bridges a disc is cut along it
    gap_chain: bool = True        # the chain steps over one missed body (up to GAP_STEP_MM)
    disc_steps: bool = True       # two discs between neighbouring bodies: a missed level between them
    long_steps: bool = True       # a step over GAP_FACTOR median steps: round(step / median) levels
    same_body: bool = True        # close pieces with no disc between (discs found beside): one level
    sacrum_below_last_disc: bool = True  # discs read: the bodies below the lowest disc are S1 (and S2)
    enclosed_discs: bool = True   # a small disc find walled in by one body is part of that body
    filled_bodies: bool = True    # a hole a body walls in on two of the three slice planes is that body

    @classmethod
    def parse(cls, text: str) -> "CountingRules":
        """``"none"``, ``"all"`` or names joined by commas."""
        names = [f.name for f in fields(cls)]
        chosen = names if text == "all" else [] if text == "none" else [t.strip() for t in text.split(",") if t.strip()]
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise ValueError(f"unknown counting rule(s) {', '.join(unknown)}; known: {', '.join(names)}")
        return cls(**{name: name in chosen for name in names})

    def named(self) -> str:
        on = [f.name for f in fields(self) if getattr(self, f.name)]
        return ",".join(on) or "none"


# As shipped: all but split_at_discs and gap_chain. All six counting rules won on M5 folds 0-2 (levels
# 85.6 -> 98.5 %) and lost on fold 3, scored last (77.3 -> 27.3 %): split_at_discs cut three VB3 cases'
# bodies at disc finds inside them, gap_chain stepped past S1 on both VB2 cases. Without those two, no
# fold is worse than with no rules; 4 folds, 32 cases: levels 83.5 -> 90.3 % (docs/BENCHMARKS.md).
# filled_bodies joined by a test set down before it was scored (commit 8daa522): on the 2,400-step folds
# it lowers none of body Dice, bodies at any level, levels (0.7917 -> 0.7920, 0.8473 -> 0.8477, 90.3 %).
NO_RULES = CountingRules.parse("none")
RULES = CountingRules.parse("disc_steps,long_steps,same_body,sacrum_below_last_disc,enclosed_discs,filled_bodies")
GAP_SHIFT_FACTOR = 1.5          # over a missed body the column may drift further sideways
GAP_FACTOR = 1.6                # a step this many median steps long spans a missed body (as on CT)
DISC_GAP_FACTOR = 1.4           # two discs between two bodies mean a missed body only over a long step
# Lumbar bodies (and T11-T12) as the MR networks find them on the VB sets: 20-45 ml; C3-C7: ~4-8 ml.
LUMBAR_MIN_ML = 12.0
CERVICAL_WORDS = re.compile(r"\b(C-?SPINE|C SPINE|CERVICAL|NECK|HWS)\b")
FLAT_DISC_RATIO = 0.5          # a disc's thickness spread under half its width's
DISC_NORMAL_MIN_S = 0.7        # a disc lies across the column: its normal within ~45 degrees of S
MAX_DISC_ML = 40.0             # a lumbar disc is ~10-20 ml; a larger 'disc' is a sheet of something else
MIN_CUT_DISC_ML = 1.0          # a cervical disc is ~1.5-3 ml: a smaller find is a fragment, too weak to cut a body by
SPLIT_PART_FRACTION = 0.3      # of the median body: the least a disc may cut off a mask as a body
SAME_BODY_FACTOR = 0.6         # pieces this many median steps apart, no disc between: one body
SAME_DISC_MM = 8.0              # disc parts closer in height than a disc is thick are one disc
MAX_SHIFT_MM = (15.0, 20.0)     # left-right, antero-posterior between neighbours
DISC_OFF_CHAIN_MM = 20.0


# A disc find is a patch of the body around it when at least this share of its rim (ENCLOSED_RIM_MM
# wide) is that body and it is under ENCLOSED_MAX_ML: on M5 folds 0-2 every find with >= 0.81 of its rim
# body lay inside a reference body (0.2-1.2 ml, water-fat VB3 scans), every real disc had <= 0.76.
ENCLOSED_RIM_SHARE, ENCLOSED_RIM_MM, ENCLOSED_MAX_ML = 0.8, 2.0, 2.0


def absorb_enclosed_discs(bodies: np.ndarray, discs: np.ndarray, n_discs: int, spacing) -> tuple[np.ndarray, np.ndarray, int]:
    """Small disc finds walled in by one body given to that body: the disc channel fires on the fat
    signal in a body's centre on some scans, which would show a disc inside the body and a hole in it."""
    if n_discs == 0:
        return bodies, discs, n_discs
    spacing = np.asarray(spacing, float)
    reach = np.maximum(1, np.round(ENCLOSED_RIM_MM / spacing)).astype(int)
    footprint = np.ones(2 * reach + 1, bool)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    bodies, kept = bodies.copy(), []
    sizes = np.bincount(discs.ravel(), minlength=n_discs + 1)[1:] * voxel_ml
    for j, box in enumerate(ndimage.find_objects(discs, n_discs), start=1):
        if sizes[j - 1] >= ENCLOSED_MAX_ML:           # a real disc: no rim to look at
            kept.append(j - 1)
            continue
        grown = tuple(slice(max(b.start - r, 0), b.stop + r) for b, r in zip(box, reach))
        comp = discs[grown] == j
        rim = ndimage.binary_dilation(comp, footprint) & ~comp
        around = bodies[grown][rim]
        owner = np.bincount(around[around > 0]).argmax() if np.any(around > 0) else 0
        if owner and np.mean(around == owner) >= ENCLOSED_RIM_SHARE:
            bodies[grown][comp] = owner
        else:
            kept.append(j - 1)
    if len(kept) == n_discs:
        return bodies, discs, n_discs
    discs, n_discs = _keep(discs, n_discs, kept)
    return bodies, discs, n_discs


def _in_plane(axis: int) -> np.ndarray:
    """A 3D structuring element that connects voxels only within slices across ``axis``."""
    structure = np.zeros((3, 3, 3), bool)
    index = [slice(None)] * 3
    index[axis] = 1
    structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    return structure


_PLANES = tuple(_in_plane(axis) for axis in range(3))


def fill_body_holes(bodies: np.ndarray, n: int, discs: np.ndarray) -> np.ndarray:
    """Each body's holes filled: where the marrow's fat signal drops the body probability under 0.5 in
    its centre, a body shows a hole a surgeon would read as a lesion. A voxel is a hole when the body walls
    it in on its slices of at least two of the three planes: a notch open at the front is walled in on a
    coronal slice only, a defect open through an endplate (a Schmorl's node) on an axial slice only, and
    both stay. Only voxels of no structure are filled."""
    out = bodies.copy()
    for j, box in enumerate(ndimage.find_objects(bodies, n), start=1):
        if box is None:
            continue
        mine = bodies[box] == j
        walled = sum(ndimage.binary_fill_holes(mine, structure=structure).astype(np.uint8) for structure in _PLANES)
        free = (walled >= 2) & ~mine & (out[box] == 0) & (discs[box] == 0)
        out[box][free] = j
    return out


def split_at_discs(bodies: np.ndarray, n: int, discs: np.ndarray, n_discs: int, spacing) -> tuple[np.ndarray, int]:
    """Body components cut by the plane of each disc that runs through them: a mask that bridges a disc
    round its rim holds two bodies (counted as one level, it shifts every level above). A part under
    ``SPLIT_PART_FRACTION`` of the median body, or under a body's minimum, is not cut off."""
    if n == 0 or n_discs == 0:
        return bodies, n
    spacing = np.asarray(spacing, float)
    volumes = ndimage.sum_labels(np.ones_like(bodies), bodies, np.arange(1, n + 1)) * float(np.prod(spacing)) / 1000.0
    smallest = max(MIN_BODY_ML, SPLIT_PART_FRACTION * float(np.median(volumes)))
    bodies = bodies.copy()
    for box, j in zip(ndimage.find_objects(discs, n_discs), range(1, n_discs + 1)):
        start = np.array([b.start for b in box])
        points = (np.argwhere(discs[box] == j) + start) * spacing
        if len(points) < 10:
            continue
        centre = points.mean(axis=0)
        spread, axes = np.linalg.eigh(np.cov((points - centre).T))
        normal = axes[:, 0]                           # the disc's thinnest direction
        disc_ml = len(points) * float(np.prod(spacing)) / 1000.0
        if spread[0] > (FLAT_DISC_RATIO ** 2) * spread[1] or abs(normal[2]) < DISC_NORMAL_MIN_S or \
                not MIN_CUT_DISC_ML <= disc_ml <= MAX_DISC_ML:
            continue                                  # not a disc lying across the column: no plane to cut along
        lo = np.maximum(np.floor((points.min(axis=0) - BODY_HALF_HEIGHT_MM) / spacing), 0).astype(int)
        hi = np.minimum(np.ceil((points.max(axis=0) + BODY_HALF_HEIGHT_MM) / spacing) + 1, bodies.shape).astype(int)
        part = bodies[tuple(slice(a, b) for a, b in zip(lo, hi))]
        for i in np.unique(part[part > 0]):
            where = np.argwhere(part == i) + lo
            side = (where * spacing - centre) @ normal > 0
            ml = np.array([np.sum(~side), np.sum(side)]) * float(np.prod(spacing)) / 1000.0
            if ml.min() < smallest or not _straddles(where, side, points, spacing):
                continue
            n += 1
            moved = where[side] - lo
            part[tuple(moved.T)] = n
    return bodies, n


def _straddles(voxels: np.ndarray, side: np.ndarray, disc_points: np.ndarray, spacing) -> bool:
    """Whether body voxels lie on both sides of the disc where the disc is (within its radius of its
    centre across the column), not only beside it."""
    centre = disc_points.mean(axis=0)
    radius = float(np.percentile(np.linalg.norm((disc_points - centre)[:, :2], axis=1), 90))
    near = np.linalg.norm((voxels * spacing - centre)[:, :2], axis=1) <= radius
    return bool(np.any(near & side) and np.any(near & ~side))


def _stats(labelled: np.ndarray, n: int, spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component: centroid (mm on the grid), volume (ml), largest extent (mm)."""
    if n == 0:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0)
    spacing = np.asarray(spacing, float)
    # over the labelled voxels only (a few per cent of an MR grid), not the whole grid per statistic
    where = np.flatnonzero(labelled)
    ids = labelled.ravel()[where]
    counts = np.bincount(ids, minlength=n + 1)[1:].astype(float)
    centres = np.column_stack([np.bincount(ids, weights=axis, minlength=n + 1)[1:]
                               for axis in np.unravel_index(where, labelled.shape)])
    centres = centres / np.maximum(counts, 1)[:, None] * spacing
    volumes = counts * float(np.prod(spacing)) / 1000.0
    extents = np.array([max((s.stop - s.start) * d for s, d in zip(box, spacing))
                        for box in ndimage.find_objects(labelled, n)])
    return centres, volumes, extents


def spine_chain(centres: np.ndarray, volumes: np.ndarray, extents: np.ndarray,
                gap_step_mm: float = GAP_STEP_MM) -> list[int]:
    """Indices of the body components that form the spine: the longest run of plausible bodies in which
    each follows the last at a body's spacing without jumping sideways or forwards (gut, fat and
    the abdominal wall light up too on an MR, but not as such a chain). A step may span a body the
    network missed (up to ``GAP_STEP_MM``, a little more sideways): the run then goes on past it, and
    the numbering counts the missing level. Ties go to the larger volume."""
    ok = [i for i in range(len(volumes)) if BODY_ML[0] <= volumes[i] <= BODY_ML[1] and extents[i] <= BODY_EXTENT_MM]
    ok.sort(key=lambda i: centres[i][2])
    best: dict[int, tuple[int, float, int]] = {}        # index -> (length, volume, previous)
    for k, i in enumerate(ok):
        best[i] = (1, volumes[i], -1)
        for j in ok[:k]:
            step = centres[i] - centres[j]
            slack = 1.0 if step[2] <= STEP_MM[1] else GAP_SHIFT_FACTOR
            if STEP_MM[0] <= step[2] <= gap_step_mm and abs(step[0]) <= MAX_SHIFT_MM[0] * slack and \
                    abs(step[1]) <= MAX_SHIFT_MM[1] * slack:
                length, volume, _ = best[j]
                if (length + 1, volume + volumes[i]) > best[i][:2]:
                    best[i] = (length + 1, volume + volumes[i], j)
    if not best:
        return []
    end = max(best, key=lambda i: best[i][:2])
    chain = []
    while end >= 0:
        chain.append(end)
        end = best[end][2]
    return _trim_gap_ends(chain[::-1], centres, volumes)


def _trim_gap_ends(chain: list[int], centres: np.ndarray, volumes: np.ndarray) -> list[int]:
    """The chain without a small piece reached over a gap at either end: a missed body is believed
    between two bodies, not between a body and a fragment far beyond the column's end (a piece of the
    sacrum or of gut below L5 would otherwise become 'L5' and push every level up)."""
    while len(chain) >= 3:
        median = float(np.median(volumes[chain]))
        for end, neighbour in ((0, 1), (-1, -2)):
            gap = abs(centres[chain[end]][2] - centres[chain[neighbour]][2]) > STEP_MM[1]
            if gap and volumes[chain[end]] < SACRAL_TOP_FRACTION * median:
                chain = chain[1:] if end == 0 else chain[:-1]
                break
        else:
            return chain
    return chain


def near_chain(disc_centres: np.ndarray, body_centres: np.ndarray) -> list[int]:
    """Disc components lying along the body chain (within its cranio-caudal span plus one step)."""
    if not len(body_centres):
        return []
    order = np.argsort(body_centres[:, 2])
    s, lr, ap = body_centres[order, 2], body_centres[order, 0], body_centres[order, 1]
    keep = []
    for k, c in enumerate(disc_centres):
        if not s[0] - STEP_MM[1] <= c[2] <= s[-1] + STEP_MM[1]:
            continue
        expected = np.array([np.interp(c[2], s, lr), np.interp(c[2], s, ap)])
        if np.all(np.abs(c[:2] - expected) <= DISC_OFF_CHAIN_MM):
            keep.append(k)
    return keep


def _keep(labelled: np.ndarray, n: int, indices: list[int]) -> tuple[np.ndarray, int]:
    lut = np.zeros(n + 1, np.int32)
    for new, i in enumerate(indices, start=1):
        lut[i + 1] = new
    return lut[labelled], len(indices)


def level_steps(body_s: np.ndarray, disc_s: np.ndarray, rules: CountingRules = CountingRules()) -> list[int]:
    """Levels between each pair of neighbouring bodies (``body_s`` sorted upwards): 1; more where the
    network missed a body between them; 0 where the two are pieces of one body. Where the discs were
    found, the discs between the two say so (two discs: a body between them), if the step is long
    enough to hold a missed body; elsewhere a step more than ``GAP_FACTOR`` times the chain's median
    step spans round(step / median) levels. Two pieces closer than ``SAME_BODY_FACTOR`` median steps
    with no disc between them, where the discs are found just above and below, are one body."""
    steps = np.diff(body_s)
    if not len(steps):
        return []
    discs = _distinct(np.sort(disc_s))
    reference = float(np.median(steps)) if len(steps) >= 3 else 0.0
    read_discs = len(discs) >= len(steps) / 2
    between = [int(np.sum((discs > low) & (discs < high))) for low, high in zip(body_s[:-1], body_s[1:])]
    levels = []
    for k, step in enumerate(steps):
        long_enough = reference > 0 and step > GAP_FACTOR * reference
        beside = [between[j] for j in (k - 1, k + 1) if 0 <= j < len(steps)]
        if read_discs and between[k] >= 1:
            many = rules.disc_steps and between[k] > 1 and step > DISC_GAP_FACTOR * (reference or step)
            levels.append(between[k] if many else 1)
        elif long_enough and rules.long_steps:
            levels.append(max(1, int(round(step / reference))))
        elif rules.same_body and reference > 0 and step < SAME_BODY_FACTOR * reference and beside and all(beside):
            levels.append(0)
        else:
            levels.append(1)
    return levels


def _distinct(disc_s: np.ndarray) -> np.ndarray:
    """Disc heights with parts of one disc (found left and right of the midline) taken once."""
    out: list[float] = []
    for s in disc_s:
        if out and s - out[-1] < SAME_DISC_MM:
            continue
        out.append(float(s))
    return np.array(out)


def number_levels(body_s: np.ndarray, disc_s: np.ndarray, body_ml: np.ndarray | None = None,
                  lowest_at_border: bool = False, cervical: bool = False, rules: CountingRules = CountingRules(),
                  disc_ml: np.ndarray | None = None) -> tuple[list[int], list[int], bool, list[tuple[int, int]]]:
    """VerSe ids of the bodies and discs (given their S coordinates, any order), whether the count is
    anchored (an L5/S1 disc below the lowest body, or the top of the sacrum found) and the levels
    counted as missing between found bodies (pairs of ids above and below). A disc below the sacrum
    gets id 0 (dropped). ``body_ml``: the bodies' volumes, for telling S1 from L5. ``cervical``: the
    scan shows the neck, so the count runs down from the top body as C2 (never anchored: the dens is
    not checked). ``disc_ml``: the discs' volumes, for the sacrum below the lowest disc."""
    body_s, disc_s = np.asarray(body_s, float), np.asarray(disc_s, float)
    body_order = np.argsort(body_s)                   # lowest first
    body_ids = np.zeros(len(body_s), int)
    n_sacral = int(not cervical and _sacral_top(body_order, body_ml))
    if not cervical and rules.sacrum_below_last_disc and disc_ml is not None:
        sizes = None if body_ml is None else np.asarray(body_ml, float)[body_order]
        n_sacral = max(n_sacral, _below_last_disc(body_s[body_order], disc_s, np.asarray(disc_ml, float), sizes))
    sacral = n_sacral > 0
    counted = body_order[n_sacral:]
    steps = level_steps(body_s[counted], disc_s, rules)
    if cervical:                                      # from the top down: C2, then each step's levels
        levels = C2 + np.concatenate([[0], np.cumsum(steps[::-1])])[::-1]
    else:                                             # from the bottom up: L5, then each step's levels
        levels = L5 - np.concatenate([[0], np.cumsum(steps)])
    body_ids[counted] = levels
    gaps = [(int(levels[k + 1]), int(levels[k])) for k, n in enumerate(steps) if n > 1]
    body_ids[body_order[:n_sacral]] = SACRUM
    lumbar = body_s[body_ids != SACRUM]
    # a small piece cut by the scan's lower edge is taken for S1 (lumbar MR shows the sacrum; in the
    # cross-validation every such piece was S1), but it could be a cut L5: the count is then not anchored
    if cervical or (sacral and lowest_at_border):
        anchored = False
    else:
        anchored = sacral or bool(len(disc_s) and len(lumbar) and disc_s.min() < lumbar.min())
    disc_ids = [_disc_id(s, body_s, body_ids) for s in disc_s]
    return [int(i) for i in body_ids], disc_ids, anchored, sorted(gaps)


def _disc_id(s: float, body_s: np.ndarray, body_ids: np.ndarray) -> int:
    """A disc is named after the vertebra above it: between two found bodies whose levels are apart
    (a body missed between them), after the level whose expected disc height lies nearest."""
    above = [(b, int(vid)) for b, vid in zip(body_s, body_ids) if b > s]
    below = [(b, int(vid)) for b, vid in zip(body_s, body_ids) if b < s]
    if above and min(above)[1] == SACRUM:             # below the sacrum's top: no disc of ours
        return 0
    if above and below:
        (s_up, top), (s_low, bottom) = min(above), max(below)
        bottom = L5 + 1 if bottom == SACRUM else bottom
        slots = np.arange(top, max(bottom, top + 1))
        expected = s_up + (s_low - s_up) * (slots - top + 0.5) / max(bottom - top, 1)
        return DISC + int(slots[int(np.argmin(np.abs(expected - s)))])
    if above:                                         # below the lowest body
        return DISC + min(above)[1]
    if below:                                         # above the top body: named after the level above it
        level = max(below)[1] - 1
        return DISC + level if level >= C2 else 0     # no disc between C1 and C2
    return DISC + L5


def _below_last_disc(body_s: np.ndarray, disc_s: np.ndarray, disc_ml: np.ndarray,
                     body_ml: np.ndarray | None = None) -> int:
    """How many of the lowest bodies (``body_s`` sorted upwards) are sacral because they lie below the
    lowest disc, on a scan whose discs are read (a disc of >= ``MIN_CUT_DISC_ML`` in each of the three
    steps above it): S1 found whole sits below the L5/S1 disc, with no disc under it (S1/S2 is fused).
    None where any disc find, even a fragment, lies lower (a degenerate L5/S1 disc is found small), or
    where a body down there is as large as the lumbar ones (``S1_FRACTION``, ``body_ml`` in the same
    order): an L5 whose L5/S1 disc the network missed altogether, not the wedge of S1."""
    full = disc_s[disc_ml >= MIN_CUT_DISC_ML]
    if not len(full) or np.any(disc_s < full.min()):
        return 0
    below = int(np.sum(body_s < full.min()))
    above = body_s[below:]
    if not 1 <= below <= 2 or len(above) < 4:
        return 0
    read = all(np.any((full > low) & (full < high)) for low, high in zip(above[:3], above[1:4]))
    smaller = body_ml is None or np.all(body_ml[:below] < S1_FRACTION * float(np.median(body_ml[below:])))
    return below if read and smaller else 0


def _sacral_top(order: np.ndarray, body_ml: np.ndarray | None) -> bool:
    if body_ml is None or len(order) < 3:
        return False
    others = np.asarray(body_ml, float)[order[1:]]
    return bool(body_ml[order[0]] < SACRAL_TOP_FRACTION * float(np.median(others)))


def _lowest_at_border(bodies: np.ndarray, n: int, centres: np.ndarray) -> bool:
    """Whether the caudal-most body touches the grid's inferior edge (cut by the field of view)."""
    if n == 0:
        return False
    box = ndimage.find_objects(bodies, n)[int(np.argmin(centres[:, 2]))]
    return box is not None and box[2].start == 0


def cervical_evidence(metadata, body_ml: np.ndarray) -> str:
    """Why this MR shows the neck rather than the lumbar spine, in words ("" where nothing says so): the
    series' header (BodyPartExamined, the series description), or bodies too small to be lumbar."""
    words = f"{metadata.body_part} {metadata.description}".upper()
    said = CERVICAL_WORDS.search(words)
    if said:
        return f"the series' header says '{said.group(0)}'"
    if len(body_ml) >= 2 and float(np.median(body_ml)) < LUMBAR_MIN_ML:
        return (f"its vertebral bodies are too small for lumbar ones (median {float(np.median(body_ml)):.0f} ml; "
                f"lumbar bodies are {LUMBAR_MIN_ML:.0f} ml and more)")
    return ""


def missing_levels(upper: int, lower: int) -> str:
    """The warning for levels counted between two found bodies but not segmented."""
    missing = ", ".join(label_name(i) for i in range(upper + 1, lower))
    return (f"{missing} not found: the spacing or the discs between {label_name(upper)} and "
            f"{label_name(lower)} show a body there, so it was counted; check those levels")


def _scar_step(image: np.ndarray, networks, progress: Progress, spacing) -> np.ndarray:
    return probabilities(image, networks[0], progress)


def _sshs_step(image: np.ndarray, networks, progress: Progress, spacing) -> np.ndarray:
    from spine_core.pipeline.mr_sshs import sshs_probabilities

    return sshs_probabilities(image, *networks, progress, spacing)


# Each MR method's network step (registry.MR_PIPELINES names): (image, its networks in the order of
# MRPipeline.models, progress, voxel spacing) -> the (4, L, P, S) probabilities the shared post-processing reads.
NETWORK_STEPS = {"mr-scar": _scar_step, "mr-sshs": _sshs_step}


def mr_probabilities(volume: Volume, options: SegmentOptions, progress: Progress,
                     models: ModelSet) -> tuple[np.ndarray, Volume, dict]:
    """The MR method's body, disc and centre probabilities (4, L, P, S) on the scan's MR grid, that
    grid, and the seconds each step took."""
    started = time.perf_counter()
    method = mr_method(options.pipeline, options.mr_method)
    networks = [models.get(m) for m in method.models]
    image, grid = mr_input(volume)
    timings = {"preprocess": round(time.perf_counter() - started, 3)}
    began = time.perf_counter()
    prob = NETWORK_STEPS[method.name](image, networks, progress, tuple(grid.spacing))
    timings["network"] = round(time.perf_counter() - began, 3)
    return prob, grid, timings


def segment_mr(volume: Volume, options: SegmentOptions | None = None, progress: Progress | None = None,
               models: ModelSet | None = None) -> SegmentResult:
    options, progress = options or SegmentOptions(), progress or NullProgress()
    models = models or ModelSet(options.models_dir, options.device)
    prob, grid, timings = mr_probabilities(volume, options, progress, models)
    trust = mr_method(options.pipeline, options.mr_method).level_trust
    result = mr_structures(volume, prob, grid, progress, trust=trust)
    result.timings_s = {**timings, **result.timings_s,
                        "total": round(sum(timings.values()) + result.timings_s["output"], 3)}
    result.provider = models.provider
    return result


def mr_structures(volume: Volume, prob: np.ndarray, grid: Volume, progress: Progress | None = None,
                  rules: CountingRules = RULES, *, trust: Mapping[str, float]) -> SegmentResult:
    """Bodies and discs, numbered, from the MR method's probabilities ``prob`` on ``grid``, as labels
    on ``volume``'s grid (the post-processing shared by both MR methods; the benchmark reruns it on
    stored probabilities); ``trust``: the method's confidence caps by anchor (``MRPipeline.level_trust``),
    required: a default would give one method the other's caps."""
    progress = progress or NullProgress()
    began = time.perf_counter()
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    disc_mask = (prob[1] > 0.5) & (prob[1] >= prob[0])
    body_mask = (prob[0] > 0.5) & ~disc_mask
    bodies, n_bodies = _components(body_mask, MIN_BODY_ML / voxel_ml,
                                   split_bodies(body_mask, prob[0], prob[2], grid.spacing))
    discs, n_discs = _components(disc_mask, MIN_DISC_ML / voxel_ml)
    if rules.enclosed_discs:
        bodies, discs, n_discs = absorb_enclosed_discs(bodies, discs, n_discs, grid.spacing)
    if rules.split_at_discs:
        bodies, n_bodies = split_at_discs(bodies, n_bodies, discs, n_discs, grid.spacing)
    body_stats = _stats(bodies, n_bodies, grid.spacing)
    chain = spine_chain(*body_stats, gap_step_mm=GAP_STEP_MM if rules.gap_chain else STEP_MM[1])
    disc_centres, disc_volumes, _ = _stats(discs, n_discs, grid.spacing)
    kept_discs = near_chain(disc_centres, body_stats[0][chain])
    bodies, n_bodies = _keep(bodies, n_bodies, chain)
    discs, n_discs = _keep(discs, n_discs, kept_discs)
    if rules.filled_bodies:
        bodies = fill_body_holes(bodies, n_bodies, discs)
    # the centroids found for the chain, reused: column 2 is S on the LPS grid (up)
    centres = body_stats[0][chain]
    neck = cervical_evidence(volume.metadata, body_stats[1][chain])
    cut = _lowest_at_border(bodies, n_bodies, centres)
    body_ids, disc_ids, anchored, gaps = number_levels(
        centres[:, 2], disc_centres[kept_discs, 2], body_stats[1][chain], cut,
        cervical=bool(neck), rules=rules, disc_ml=disc_volumes[kept_discs])
    anchor = count_anchor(anchored, bool(neck), body_ids)
    lut_b = np.array([0, *body_ids], np.int16)
    lut_d = np.array([0, *disc_ids], np.int16)
    ids = np.where(bodies > 0, lut_b[bodies], lut_d[discs]).astype(np.int16)
    confidence = {}
    for lut, comps, channel in ((lut_b, bodies, 0), (lut_d, discs, 1)):
        if len(lut) > 1:                              # one pass per class, not one per structure
            means = ndimage.mean(prob[channel], comps, index=np.arange(1, len(lut)))
            confidence.update({int(i): min(float(m), trust[anchor])
                               for i, m in zip(lut[1:], np.atleast_1d(means))})
    array = to_input_grid(ids, grid, volume)
    present = sorted(int(i) for i in np.unique(array) if i)
    labels = LabelMap(array, volume.affine, volume.metadata, names=label_names(present))
    warnings = list(volume.metadata.warnings)
    if present and not anchored:
        # a lowest body cut by the scan's edge tells S1 from L5 by neither its size nor a disc below it
        warnings.append({"cervical": CERVICAL.format(why=neck), "cut_sacrum": CUT_SACRUM}.get(
            anchor, CUT_LOWEST if cut else NOT_ANCHORED))
    warnings += [missing_levels(upper, lower) for upper, lower in gaps]
    progress.update(1.0, f"{len(body_ids)} bodies, {len(disc_ids)} discs")
    flags = {lower: (MISSED_ABOVE,) for _, lower in gaps}
    return SegmentResult(labels=labels, vertebrae=result_rows(labels, confidence, flags),
                         timings_s={"output": round(time.perf_counter() - began, 3)}, warnings=warnings,
                         anchor=anchor)
