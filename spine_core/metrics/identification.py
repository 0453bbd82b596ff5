"""Which vertebra is which: centroids, VerSe identification, instance matching, level shifts.

Only vertebrae (VerSe ids 1-26 and 28 = T13, ``spine_core.labels.VERTEBRAE``) take part here;
discs (ids > 100) are scored for overlap elsewhere but never for identification, since a disc's
identity follows from its neighbours.

- Identification (VerSe): a reference vertebra is identified when the predicted vertebra centroid
  closest to its centroid carries the same id and lies within 20 mm.
- Instances: each connected component (26-connectivity) of each predicted vertebra id is an
  instance; each reference vertebra id is one instance. A predicted instance matches a reference
  instance when their IoU is > 0.5 (strictly), which makes the matching one-to-one. An instance
  is correctly identified when it is matched and the ids agree. Localization (Acc@1.5/2/3 mm)
  uses the same matching, so it measures where vertebrae were found whatever they were called.
- Level shift: every predicted vertebra is paired with the reference vertebra it overlaps most
  (when that holds at least half of it); the shift is the predicted level minus the reference
  level in cranio-caudal order, +1 meaning "called one level too low" (reference L1 called L2).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spine_core.labels import CRANIOCAUDAL, L6, T13, VERTEBRAE
from spine_core.metrics.overlap import Box, JointCounts, iou
from spine_core.volume import Volume

_ALL_NEIGHBOURS = np.ones((3, 3, 3), dtype=bool)


def vertebra_ids(ids) -> list[int]:
    return sorted(int(i) for i in ids if int(i) in VERTEBRAE)


def label_centroids(labels: Volume, boxes: dict[int, Box], ids) -> tuple[dict, dict]:
    """Centroid (LPS mm) and voxel count of each id, each found inside its own bounding box."""
    centroids, sizes = {}, {}
    for label in ids:
        box = boxes.get(label)
        if box is None:
            continue
        index = np.argwhere(labels.array[box] == label)
        centroids[label] = labels.index_to_lps(index.mean(axis=0) + [s.start for s in box])
        sizes[label] = len(index)
    return centroids, sizes


def identified(ref_centroids: dict[int, np.ndarray], pred_centroids: dict[int, np.ndarray],
               radius_mm: float = 20.0) -> dict[int, bool]:
    """VerSe identification of each reference vertebra (see module docstring)."""
    result = {}
    pred_ids = list(pred_centroids)
    pred_points = np.array([pred_centroids[i] for i in pred_ids]).reshape(-1, 3)
    for label, centre in ref_centroids.items():
        if not pred_ids:
            result[label] = False
            continue
        distances = np.linalg.norm(pred_points - centre, axis=1)
        nearest = int(np.argmin(distances))
        result[label] = pred_ids[nearest] == label and float(distances[nearest]) <= radius_mm
    return result


def level_order(present_ids) -> dict[int, int]:
    """Position of each vertebra cranio-caudally; T13 and L6 count only where a map holds them."""
    present = set(present_ids)
    order = [v for v in CRANIOCAUDAL if v not in (T13, L6) or v in present]
    return {v: i for i, v in enumerate(order)}


def level_offsets(counts: JointCounts, pred_ids, ref_ids) -> dict[int, int]:
    """For each predicted vertebra solidly on one reference vertebra: its level minus that one's."""
    order = level_order(set(pred_ids) | set(ref_ids))
    offsets = {}
    for p in pred_ids:
        overlaps = {r: counts.intersection(r, p) for r in ref_ids}
        best = max(overlaps, key=overlaps.get, default=None)
        size = counts.pred_count(p)
        if best is not None and size and overlaps[best] >= 0.5 * size:
            offsets[p] = order[p] - order[best]
    return offsets


def level_shift(offsets: dict[int, int], agreement: float = 0.75) -> int | None:
    """The common offset when at least ``agreement`` of the paired vertebrae share it, else None."""
    if not offsets:
        return None
    shift, votes = Counter(offsets.values()).most_common(1)[0]
    return int(shift) if votes >= agreement * len(offsets) else None


@dataclass(frozen=True)
class InstanceMatch:
    ref_id: int
    pred_id: int
    iou: float
    centroid_lps: np.ndarray


def _component_matches(ref: np.ndarray, crop_mask: np.ndarray, box: Box, ref_sizes: dict[int, int],
                       min_iou: float):
    """(component index, reference id, IoU) for components of ``crop_mask`` that match."""
    components, n = ndimage.label(crop_mask, structure=_ALL_NEIGHBOURS)
    if n == 0:
        return components, []
    ref_crop = ref[box]
    inside = components > 0
    width = int(ref_crop.max(initial=0)) + 1
    codes, overlap = np.unique(components[inside].astype(np.int64) * width + ref_crop[inside],
                               return_counts=True)
    sizes = np.bincount(components[inside], minlength=n + 1)
    found = []
    for code, inter in zip(codes, overlap):
        component, ref_id = divmod(int(code), width)
        if ref_id not in ref_sizes:
            continue
        score = iou(int(inter), int(sizes[component]), ref_sizes[ref_id])
        if score > min_iou:
            found.append((component, ref_id, score))
    return components, found


def match_instances(ref: Volume, pred: np.ndarray, pred_boxes: dict[int, Box], ref_sizes: dict[int, int],
                    min_iou: float = 0.5) -> dict[int, InstanceMatch]:
    """Reference vertebra id -> the predicted instance matched to it (``pred`` on ``ref``'s grid)."""
    matches = {}
    for pred_id in vertebra_ids(pred_boxes):
        box = pred_boxes[pred_id]
        components, found = _component_matches(ref.array, pred[box] == pred_id, box, ref_sizes, min_iou)
        for component, ref_id, score in found:
            index = np.argwhere(components == component).mean(axis=0) + [s.start for s in box]
            matches[ref_id] = InstanceMatch(ref_id, pred_id, score, ref.index_to_lps(index))
    return matches
