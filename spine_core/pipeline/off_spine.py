"""Candidates that are not on the spine are not vertebrae.

On whole real scans the networks also return the hyoid and larynx, the sternum, costal cartilage and
bone in the abdominal wall as "vertebrae", and the labeler then spends a level on each. The spine is
a chain: every vertebra lies within a few millimetres, in the axial plane, of its neighbours (even a
35 degree scoliosis shifts consecutive vertebrae by well under 15 mm). A candidate whose centre lies
more than ``max_offset_mm`` (axial plane) from the median of the other candidates within
``window_mm`` above and below it is dropped. With fewer than two such neighbours a candidate is kept
(the chain cannot judge it). The limits are anatomy, set a priori.

That local test cannot judge two or three false candidates that lie together far from the spine
(on acrin head_to_chest, two structures ~200 mm beside the neck, each the other's only neighbour,
were named C1 and C2): the candidates linked into chains by the same limits, a chain other than the
longest is dropped where it lies further from the longest one, in the axial plane, than the spine
could bend over the height between them (``max_offset_mm`` plus ``max_slope`` per mm of height).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from spine_core.pipeline.preprocess import scan_bounds_mm
from spine_core.pipeline.stages import Context, Levels, SpineNotFound, Stage, keep_instances


@dataclass(frozen=True)
class OffSpineOptions:
    max_offset_mm: float = 30.0
    window_mm: float = 80.0
    min_neighbours: int = 2
    max_slope: float = 1.0           # axial drift per mm of height between two chains of one spine (45 degrees)


def off_spine(centres_mm: np.ndarray, options: OffSpineOptions | None = None) -> np.ndarray:
    """Boolean per candidate: True where it lies off the chain of the others."""
    options = options or OffSpineOptions()
    centres = np.asarray(centres_mm, float)
    off = np.zeros(len(centres), bool)
    for n, c in enumerate(centres):
        others = np.delete(centres, n, axis=0)
        near = others[np.abs(others[:, 2] - c[2]) <= options.window_mm]
        if len(near) < options.min_neighbours:
            continue
        off[n] = np.linalg.norm(np.median(near[:, :2], axis=0) - c[:2]) > options.max_offset_mm
    return off


def chains(centres_mm: np.ndarray, options: OffSpineOptions | None = None) -> np.ndarray:
    """Chain index per candidate: candidates within ``window_mm`` in height and ``max_offset_mm`` in
    the axial plane of each other are linked; chains are the linked groups, the longest numbered 0."""
    options = options or OffSpineOptions()
    c = np.asarray(centres_mm, float)
    dz = np.abs(c[:, None, 2] - c[None, :, 2])
    axial = np.linalg.norm(c[:, None, :2] - c[None, :, :2], axis=2)
    linked = (dz <= options.window_mm) & (axial <= options.max_offset_mm)
    _, group = connected_components(csr_matrix(linked), directed=False)
    sizes = np.bincount(group)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[group]


def detached(centres_mm: np.ndarray, options: OffSpineOptions | None = None) -> np.ndarray:
    """Boolean per candidate: True where it belongs to a chain, not the longest, that lies further from
    the longest chain (the nearest of its candidates in height) than one spine could bend."""
    options = options or OffSpineOptions()
    c = np.asarray(centres_mm, float)
    out = np.zeros(len(c), bool)
    if len(c) < 3:
        return out
    group = chains(c, options)
    main = c[group == 0]
    if np.sum(group == 0) < 2 or np.sum(group == 0) <= np.max(np.bincount(group)[1:], initial=0):
        return out                    # no chain longer than the rest: nothing to measure against
    for n, point in enumerate(c):
        if group[n] == 0:
            continue
        nearest = main[np.argmin(np.abs(main[:, 2] - point[2]))]
        height = abs(nearest[2] - point[2])
        out[n] = np.linalg.norm(nearest[:2] - point[:2]) > options.max_offset_mm + options.max_slope * height
    return out


def side_by_side(centres_mm: np.ndarray, min_spread_mm: float = 15.0, max_height_mm: float = 12.0) -> bool:
    """Two or more candidates apart across the axial plane but all within ``max_height_mm`` along the
    body's axis: vertebrae are stacked at least a cervical body's height apart (~15 mm), so these are
    not a spine (e.g. a lateral reformat through the shoulder). Scattered candidates over a taller
    stretch are left to the numbering, which flags them."""
    c = np.asarray(centres_mm, float)
    if len(c) < 2:
        return False
    spread = float(np.max(np.linalg.norm(c[:, None, :2] - c[None, :, :2], axis=2)))
    return spread > min_spread_mm and float(np.ptp(c[:, 2])) < max_height_mm


MIN_HEIGHT_TO_JUDGE_MM = 80.0      # about three vertebrae


class OffSpineStage(Stage):
    """Between segmentation and numbering: drop candidates off the spine's chain."""
    name = "off-spine"
    weight = 0.05

    def __init__(self, options: OffSpineOptions | None = None) -> None:
        self.options = options or OffSpineOptions()

    def predict(self, ctx: Context, inputs, progress):
        centres = ctx.instances.centres_mm
        off = off_spine(centres, self.options)
        if not off.all():
            kept = np.flatnonzero(~off)
            off[kept[detached(centres[kept], self.options)]] = True
        return off

    def postprocess(self, ctx: Context, off, progress) -> None:
        kept = ctx.instances.centres_mm[~off] if not off.all() else ctx.instances.centres_mm
        lo, hi = scan_bounds_mm(ctx.volume)
        # only a scan tall enough to show vertebrae stacked can show that its candidates are not
        if hi[2] - lo[2] >= MIN_HEIGHT_TO_JUDGE_MM and side_by_side(kept):
            raise SpineNotFound("The structures found lie side by side, not stacked as vertebrae are: this "
                                "scan does not seem to show the spine. Check the series (a lateral reformat "
                                "or a limb?) or choose another one.")
        if not off.any() or off.all():
            return
        ctx.instances = keep_instances(ctx.instances, ~off)
        if ctx.levels is not None:
            keep = np.flatnonzero(~off)
            old = ctx.levels
            ctx.levels = Levels([old.ids[k] for k in keep], [old.probability[k] for k in keep],
                                [old.flags[k] for k in keep])
        ctx.warn(f"{int(off.sum())} candidate structure(s) off the spine were discarded (not vertebrae)")
