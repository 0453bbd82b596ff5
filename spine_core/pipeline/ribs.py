"""Numbering from anatomy: the last rib-bearing vertebra is T12.

The labeler networks number whole real scans several levels off (a lumbar spine called thoracic, the
sacrum called T12). Radiologists count from landmarks; on chest, abdomen and chest-to-pelvis CT the
surest is the last pair of ribs above the rib-free lumbar spine. Behind the transverse processes,
45-75 mm either side of the midline, a thoracic level always has bone (the rib's angle), a lumbar
level never does (erector spinae; lumbar transverse processes end nearer the midline), until the
iliac crests.

    rib share(z) = share of bone (smoothed HU > ``bone_hu``) in the two bands, from 10 mm in front
                   of to 35 mm behind the vertebrae's centroid line, mean of left and right

Along the spine this share rises and falls once per rib. The T12 rib is the last peak above the
first rib-free stretch of at least ``min_gap_mm`` that has vertebrae in it; the vertebra nearest to
that peak is T12, and the levels are counted up and down from it (a level skipped where the spacing
says one was missed). Where the scan shows no such stretch (a chest CT that ends in the thorax, or a
crop too narrow to see the ribs) nothing changes, except that rib-bearing vertebrae the labeler put in
the lumbar spine are moved up and flagged. A short 12th rib (T11 then looks like the last) or a 13th
rib shifts the count by one: the result says how the levels were counted, for the clinician to
confirm. The numbers are anatomy, set a priori (the peak height was lowered to 0.04 after looking at
acrin chest_to_pelvis, whose 4.25 mm slices blur the ribs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.labels import L6, SACRUM, vertebra_name
from spine_core.pipeline.output import UNPROVEN_COUNT_CAP
from spine_core.pipeline.preprocess import box_grid, resample_image
from spine_core.pipeline.sequence import chain, missed_gaps
from spine_core.pipeline.stages import Context, Levels, Stage
from spine_core.review import L6_CANDIDATE, NOT_ANCHORED_NOTE, RIBS_UNANCHORED, UNIDENTIFIED

T12 = 19
C1, C2 = 1, 2


@dataclass(frozen=True)
class RibOptions:
    bone_hu: float = 200.0
    band_mm: tuple[float, float] = (45.0, 75.0)     # lateral distance from the centroid line
    ap_mm: tuple[float, float] = (-10.0, 35.0)      # anterior (-) / posterior (+) of it
    step_mm: float = 2.0
    peak_height: float = 0.04
    peak_prominence: float = 0.03
    empty_below: float = 0.03
    min_gap_mm: float = 50.0
    max_offset_pitch: float = 0.6                   # rib peak to T12's centre, in vertebra spacings
    gap_factor: float = 1.6


def rib_profile(volume, centres_mm: np.ndarray, options: RibOptions) -> tuple[np.ndarray, np.ndarray]:
    """LPS z (cranial first) every ``step_mm`` along the vertebrae, and the rib share there. One
    resampling of the box the bands sweep; each slab then reads its bands at the spine's position."""
    c = np.asarray(centres_mm, float)
    zs = np.arange(c[0, 2] + 20.0, c[-1, 2] - 20.0, -options.step_mm)
    cx = np.interp(-zs, -c[:, 2], c[:, 0])
    cy = np.interp(-zs, -c[:, 2], c[:, 1])
    lat, spacing = options.band_mm[1], 1.5
    lo = np.array([cx.min() - lat, cy.min() + options.ap_mm[0], zs[-1] - options.step_mm / 2])
    hi = np.array([cx.max() + lat, cy.max() + options.ap_mm[1], zs[0] + options.step_mm / 2])
    grid = box_grid(lo, hi, spacing)
    bone = ndimage.gaussian_filter(resample_image(volume, grid).astype(np.float32), 0.7) > options.bone_hu
    x_mm = lo[0] + spacing * np.arange(grid.shape[0])
    y_mm = lo[1] + spacing * np.arange(grid.shape[1])
    z_mm = lo[2] + spacing * np.arange(grid.shape[2])
    share = np.zeros(len(zs))
    for n, (z, x0, y0) in enumerate(zip(zs, cx, cy)):
        lateral = np.abs(x_mm - x0)
        band = (lateral >= options.band_mm[0]) & (lateral <= options.band_mm[1])
        ap = (y_mm >= y0 + options.ap_mm[0]) & (y_mm <= y0 + options.ap_mm[1])
        slab = np.abs(z_mm - z) <= options.step_mm / 2
        share[n] = bone[np.ix_(band, ap, slab)].any(axis=2).mean()
    return zs, ndimage.gaussian_filter1d(share, 1.0)


def _peaks_and_gaps(share: np.ndarray, options: RibOptions) -> tuple[np.ndarray, list[int]]:
    """Rib peaks, and the starts of every rib-free stretch of ``min_gap_mm``."""
    from scipy.signal import find_peaks  # here: importing scipy.signal costs ~1 s, and MR never needs it

    peaks, _ = find_peaks(share, height=options.peak_height, prominence=options.peak_prominence)
    empty = share < options.empty_below
    run = int(np.ceil(options.min_gap_mm / options.step_mm))
    starts = [i for i in range(len(share) - run + 1) if empty[i:i + run].all()]
    return peaks, starts


def last_rib_z(zs: np.ndarray, share: np.ndarray, centres_z: np.ndarray, options: RibOptions) -> float | None:
    """LPS z of the T12 rib's peak, or None when the profile shows no rib-free stretch below ribs."""
    peaks, starts = _peaks_and_gaps(share, options)
    starts = [i for i in starts if len(peaks) and i >= peaks[0]]
    if len(peaks) < 2 or not starts:
        return None
    start = starts[0]
    above = peaks[peaks < start]
    run = int(np.ceil(options.min_gap_mm / options.step_mm))
    gap_lo, gap_hi = zs[start + run - 1], zs[start]
    has_vertebrae = np.any((centres_z <= gap_hi) & (centres_z >= gap_lo))
    return float(zs[above[-1]]) if len(above) >= 2 and has_vertebrae else None


def levels_from_t12(centres_mm: np.ndarray, t12_index: int, options: RibOptions,
                    volumes: np.ndarray | None = None) -> list[int] | None:
    """VerSe ids cranial first with instance ``t12_index`` as T12 (skipping levels at missed gaps).
    With ``volumes`` (one per instance), a sixth lumbar-type vertebra is recognised: see ``_l6``."""
    levels = list(chain())
    gaps = missed_gaps(centres_mm, options.gap_factor)
    position = np.zeros(len(centres_mm), int)
    position[t12_index] = levels.index(T12)
    for n in range(t12_index + 1, len(centres_mm)):
        position[n] = position[n - 1] + 1 + int(gaps[n])
    for n in range(t12_index - 1, -1, -1):
        position[n] = position[n + 1] - 1 - int(gaps[n + 1])
    if position.min() < 0:
        return None
    ids = [levels[min(p, levels.index(SACRUM))] for p in position]   # below the sacrum's top: sacrum
    if volumes is not None:
        _l6(ids, position, levels.index(SACRUM), np.asarray(volumes, float))
    return ids


def _l6(ids: list[int], position: np.ndarray, sacrum: int, volumes: np.ndarray) -> None:
    """The first of two or more candidates counted past L5 is L6 when it was reached without a missed
    level, is vertebra-sized (0.6-1.4 x the median lumbar volume) and the last one is sacrum-sized
    (>= 1.3 x): six lumbar-type vertebrae between the last rib and the sacrum. A sacrum split in two
    by the networks gives two similar pieces, and no L6."""
    sacral = np.flatnonzero(position >= sacrum)
    lumbar = volumes[[n for n, v in enumerate(ids) if 20 <= v <= 24]]
    if len(sacral) < 2 or position[sacral[0]] != sacrum or not len(lumbar):
        return
    typical = float(np.median(lumbar))
    if 0.6 * typical <= volumes[sacral[0]] <= 1.4 * typical and volumes[sacral[-1]] >= 1.3 * typical:
        ids[sacral[0]] = L6


@dataclass(frozen=True)
class RibEvidence:
    t12_index: int | None          # the vertebra the last rib pair belongs to (cranial-first index)
    rib_bearing_index: int | None  # without an anchor: the lowest vertebra at or above the last rib peak
    #                                (it and all above it are thoracic)


def rib_evidence(volume, centres_mm: np.ndarray, options: RibOptions | None = None) -> RibEvidence:
    """What the ribs say about the vertebrae at ``centres_mm`` (cranial first)."""
    options = options or RibOptions()
    c = np.asarray(centres_mm, float)
    if len(c) < 4:
        return RibEvidence(None, None)
    zs, share = rib_profile(volume, c, options)
    pitch = float(np.median(np.abs(np.diff(c[:, 2]))))
    z = last_rib_z(zs, share, c[:, 2], options)
    if z is not None:
        nearest = int(np.argmin(np.abs(c[:, 2] - z)))
        if abs(c[nearest, 2] - z) <= options.max_offset_pitch * pitch:
            return RibEvidence(nearest, None)
    peaks, gaps = _peaks_and_gaps(share, options)
    if gaps or len(peaks) < 2:
        return RibEvidence(None, None)
    # ribs articulate at and between their vertebrae's bodies: a vertebra whose centre lies no more than
    # max_offset_pitch below the last rib peak bears ribs, and so does every vertebra above it
    bearing = np.flatnonzero(c[:, 2] >= zs[peaks[-1]] - options.max_offset_pitch * pitch)
    return RibEvidence(None, int(bearing[-1]) if len(bearing) else None)


def find_t12(volume, centres_mm: np.ndarray, options: RibOptions | None = None) -> int | None:
    """Index (cranial first) of the vertebra the last rib pair belongs to, or None."""
    return rib_evidence(volume, centres_mm, options).t12_index


def thoracic_cap(ids: list[int], index: int = -1) -> list[int] | None:
    """Where vertebra ``index`` bears ribs but is named below T12, the names moved up so that it is
    T12 at most (None when the names are already possible, or hold an L6 / T13 the shift cannot place)."""
    levels = list(chain())
    if ids[index] not in levels or levels.index(ids[index]) <= levels.index(T12):
        return None
    shift = levels.index(ids[index]) - levels.index(T12)
    if any(v not in levels or levels.index(v) - shift < 0 for v in ids):
        return None
    return [levels[levels.index(v) - shift] for v in ids]


class RibAnchorStage(Stage):
    """After the numbering: where the last ribs are in view, the levels are counted from T12."""
    name = "rib-anchor"
    weight = 0.3

    def __init__(self, options: RibOptions | None = None) -> None:
        self.options = options or RibOptions()

    def predict(self, ctx: Context, inputs, progress):
        if not ctx.options.rib_anchor:
            return None
        return rib_evidence(ctx.volume, ctx.instances.centres_mm, self.options)

    def postprocess(self, ctx: Context, evidence, progress) -> None:
        if evidence is None:
            return
        if evidence.t12_index is not None:
            self._count_from_t12(ctx, evidence.t12_index)
            return
        if evidence.rib_bearing_index is not None:
            self._cap_at_t12(ctx, evidence.rib_bearing_index)
        ids = ctx.levels.ids
        if any(UNIDENTIFIED in f for f in ctx.levels.flags):          # no labeler: placeholders, said so
            ctx.warn(f"{NOT_ANCHORED_NOTE}: the levels are placeholders.")
            return
        if ids and (ids[0] in (C1, C2) or ids[-1] == SACRUM):
            # C1, C2 and the sacrum are shapes no other level has: the count starts from one of them
            end = vertebra_name(ids[0]) if ids[0] in (C1, C2) else "the sacrum"
            ctx.warn(f"{NOT_ANCHORED_NOTE}: the levels are counted from {end} as the labeler read it. "
                     "Confirm it on the sagittal view.")
            return
        # the labeler's reading of outlines alone named 8 of 14 held-out real vertebrae right and moved a
        # whole chest CT a level under a slight change of its masks (docs/BENCHMARKS.md, 2026-12-03): a count
        # nothing in view proves, shown below the review flag like one through a crossing
        ctx.levels = Levels(ids, [min(p, UNPROVEN_COUNT_CAP) for p in ctx.levels.probability], ctx.levels.flags)
        ctx.warn(f"{NOT_ANCHORED_NOTE}, nor C2 or the sacrum: the levels are the labeler's reading of each "
                 "vertebra's shape and every one is shown as uncertain. Count them from C2, the last rib or "
                 "the sacrum on a scan that shows one.")

    def _count_from_t12(self, ctx: Context, t12_index: int) -> None:
        inst = ctx.instances
        volumes = np.bincount(inst.owner.ravel(), minlength=len(inst.centres_mm) + 1)[1:]
        ids = levels_from_t12(inst.centres_mm, t12_index, self.options, volumes)
        if ids is None:
            return
        old = ctx.levels
        order = list(chain((25, 28)))
        shifts = [order.index(a) - order.index(b) for a, b in zip(old.ids, ids) if a in order and b in order]
        shift = int(np.median(shifts)) if shifts else 0
        ctx.warn("Levels counted from the last rib pair (T12)"
                 + (f"; the labeler's numbering differed by {abs(shift)} level(s)" if shift else "")
                 + ". Confirm the rib count on the coronal view.")
        # trust falls with the distance from the anchor (every level counted can be a missed one),
        # unless the labeler, which reads the vertebra's own shape, says the same
        probability = [max(0.95 - 0.04 * abs(n - t12_index), 0.5) for n in range(len(ids))]
        probability = [max(p, q) if a == b else p for p, q, a, b in zip(probability, old.probability, ids, old.ids)]
        flags = [tuple(f for f in fl if not f.endswith("candidate")) + ((L6_CANDIDATE,) if v == L6 else ())
                 for fl, v in zip(old.flags, ids)]
        probability = [min(p, 0.5) if v == L6 else p for p, v in zip(probability, ids)]
        ctx.levels = Levels(ids, probability, flags)

    def _cap_at_t12(self, ctx: Context, index: int) -> None:
        old = ctx.levels
        ids = thoracic_cap(old.ids, index)
        if ids is None:
            return
        which = "The lowest vertebra found" if index in (-1, len(ids) - 1) else "A vertebra found"
        ctx.warn(f"{which} bears ribs but the labeler named it {vertebra_name(old.ids[index])}; the levels were "
                 "moved up so that it is T12 at most. No anatomical anchor is in view: the levels are uncertain.")
        flags = [tuple(f for f in fl if not f.endswith("candidate")) + (RIBS_UNANCHORED,) for fl in old.flags]
        ctx.levels = Levels(ids, [min(p, 0.3) for p in old.probability], flags)
