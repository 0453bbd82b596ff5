"""Voxel overlap between two label maps on one grid: one joint histogram serves every label.

The joint histogram counts, for every (reference id, predicted id) pair, the voxels where the
reference holds one and the prediction the other. Dice, IoU, the binary confusion (TP, FP, FN, TN)
and the best-overlap reference level of each predicted vertebra all come from it, so the full
volume is read once, however many labels there are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_BINCOUNT_MAX_BINS = 1 << 22


@dataclass(frozen=True)
class JointCounts:
    """Voxel counts of (reference id, predicted id) pairs on the reference grid."""

    pairs: dict[tuple[int, int], int]
    total: int

    @classmethod
    def of(cls, ref: np.ndarray, pred: np.ndarray) -> "JointCounts":
        if ref.shape != pred.shape:
            raise ValueError(f"shapes differ: {ref.shape} vs {pred.shape}")
        foreground = (ref != 0) | (pred != 0)
        r = ref[foreground].astype(np.int64)
        p = pred[foreground].astype(np.int64)
        width = int(max(r.max(initial=0), p.max(initial=0))) + 1
        codes = r * width + p
        if width * width <= _BINCOUNT_MAX_BINS:
            counts = np.bincount(codes, minlength=width * width)
            values = np.flatnonzero(counts)
            counts = counts[values]
        else:  # very large ids: sort instead of a huge histogram
            values, counts = np.unique(codes, return_counts=True)
        pairs = {(int(v // width), int(v % width)): int(n) for v, n in zip(values, counts)}
        background = ref.size - int(foreground.sum())
        if background:
            pairs[(0, 0)] = background
        return cls(pairs=pairs, total=int(ref.size))

    def ref_sizes(self) -> dict[int, int]:
        """Voxels of each reference id (background included as 0)."""
        sizes: dict[int, int] = {}
        for (r, _), n in self.pairs.items():
            sizes[r] = sizes.get(r, 0) + n
        return sizes

    def pred_sizes(self) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for (_, p), n in self.pairs.items():
            sizes[p] = sizes.get(p, 0) + n
        return sizes

    def ref_count(self, label: int) -> int:
        return sum(n for (r, _), n in self.pairs.items() if r == label)

    def pred_count(self, label: int) -> int:
        return sum(n for (_, p), n in self.pairs.items() if p == label)

    def intersection(self, ref_label: int, pred_label: int) -> int:
        return self.pairs.get((ref_label, pred_label), 0)

    def ref_ids(self) -> set[int]:
        return {r for (r, _) in self.pairs if r != 0}

    def pred_ids(self) -> set[int]:
        return {p for (_, p) in self.pairs if p != 0}


def dice(intersection: int, size_a: int, size_b: int) -> float:
    """2|A∩B| / (|A| + |B|); two empty sets agree perfectly (1.0)."""
    total = size_a + size_b
    return 1.0 if total == 0 else 2.0 * intersection / total


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks of one shape."""
    return dice(int(np.count_nonzero(a & b)), int(np.count_nonzero(a)), int(np.count_nonzero(b)))


def iou(intersection: int, size_a: int, size_b: int) -> float:
    """|A∩B| / |A∪B|; two empty sets agree perfectly (1.0)."""
    union = size_a + size_b - intersection
    return 1.0 if union == 0 else intersection / union


@dataclass(frozen=True)
class BinaryConfusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, counts: JointCounts, foreground_ids) -> "BinaryConfusion":
        """The spine mask is every voxel whose id is in ``foreground_ids`` (in either map)."""
        fg = set(int(i) for i in foreground_ids)
        tp = fp = fn = 0
        for (r, p), n in counts.pairs.items():
            in_ref, in_pred = r in fg, p in fg
            tp += n if in_ref and in_pred else 0
            fp += n if in_pred and not in_ref else 0
            fn += n if in_ref and not in_pred else 0
        return cls(tp=tp, fp=fp, fn=fn, tn=counts.total - tp - fp - fn)

    @property
    def dice(self) -> float:
        return dice(self.tp, self.tp + self.fn, self.tp + self.fp)

    @property
    def iou(self) -> float:
        return iou(self.tp, self.tp + self.fn, self.tp + self.fp)

    @property
    def pixel_accuracy(self) -> float:
        """PA = (TP + TN) / all voxels."""
        return (self.tp + self.tn) / max(self.tp + self.tn + self.fp + self.fn, 1)

    @property
    def false_positive_dice(self) -> float | None:
        """FPD = FP / (FP + TN): the share of true background called spine."""
        denominator = self.fp + self.tn
        return None if denominator == 0 else self.fp / denominator

    @property
    def false_negative_dice(self) -> float | None:
        """FND = FN / (TP + FN): the share of true spine missed."""
        denominator = self.tp + self.fn
        return None if denominator == 0 else self.fn / denominator


Box = tuple[slice, slice, slice]


def label_boxes(array: np.ndarray) -> dict[int, Box]:
    """Bounding box (as index slices) of every positive id, found in one pass over the array."""
    top = int(array.max(initial=0))
    if top <= 0:
        return {}
    found = ndimage.find_objects(array, max_label=top)
    return {i + 1: box for i, box in enumerate(found) if box is not None}


def union_box(boxes, shape, pad: int = 1) -> Box | None:
    """Smallest box holding all ``boxes`` (None ones skipped), grown by ``pad`` voxels, clipped."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    lo = [max(min(b[d].start for b in boxes) - pad, 0) for d in range(3)]
    hi = [min(max(b[d].stop for b in boxes) + pad, shape[d]) for d in range(3)]
    return tuple(slice(a, b) for a, b in zip(lo, hi))
