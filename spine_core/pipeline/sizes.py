"""Vertebral body size as evidence of the level.

The labeler sees each vertebra's mask resized to a fixed box, so it reads shape but not size, and on
short real crops with no landmark in view (no last rib, no sacrum) its levels were 3-10 levels off
(docs/BENCHMARKS.md). Size is what a radiologist uses there: a vertebral body's antero-posterior
depth and its width grow down the column (on the reference maps T2 ~22 x 32 mm, T11 ~30 x 36 mm,
L4 ~36 x 43 mm).
People differ in scale, so a chain is judged with one scale factor for the whole patient, and the
level-to-level differences in the lumbar spine (a few per cent) are far weaker evidence than the
difference between the upper thorax and the lumbar spine.

Both measures are read in the axial cross-section through the body's middle, perpendicular to the
column, so they survive a crop that cuts the vertebra above or below and a mask split across its
height. The reference table (resources/anatomy/body_sizes.json) is measured by
``benchmarks/body_size_table.py`` on the real VerSe label maps in ``../shared/data/masks``, none of
which is a benchmark case.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from spine_core.labels import L6, SACRUM, T13
from spine_core.pipeline.discs import ANTERIOR, front_centroid, mask_clouds

SIZE_TABLE = Path(__file__).resolve().parents[2] / "resources" / "anatomy" / "body_sizes.json"
# a variant level is the size of the standard level it sits beside
_STAND_IN = {L6: 24, T13: 19}


@dataclass(frozen=True)
class SizeOptions:
    body_fraction: float = 0.4      # front share of a mask's antero-posterior extent: its body (discs.py)
    slab_mm: float = 3.0            # half-height of the cross-section read at the body's middle
    strip_mm: float = 3.0           # half-width of the midline strip the depth is read along
    gap_mm: float = 3.0             # a gap this long along the midline ends the body (the spinal canal)
    level_sd: float = 0.08          # log-size spread of one level once the patient's scale is known
    scale_sd: float = 0.12          # log-size spread of patients' scale
    max_z: float = 4.0              # a measure further off a level than this many level_sd is an outlier
    scales: int = 13                # grid over the patient's log-scale, +- 2.5 scale_sd


def _column_directions(bodies: np.ndarray) -> np.ndarray:
    n = len(bodies)
    if n < 2:
        return np.array([[0.0, 0.0, 1.0]] * n)
    d = np.gradient(bodies, axis=0)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    return np.where(norm > 1e-6, d / np.maximum(norm, 1e-6), [0.0, 0.0, 1.0])


def body_dimensions(owner: np.ndarray, grid, count: int, options: SizeOptions | None = None) -> np.ndarray:
    """(count, 2) antero-posterior depth and width (mm) of each mask's vertebral body, NaN where the
    cross-section through the body's middle is not readable. Mask n = owner value n + 1, cranial first."""
    options = options or SizeOptions()
    clouds = mask_clouds(owner, grid, count)
    bodies = np.array([front_centroid(p, options.body_fraction) if p is not None else np.full(3, np.nan)
                       for p in clouds]).reshape(-1, 3)
    found = ~np.isnan(bodies[:, 0])
    directions = np.full((count, 3), np.nan)
    directions[found] = _column_directions(bodies[found])
    out = np.full((count, 2), np.nan)
    step = float(min(grid.spacing))
    for n, points in enumerate(clouds):
        if points is None:
            continue
        d = directions[n]
        a = ANTERIOR - (ANTERIOR @ d) * d
        if np.linalg.norm(a) < 0.5:          # the column runs antero-posteriorly: no axial section
            continue
        a /= np.linalg.norm(a)
        lateral = np.cross(d, a)
        rel = points - bodies[n]
        h, t, w = rel @ d, rel @ a, rel @ lateral
        slab = np.abs(h) <= max(options.slab_mm, float(max(grid.spacing)) / 2)
        strip = slab & (np.abs(w) <= max(options.strip_mm, float(max(grid.spacing))))
        if strip.sum() < 3:
            continue
        depth, front = _front_run(t[strip], step, options.gap_mm)
        if depth <= 0:
            continue
        middle = slab & (t <= front - 0.25 * depth) & (t >= front - 0.75 * depth)
        if middle.sum() < 3:
            continue
        lo, hi = np.percentile(w[middle], [1, 99])
        out[n] = depth, hi - lo
    return out


def _front_run(t: np.ndarray, step: float, gap_mm: float) -> tuple[float, float]:
    """Length and front of the run of mask from the front-most point backwards, ended by a gap."""
    order = np.sort(t)[::-1]
    front = float(order[0])
    end = front
    for value in order[1:]:
        if end - value > gap_mm:
            break
        end = float(value)
    return front - end + step, front


@lru_cache(maxsize=1)
def size_table(path: str = str(SIZE_TABLE)) -> dict[int, np.ndarray]:
    """Level id -> mean log (depth, width) of the reference table (NaN where it has none)."""
    data = json.loads(Path(path).read_text())
    return {int(k): np.log(np.array([np.nan if x is None else x for x in v["depth_width_mm"]], float))
            for k, v in data["levels"].items()}


def size_log_likelihood(dims: np.ndarray, levels: list[int], options: SizeOptions | None = None,
                        table: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scales (k,), loglik (k, n, m)): for each patient log-scale on a grid, the log-likelihood of
    vertebra i's measured size at level ``levels[j]`` (0 where the vertebra was not measured)."""
    options = options or SizeOptions()
    table = table if table is not None else size_table()
    scales = np.linspace(-2.5, 2.5, options.scales) * options.scale_sd
    means = np.array([_level_mean(table, v) for v in levels])                                 # (m, 2)
    logs = np.log(np.where(np.asarray(dims, float) > 0, dims, np.nan))                         # (n, 2)
    z = (logs[None, :, None, :] - means[None, None, :, :] - scales[:, None, None, None]) / options.level_sd
    # a measure far off every level (a fragment, a mask grown into a rib) is an outlier, not
    # evidence of hundreds of nats
    terms = -0.5 * np.minimum(z * z, options.max_z ** 2)                                       # (k, n, m, 2)
    # a dimension the table lacks for a level is not compared there: it scores as the median sized
    # level does, so a lumbar-wide vertebra is not free to be cervical (the best-fitting level's
    # score made it so, and put verse006's L4-L5 at C6-T3) nor barred from it
    missing = np.isnan(means)
    for dim in range(2):
        if missing[:, dim].any() and not missing[:, dim].all():
            sized = terms[:, :, ~missing[:, dim], dim]
            typical = np.median(sized, axis=2, keepdims=True)         # NaN where the vertebra is unmeasured
            terms[:, :, missing[:, dim], dim] = np.broadcast_to(typical, terms[:, :, missing[:, dim], dim].shape)
    return scales, np.nansum(terms, axis=-1)


def _level_mean(table: dict[int, np.ndarray], level: int) -> np.ndarray:
    if level == SACRUM:       # its first body is L5's depth; its width takes in the alae: not compared
        return np.array([table[24][0], np.nan]) if 24 in table else np.full(2, np.nan)
    return table.get(_STAND_IN.get(level, level), np.full(2, np.nan))


def scale_log_prior(scales: np.ndarray, options: SizeOptions | None = None) -> np.ndarray:
    options = options or SizeOptions()
    return -0.5 * (scales / options.scale_sd) ** 2


def instance_sizes(ctx) -> np.ndarray | None:
    """Each found vertebra's body depth and width for numbering, or None where the lever is off."""
    if not ctx.options.body_size:
        return None
    inst = ctx.instances
    return body_dimensions(inst.owner, inst.grid, len(inst.centres_mm))
