"""Positional logic of vertebra labeling (M2): the labeler's per-vertebra class probabilities become
one consistent cranio-caudal sequence (no duplicates, no gaps), chosen to maximise the summed
log-probabilities by a small dynamic programme.

- A step of two levels is allowed only where the centre-to-centre distance says a vertebra was
  missed (gap > ``gap_factor`` x the local median spacing); it is flagged, never invented.
- L6 (25) and T13 (28) enter the sequence only where the labeler supports them with evidence (the
  variant sequence scores clearly better and the vertebra itself is called L6/T13 with p > 0.5);
  weaker support gives an "L6 candidate" / "T13 candidate" flag on the standard numbering.
- With the vertebral bodies' sizes (``spine_core.pipeline.sizes``), each level's score adds the size's
  log-likelihood under one scale for the whole patient (the best on a grid, with its prior), and the
  labeler is trusted as a noisy witness: its probabilities are mixed with a uniform one (trained on
  phantoms, it reads real vertebrae's shape far worse: 50 % identification on held-out real crops).
  A vertebra's confidence is then at most the probability that the whole chain sits where it was put
  rather than shifted by some levels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.labels import CRANIOCAUDAL, L6, T13
from spine_core.pipeline.sizes import SizeOptions, scale_log_prior, size_log_likelihood
from spine_core.review import L6_CANDIDATE, MISSED_ABOVE, T13_CANDIDATE

VARIANT_FLAGS = {L6: L6_CANDIDATE, T13: T13_CANDIDATE}
# The standard names an extra vertebra would take: a T13 is counted as T12 or L1, an L6 as L4 or L5. The
# labeler's guess of a variant level elsewhere (T13 on a neck vertebra, on a real head-to-chest scan) is
# noise, not evidence, and is not flagged.
VARIANT_PLACES = {L6: (23, 24), T13: (19, 20)}
_UNSUPPORTED = -30.0     # log-probability of a level the labeler cannot output


@dataclass(frozen=True)
class SequenceOptions:
    gap_factor: float = 1.6          # centre distance / local median spacing that means a missed vertebra
    variant_margin: float = 1.0      # nats a variant sequence must gain to be used
    variant_min_probability: float = 0.5
    candidate_probability: float = 0.2
    labeler_noise: float = 0.5       # with body sizes: share of the labeler's calls taken as uninformative
    sizes: SizeOptions = SizeOptions()


@dataclass
class Assignment:
    ids: list[int]
    probability: list[float]
    flags: list[tuple[str, ...]]
    score: float


def chain(variants: tuple[int, ...] = ()) -> list[int]:
    """The cranio-caudal level order, with L6 / T13 only when asked for."""
    return [v for v in CRANIOCAUDAL if v not in (L6, T13) or v in variants]


def local_spacing(centres_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance from each vertebra to the next, the local spacing there): the median of up to three
    neighbouring distances either side, that one excluded (levels grow caudally). Needs >= 3 centres."""
    dist = np.linalg.norm(np.diff(np.asarray(centres_mm, float), axis=0), axis=1)
    step = np.array([np.median(np.concatenate([dist[max(i - 3, 0):i], dist[i + 1:i + 4]]))
                     for i in range(len(dist))])
    return dist, step


def missed_gaps(centres_mm: np.ndarray, factor: float) -> np.ndarray:
    """``gaps[i]``: vertebra i sits more than ``factor`` x the local median spacing below i - 1."""
    gaps = np.zeros(len(centres_mm), bool)
    if len(centres_mm) < 3:
        return gaps
    dist, step = local_spacing(centres_mm)
    gaps[1:] = dist > factor * step
    return gaps


def level_scores(log_probs: np.ndarray, levels: list[int], label_ids: list[int]) -> np.ndarray:
    """(n, len(levels)): each vertebra's log-probability of each level of the chain."""
    column = {vid: c for c, vid in enumerate(label_ids)}
    return np.array([[log_probs[i, column[v]] if v in column else _UNSUPPORTED for v in levels]
                     for i in range(len(log_probs))])


def best_path(log_probs: np.ndarray, levels: list[int], label_ids: list[int],
              gaps: np.ndarray, extra: np.ndarray | None = None) -> tuple[list[int], float]:
    """Levels (VerSe ids) for n vertebrae maximising the summed log-probabilities (plus ``extra``,
    (n, len(levels)), where given), each one below the previous by exactly one level in ``levels``
    (two where ``gaps`` allows)."""
    n, m = len(log_probs), len(levels)
    score = level_scores(log_probs, levels, label_ids)
    if extra is not None:
        score = score + extra
    total = np.full((n, m), -np.inf)
    back = np.zeros((n, m), int)
    total[0] = score[0]
    for i in range(1, n):
        for p in range(1, m):
            steps = (1, 2) if gaps[i] and p >= 2 else (1,)
            prev = max(steps, key=lambda s: total[i - 1, p - s])
            total[i, p] = total[i - 1, p - prev] + score[i, p]
            back[i, p] = p - prev
    p = int(np.argmax(total[-1]))
    best = float(total[-1, p])
    path = [p]
    for i in range(n - 1, 0, -1):
        p = int(back[i, p])
        path.append(p)
    return [levels[q] for q in reversed(path)], best


def _variant_sets(label_ids: list[int]) -> list[tuple[int, ...]]:
    supported = [v for v in (T13, L6) if v in label_ids]
    sets = [()] + [(v,) for v in supported]
    return sets + ([tuple(supported)] if len(supported) == 2 else [])


def assign_levels(probabilities: np.ndarray, label_ids: list[int], centres_mm: np.ndarray,
                  options: SequenceOptions | None = None, sizes_mm: np.ndarray | None = None) -> Assignment:
    """One consistent sequence for vertebrae ordered cranial first; ``probabilities`` (n, classes);
    ``sizes_mm`` (n, 2): each body's depth and width (NaN where not measured), or None."""
    options = options or SequenceOptions()
    probs = np.clip(np.asarray(probabilities, float), 1e-9, 1.0)
    gaps = missed_gaps(centres_mm, options.gap_factor)
    if len(probs) > len(chain((T13, L6))):
        raise ValueError("more vertebrae than spinal levels")
    use_sizes = sizes_mm is not None and np.isfinite(np.asarray(sizes_mm, float)).any()
    if use_sizes:
        trusted = (1 - options.labeler_noise) * probs + options.labeler_noise / probs.shape[1]
        results = {v: _sized_path(np.log(trusted), chain(v), label_ids, gaps, sizes_mm, options.sizes)
                   for v in _variant_sets(label_ids)}
    else:
        results = {v: best_path(np.log(probs), chain(v), label_ids, gaps) for v in _variant_sets(label_ids)}
    chosen = _choose(results, probs, label_ids, options)
    ids, score = results[chosen][:2]
    flags = [set() for _ in ids]
    for i in np.flatnonzero(gaps):
        flags[i].add(MISSED_ABOVE)
    _flag_candidates(results, chosen, probs, label_ids, flags, options)
    column = {vid: c for c, vid in enumerate(label_ids)}
    chosen_probs = [float(probs[i, column[v]]) if v in column else 0.0 for i, v in enumerate(ids)]
    if use_sizes:
        chain_probability = results[chosen][2]
        chosen_probs = [min(p, chain_probability) for p in chosen_probs]
    return Assignment(list(ids), chosen_probs, [tuple(sorted(f)) for f in flags], score)


def _sized_path(log_probs: np.ndarray, levels: list[int], label_ids: list[int], gaps: np.ndarray,
                sizes_mm: np.ndarray, options: SizeOptions) -> tuple[list[int], float, float]:
    """(levels, score, probability that the chain is not shifted): the best path over a grid of
    patient scales, each with its prior; the shift probability compares the chosen path with the
    same path moved up or down the chain, each marginalised over the scales."""
    scales, size_ll = size_log_likelihood(sizes_mm, levels, options)
    prior = scale_log_prior(scales, options)
    paths = [best_path(log_probs, levels, label_ids, gaps, size_ll[k]) for k in range(len(scales))]
    best = int(np.argmax([score + p for (_, score), p in zip(paths, prior)]))
    ids, score = paths[best]
    if not np.isfinite(score):
        return ids, score, 0.0
    base = level_scores(log_probs, levels, label_ids)[None] + size_ll            # (k, n, m)
    position = np.array([levels.index(v) for v in ids])
    rows = np.arange(len(ids))
    shifted = []
    for delta in range(-position.min(), len(levels) - position.max()):
        per_scale = base[:, rows, position + delta].sum(axis=1) + prior
        shifted.append((delta, np.logaddexp.reduce(per_scale)))
    totals = np.array([t for _, t in shifted])
    weights = np.exp(totals - totals.max())
    unshifted = weights[[d for d, _ in shifted].index(0)] / weights.sum()
    return ids, float(score + prior[best]), float(unshifted)


def _choose(results, probs, label_ids, options: SequenceOptions) -> tuple[int, ...]:
    """The standard numbering unless a variant gains ``variant_margin`` nats and is itself supported."""
    standard = results[()][1]
    if not np.isfinite(standard):          # more vertebrae than standard levels: a variant must be
        return max(results, key=lambda v: results[v][1])
    better = [v for v, (ids, score, *_) in results.items()
              if v and score - standard >= options.variant_margin
              and _supported(ids, v, probs, label_ids, options.variant_min_probability)]
    return max(better, key=lambda v: results[v][1]) if better else ()


def _supported(ids, variants, probs, label_ids, threshold) -> bool:
    rows = [i for i, v in enumerate(ids) if v in variants]
    return bool(rows) and all(probs[i, label_ids.index(ids[i])] > threshold for i in rows)


def _flag_candidates(results, chosen, probs, label_ids, flags, options: SequenceOptions) -> None:
    """Flag where L6 / T13 is plausible but not assigned: the variant sequence scores within the
    margin, or the labeler gives the variant level some probability on a vertebra."""
    best = results[chosen][1]
    for variant in (L6, T13):
        if variant in chosen or variant not in label_ids:
            continue
        column = label_ids.index(variant)
        rows = {int(i) for i in np.flatnonzero(probs[:, column] >= options.candidate_probability)
                if results[chosen][0][i] in VARIANT_PLACES[variant]}
        alt = results.get((variant,))
        if alt is not None and alt[1] > best - options.variant_margin:
            rows |= {i for i, v in enumerate(alt[0]) if v == variant}
        for i in rows:
            flags[i].add(VARIANT_FLAGS[variant])
