"""What a clinician should check, defined once: the flag vocabulary (with its help texts), the
confidence threshold, and the review rows (one per label: volume, centroid, confidence, flags) that
the CLI's centroids.json, the workstation's table and batch runs all show.

Flags come from two places: the analysis (``VertebraResult.flags``: low confidence, a missed vertebra
by the spacing, transitional candidates, ribs without an anchor) and the label map itself (touches the
scan border, much smaller than the median, the level above absent), which also holds after edits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, is_disc
from spine_core.volume import LabelMap

LOW_CONFIDENCE_BELOW = 0.5   # a vertebra shown below this confidence is flagged "low confidence"
SMALL_FRACTION = 0.4         # a vertebra under 40 % of the median volume is flagged "small"

AT_EDGE = "touches scan border"
SMALL = "small"
GAP_ABOVE = "gap above"
LOW_CONFIDENCE = "low confidence"
MISSED_ABOVE = "possible missed vertebra above"
L6_CANDIDATE = "L6 candidate"
T13_CANDIDATE = "T13 candidate"
RIBS_UNANCHORED = "thoracic (ribs), level not anchored"
UNIDENTIFIED = "level not identified"

FLAG_HELP = {AT_EDGE: "touches the scan border: may be cut off",
             SMALL: "much smaller than the median vertebra: check the segmentation",
             GAP_ABOVE: "the level above is missing: check the numbering",
             LOW_CONFIDENCE: "the analysis is unsure of this vertebra: check its outline and number",
             MISSED_ABOVE: "the spacing to the vertebra above says one was missed: check the numbering",
             L6_CANDIDATE: "a sixth lumbar vertebra (transitional): confirm the count from C2 or the sacrum",
             T13_CANDIDATE: "a thirteenth thoracic vertebra (transitional): confirm the rib count",
             RIBS_UNANCHORED: "it bears ribs, but neither the last rib pair nor the sacrum is in view: "
                              "count the levels from C2 or T12",
             UNIDENTIFIED: "no labeler was run: the level is a placeholder"}


@dataclass(frozen=True)
class VertebraRow:
    label_id: int
    name: str
    volume_ml: float
    centroid: np.ndarray          # LPS mm
    flags: tuple[str, ...]
    confidence: float | None = None   # from the analysis; None when loaded or edited since


def craniocaudal_key(label_id: int) -> tuple[int, int]:
    """Vertebrae in anatomical order, each disc after the vertebra above it, unknown ids last."""
    base = label_id - DISC_OFFSET if is_disc(label_id) else label_id
    rank = CRANIOCAUDAL.index(base) if base in CRANIOCAUDAL else len(CRANIOCAUDAL) + base
    return rank, int(is_disc(label_id))


def vertebra_rows(labels: LabelMap, analysis=None) -> list[VertebraRow]:
    """One row per label: voxel counts and centroids from one pass over the labelled voxels.
    ``analysis`` ({id: VertebraResult}) adds confidences and the pipeline's own flags."""
    analysis = analysis or {}
    flat = labels.array.reshape(-1)
    where = np.flatnonzero(flat)
    if where.size == 0:
        return []
    values = flat[where].astype(np.int64)
    counts = np.bincount(values)
    ijk = np.unravel_index(where, labels.shape)
    sums = np.stack([np.bincount(values, weights=axis, minlength=counts.size) for axis in ijk], axis=1)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) / 1000.0
    ids = sorted((int(i) for i in np.nonzero(counts)[0]), key=craniocaudal_key)
    edge = _ids_on_border(labels.array)
    median = float(np.median([counts[i] for i in ids if not is_disc(i)] or [1]))
    rows = []
    for n, label_id in enumerate(ids):
        flags = []
        if label_id in edge:
            flags.append(AT_EDGE)
        if not is_disc(label_id) and counts[label_id] < SMALL_FRACTION * median:
            flags.append(SMALL)
        gap = _gap_above(label_id, ids[:n])
        if gap:
            flags.append(gap)
        flags.extend(_analysis_flags(label_id, analysis.get(label_id), flags))
        result = analysis.get(label_id)
        centroid = labels.index_to_lps(sums[label_id] / counts[label_id])
        rows.append(VertebraRow(label_id, labels.names.get(label_id, str(label_id)),
                                counts[label_id] * voxel_ml, centroid, tuple(flags),
                                None if result is None else float(result.confidence)))
    return rows


def _analysis_flags(label_id: int, result, flags: list[str]) -> list[str]:
    """Transitional-vertebra candidates, low confidence, and the pipeline's flags not shown yet."""
    extra = {25: [L6_CANDIDATE], 28: [T13_CANDIDATE]}.get(label_id, [])
    if result is not None:
        if result.confidence < LOW_CONFIDENCE_BELOW:
            extra.append(LOW_CONFIDENCE)
        extra.extend(result.flags)
    seen = set(flags)
    return [f for f in dict.fromkeys(extra) if f not in seen]


def review_summary(rows: list[VertebraRow]) -> list[str]:
    """One line per flagged vertebra, for the warnings banner."""
    return [f"{row.name}: {', '.join(row.flags)}" for row in rows if row.flags]


def _ids_on_border(array: np.ndarray) -> set[int]:
    faces = [array[0], array[-1], array[:, 0], array[:, -1], array[:, :, 0], array[:, :, -1]]
    return {int(v) for face in faces for v in np.unique(face) if v != 0}


def _gap_above(label_id: int, above: list[int]) -> str:
    """'gap above' where the previous vertebra shown is not the next level up."""
    vertebrae = [i for i in above if not is_disc(i) and i in CRANIOCAUDAL]
    if is_disc(label_id) or label_id not in CRANIOCAUDAL or not vertebrae:
        return ""
    between = CRANIOCAUDAL[CRANIOCAUDAL.index(vertebrae[-1]) + 1:CRANIOCAUDAL.index(label_id)]
    missing = [i for i in between if i not in (25, 28)]      # L6 / T13 are rare variants
    return GAP_ABOVE if missing else ""
