"""Is a vertebra's confidence worth what it says? Each predicted vertebra that overlaps the reference
is right when the reference label it mostly covers has its id; vertebrae outside the labelled part of
a scan cannot be judged and are left out."""
from __future__ import annotations

import numpy as np

BINS = ((0.9, 1.01), (0.5, 0.9), (0.0, 0.5))
MIN_JUDGED_OVERLAP = 0.2


def judged_vertebrae(pred: np.ndarray, ref: np.ndarray, vertebrae) -> list[tuple[float, bool]]:
    """(confidence, right) per predicted vertebra that overlaps the reference (same grid)."""
    out = []
    for v in vertebrae:
        inside = ref[pred == v.id]
        covered = inside[inside > 0]
        if inside.size == 0 or covered.size < MIN_JUDGED_OVERLAP * inside.size:
            continue
        ids, counts = np.unique(covered, return_counts=True)
        out.append((float(v.confidence), int(ids[np.argmax(counts)]) == v.id))
    return out


def calibration_table(pairs: list[tuple[float, bool]]) -> list[dict]:
    """Share right per confidence bin (the product's promise: >= 90 % right at confidence >= 0.9)."""
    rows = []
    for lo, hi in BINS:
        inside = [right for conf, right in pairs if lo <= conf < hi]
        rows.append({"confidence": f"{lo:.1f}-{min(hi, 1.0):.1f}", "vertebrae": len(inside),
                     "right": round(float(np.mean(inside)), 3) if inside else None})
    return rows
