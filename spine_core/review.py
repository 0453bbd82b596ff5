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
FRACTURE = "suspected fracture"
OUT_OF_ORDER = "out of order"
COUNT_UNPROVEN = "counted through a crossing"
# The flags vertebra_rows derives itself, from the label map (again after every edit) and the confidence;
# the others come from the analysis and are kept with its result.
FROM_LABELS = frozenset({AT_EDGE, SMALL, GAP_ABOVE, FRACTURE, OUT_OF_ORDER, COUNT_UNPROVEN, LOW_CONFIDENCE,
                         L6_CANDIDATE, T13_CANDIDATE})

# Case-level QA flags (batch runs, centroids.json "case", the workstation's banner): "kind: detail".
CASE_INPUT = "input problem"
CASE_LOW_CONFIDENCE = "low confidence"
CASE_GAP = "level missing between found ones"
CASE_FEWER = "fewer vertebrae than the field of view implies"
CASE_MORE = "more vertebrae than their spacing implies"
CASE_TRANSITIONAL = "L6 / T13 candidate"
CASE_AT_EDGE = "vertebra at the scan edge"
CASE_METAL = "metal"
CASE_FRACTURE = "suspected fracture"
CASE_NUMBERING = "numbering not anchored"
CASE_NOTE = "analysis note"
CASE_SEGMENTATION = "segmentation"
CASE_NONE_FOUND = "no vertebra found"
CASE_FAILED = "processing failure"
CASE_REFUSED = "refused"
# Informational only: a partial vertebra at the edge of a scan is normal and needs no person.
INFO_ONLY = frozenset({CASE_AT_EDGE, CASE_NOTE})
# The start of the pipeline's note when no anatomical anchor fixes the numbering (spine_core.pipeline.ribs).
NOT_ANCHORED_NOTE = "The last rib pair is not in view"
METAL_HU = 2500.0            # above cortical bone (<= ~2000 HU): implants, dental work, streak cores
METAL_MIN_ML = 0.5          # one pedicle screw is ~1.5 ml; specks of calcification or streak peaks stay below
FRACTURE_HEIGHT_RATIO = 0.8  # Genant grade 1 starts at 20 % height loss against the neighbours
# A body height read from labels can be off by a voxel at each endplate (where the grid samples it, and
# partial volume), so a loss of under two voxels along the column may be the grid, not the bone: on
# 4-5 mm slices that hides a grade 1 lumbar loss, which such a scan cannot show.
RESOLVED_VOXELS = 2.0

FLAG_HELP = {AT_EDGE: "touches the scan border: may be cut off",
             SMALL: "much smaller than the median vertebra: check the segmentation",
             GAP_ABOVE: "the level above is missing: check the numbering",
             LOW_CONFIDENCE: "the analysis is unsure of this vertebra: check its outline and number",
             MISSED_ABOVE: "the spacing to the vertebra above says one was missed: check the numbering",
             L6_CANDIDATE: "a sixth lumbar vertebra (transitional): confirm the count from C2 or the sacrum",
             T13_CANDIDATE: "a thirteenth thoracic vertebra (transitional): confirm the rib count",
             RIBS_UNANCHORED: "it bears ribs, but neither the last rib pair nor the sacrum is in view: "
                              "count the levels from C2 or T12",
             UNIDENTIFIED: "no labeler was run: the level is a placeholder",
             FRACTURE: "its body is at least 20 % lower than its neighbours' (Genant grade 1 or more), by "
                       "more than the slices can fake: check for a compression fracture or an incomplete "
                       "segmentation",
             OUT_OF_ORDER: "its centre lies above the vertebra named above it (or below the one named below "
                           "it): check its outline and number",
             COUNT_UNPROVEN: "two vertebrae of this result lie the wrong way round, so the count that named "
                             "this one is unproven: check the levels from C2, the last rib or the sacrum"}

CASE_FLAG_HELP = {
    CASE_INPUT: "the scan was read with a warning (series choice, geometry, modality): check the input",
    CASE_LOW_CONFIDENCE: f"vertebrae below confidence {LOW_CONFIDENCE_BELOW}: check their outline and number",
    CASE_GAP: "a level is missing between found vertebrae: check the numbering",
    CASE_FEWER: "the scan shows more spine than was found: vertebrae were missed at an end",
    CASE_MORE: "vertebrae lie closer together than vertebrae do: a split or duplicated vertebra",
    CASE_TRANSITIONAL: "a sixth lumbar or thirteenth thoracic vertebra: confirm the count",
    CASE_AT_EDGE: "vertebrae cut by the scan's edge (information only)",
    CASE_METAL: f"metal (> {METAL_HU:.0f} HU) near the spine: implants or artefacts can mislead the analysis",
    CASE_FRACTURE: "a body at least 20 % lower than its neighbours: compression fracture or bad segmentation",
    CASE_NUMBERING: "the last rib pair (the anchor the analysis counts from) is not in view: confirm the "
                    "levels against C2 or the sacrum",
    CASE_NOTE: "what the analysis did on the way (information only)",
    CASE_SEGMENTATION: "a vertebra much smaller than the others: check its segmentation",
    CASE_NONE_FOUND: "the analysis found no vertebra",
    CASE_FAILED: "the analysis failed: see the case's log",
    CASE_REFUSED: "the input was refused: see the reason",
}


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
    edge = ids_on_border(labels.array)
    median = float(np.median([counts[i] for i in ids if not is_disc(i)] or [1]))
    heights = body_heights_mm(labels)
    too_small = {i for i in ids if counts[i] < SMALL_FRACTION * median}
    low = low_bodies(heights, edge | too_small, craniocaudal_voxel_mm(labels.affine))
    crossed = _out_of_order([i for i in ids if not is_disc(i)], sums, counts, labels)
    unproven = counted_through(ids, crossed)
    rows = []
    for n, label_id in enumerate(ids):
        flags = []
        if label_id in edge:
            flags.append(AT_EDGE)
        if not is_disc(label_id) and label_id not in edge and counts[label_id] < SMALL_FRACTION * median:
            flags.append(SMALL)
        gap = _gap_above(label_id, ids[:n])
        if gap:
            flags.append(gap)
        if label_id in low:
            flags.append(FRACTURE)
        if label_id in crossed:
            flags.append(OUT_OF_ORDER)
        elif label_id in unproven:
            flags.append(COUNT_UNPROVEN)
        flags.extend(_analysis_flags(label_id, analysis.get(label_id), flags))
        result = analysis.get(label_id)
        centroid = labels.index_to_lps(sums[label_id] / counts[label_id])
        rows.append(VertebraRow(label_id, labels.names.get(label_id, str(label_id)),
                                counts[label_id] * voxel_ml, centroid, tuple(flags),
                                None if result is None else float(result.confidence)))
    return rows


def _out_of_order(vertebrae: list[int], sums: np.ndarray, counts: np.ndarray, labels: LabelMap) -> set[int]:
    if len(vertebrae) < 2:
        return set()
    return out_of_order(vertebrae, labels.index_to_lps(np.array([sums[i] / counts[i] for i in vertebrae]))[:, 2])


def counted_through(ids, crossed: set[int]) -> set[int]:
    """The vertebrae (not discs) of a result whose level was counted through a crossed pair: every one
    but the pair, once any pair of ``ids`` is crossed."""
    return {i for i in ids if crossed and i not in crossed and not is_disc(i)}


def out_of_order(vertebrae: list[int], heights_mm, tolerance_mm: float = 3.0) -> set[int]:
    """Neighbours in anatomical order (``vertebrae``, craniocaudal) whose centroids' S coordinates
    (``heights_mm``) lie the wrong way round."""
    crossed = set()
    for upper, lower, z_upper, z_lower in zip(vertebrae, vertebrae[1:], heights_mm, heights_mm[1:]):
        if z_lower > z_upper + tolerance_mm:
            crossed |= {upper, lower}
    return crossed


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


def ids_on_border(array: np.ndarray) -> set[int]:
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


def body_heights_mm(labels: LabelMap) -> dict[int, float]:
    """Each vertebra's body height: the lower of the superior-inferior extent of its anterior third
    and of its middle third (a wedge loses the front, a crush both), from its voxels in LPS mm."""
    from scipy import ndimage

    heights = {}
    array = labels.array
    boxes = ndimage.find_objects(array if np.issubdtype(array.dtype, np.integer) else array.astype(np.int32))
    for index, box in enumerate(boxes):
        label_id = index + 1
        if box is None or label_id not in CRANIOCAUDAL:
            continue
        ijk = np.argwhere(array[box] == label_id) + [s.start for s in box]
        if len(ijk) < 50:
            continue
        lps = ijk @ labels.affine[:3, :3].T + labels.affine[:3, 3]
        p, s = lps[:, 1], lps[:, 2]
        body = lps[p < np.median(p)]             # the anterior half holds the body, not the arch
        if len(body) < 30:
            continue
        pb = body[:, 1]
        cut = np.percentile(pb, [0, 100 / 3, 200 / 3])
        thirds = [body[(pb >= cut[0]) & (pb < cut[1])], body[(pb >= cut[1]) & (pb < cut[2])]]
        extents = [float(np.percentile(t[:, 2], 98) - np.percentile(t[:, 2], 2)) for t in thirds if len(t) >= 10]
        if extents and np.ptp(s) > 0:
            heights[label_id] = min(extents)
    return heights


def craniocaudal_voxel_mm(affine, axis=(0.0, 0.0, 1.0)) -> float:
    """How far one voxel reaches along ``axis`` (LPS unit vector; head to foot by default: an axial
    scan's slice spacing)."""
    return float(np.sum(np.abs(np.asarray(axis, float) @ np.asarray(affine)[:3, :3])))


def resolved_loss(loss: float, reference_mm: float, voxel_mm: float) -> bool:
    """Whether a height loss (fraction of ``reference_mm``) is larger than the grid can fake
    (``RESOLVED_VOXELS`` voxels of ``voxel_mm`` along the column)."""
    return loss * reference_mm >= RESOLVED_VOXELS * voxel_mm


def low_bodies(heights: dict[int, float], exclude=frozenset(), voxel_mm: float = 0.0) -> dict[int, float]:
    """{id: height loss fraction} for bodies lower than FRACTURE_HEIGHT_RATIO x the median of up to two
    neighbours on each side (the same region only: cervical bodies are lower than thoracic ones), by
    more than the grid can fake (``resolved_loss``; ``voxel_mm``: the voxel's head-to-foot reach)."""
    def region(i):
        return 0 if i <= 7 else (1 if i <= 19 or i == 28 else 2)

    order = [i for i in CRANIOCAUDAL if i in heights and i not in exclude]
    low = {}
    for n, label_id in enumerate(order):
        near = [heights[j] for j in order[max(0, n - 2):n] + order[n + 1:n + 3] if region(j) == region(label_id)]
        if len(near) < 2 or label_id in (1, 2):      # C1 has no body, C2 carries the dens
            continue
        reference = float(np.median(near))
        loss = 1.0 - heights[label_id] / reference if reference > 0 else 0.0
        if loss > 1.0 - FRACTURE_HEIGHT_RATIO and resolved_loss(loss, reference, voxel_mm):
            low[label_id] = loss
    return low


def genant_grade(loss: float) -> int:
    """Genant semi-quantitative grade from the fraction of height lost."""
    return 0 if loss < 0.2 else 1 if loss < 0.25 else 2 if loss < 0.4 else 3


@dataclass(frozen=True)
class CaseReview:
    status: str                     # ok / review / failed
    flags: tuple[str, ...]          # "kind: detail", kinds from CASE_FLAG_HELP

    def as_dict(self) -> dict:
        return {"status": self.status, "flags": list(self.flags)}


# Case flags the vertebra table already shows row by row; the banner lists only the others.
ROW_KINDS = frozenset({CASE_LOW_CONFIDENCE, CASE_GAP, CASE_TRANSITIONAL, CASE_FRACTURE, CASE_SEGMENTATION,
                       CASE_AT_EDGE})


def case_banner(case: CaseReview) -> list[str]:
    """The workstation's banner lines for a case: its QA status and the flags no table row shows."""
    return [f"QA status: {case.status}"] + [f for f in case.flags if f.split(":", 1)[0] not in ROW_KINDS]


def case_review(rows: list[VertebraRow], volume=None, notes=(), labels: LabelMap | None = None) -> CaseReview:
    """A case's QA flags and status from its review rows, the analysis' notes (``SegmentResult.warnings``)
    and the scan (its reader's warnings, metal, the field of view): "review" when any flag other than
    information-only ones is raised."""
    flags: list[str] = []

    def add(kind: str, names) -> None:
        names = list(dict.fromkeys(names))
        if names:
            flags.append(f"{kind}: {', '.join(names)}")

    inputs = list(volume.metadata.warnings) if volume is not None else []
    add(CASE_INPUT, inputs)
    notes = [n for n in notes if n not in inputs]
    unanchored = [n for n in notes if n.startswith(NOT_ANCHORED_NOTE)]
    vertebrae = [r for r in rows if not is_disc(r.label_id)]
    if not vertebrae:
        flags.append(f"{CASE_NONE_FOUND}: 0 vertebrae")
    add(CASE_LOW_CONFIDENCE, [r.name for r in vertebrae if LOW_CONFIDENCE in r.flags])
    add(CASE_GAP, [f"above {r.name}" for r in vertebrae if GAP_ABOVE in r.flags or MISSED_ABOVE in r.flags])
    add(CASE_TRANSITIONAL, [r.name for r in vertebrae if L6_CANDIDATE in r.flags or T13_CANDIDATE in r.flags])
    add(CASE_FRACTURE, [r.name for r in vertebrae if FRACTURE in r.flags])
    add(CASE_NUMBERING, ([r.name for r in vertebrae if RIBS_UNANCHORED in r.flags][:1]
                         or (["the last rib pair is not in view"] if unanchored and vertebrae else [])))
    add(CASE_SEGMENTATION, [f"{r.name} small" for r in vertebrae if SMALL in r.flags]
        + [f"{r.name} out of order" for r in vertebrae if OUT_OF_ORDER in r.flags])
    if labels is not None:
        flags.extend(_count_flags(vertebrae, labels))
    if volume is not None and labels is not None:
        metal = metal_near_spine_ml(volume, labels)
        if metal >= METAL_MIN_ML:
            flags.append(f"{CASE_METAL}: {metal:.1f} ml near the spine")
    add(CASE_AT_EDGE, [r.name for r in vertebrae if AT_EDGE in r.flags])
    for note in dict.fromkeys(n for n in notes if n not in unanchored):
        add(CASE_NOTE, [note.rstrip(".")])
    needs_person = any(f.split(":", 1)[0] not in INFO_ONLY for f in flags)
    return CaseReview("review" if needs_person else "ok", tuple(flags))


def _count_flags(vertebrae: list[VertebraRow], labels: LabelMap) -> list[str]:
    """More or fewer vertebrae than the spine in view implies, from the spacing of the centroids
    (vertebrae cut by the edge or much too small say nothing of the spacing, but do mark the ends)."""
    numbered = [r for r in vertebrae if r.label_id in CRANIOCAUDAL and r.label_id != 26]
    known = [r for r in numbered if AT_EDGE not in r.flags and SMALL not in r.flags]
    if len(known) < 3:
        return []
    s = np.array([r.centroid[2] for r in known])
    steps = np.abs(np.diff(s))
    pitch = float(np.median(steps))
    out = []
    close = [f"{a.name}/{b.name}" for a, b, d in zip(known, known[1:], steps) if d < 0.5 * pitch]
    if close:
        out.append(f"{CASE_MORE}: {', '.join(close)}")
    corners = np.array([[i, j, k, 1] for i in (0, labels.shape[0] - 1) for j in (0, labels.shape[1] - 1)
                        for k in (0, labels.shape[2] - 1)], float) @ labels.affine.T
    top, bottom = corners[:, 2].max(), corners[:, 2].min()
    highest, lowest = numbered[0], numbered[-1]
    ends = []
    if highest.label_id != 1 and top - highest.centroid[2] > 1.5 * pitch:
        ends.append(f"{(top - highest.centroid[2]) / pitch:.0f} levels of scan above {highest.name}")
    sacrum_found = any(r.label_id == 26 for r in vertebrae)
    if not sacrum_found and lowest.label_id not in (24, 25) and lowest.centroid[2] - bottom > 1.5 * pitch:
        ends.append(f"{(lowest.centroid[2] - bottom) / pitch:.0f} levels of scan below {lowest.name}")
    if ends:
        out.append(f"{CASE_FEWER}: {'; '.join(ends)}")
    return out


def metal_near_spine_ml(volume, labels: LabelMap, margin_mm: float = 20.0) -> float:
    """Volume (ml) of voxels above METAL_HU within ``margin_mm`` of the labels' bounding box (CT)."""
    if (volume.metadata.modality or "CT") != "CT" or not labels.same_grid(volume, atol_mm=1e-2):
        return 0.0
    found = np.nonzero(labels.array)
    if len(found[0]) == 0:
        return 0.0
    pad = np.ceil(margin_mm / np.asarray(volume.spacing)).astype(int)
    box = tuple(slice(max(int(f.min()) - p, 0), int(f.max()) + p + 1) for f, p in zip(found, pad))
    count = int(np.count_nonzero(volume.array[box] > METAL_HU))
    return count * float(np.prod(volume.spacing)) / 1000.0
