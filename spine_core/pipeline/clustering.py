"""M2 detection post-processing (numpy + scipy only): per-slice heatmap peaks -> 3D points ->
DBSCAN (scipy cKDTree) -> vertebra centres.

Clusters with fewer than ``min_fraction`` (0.2) x the largest cluster's points are dropped; a
second DBSCAN on box sizes keeps the main class of boxes (optional); a centre is its cluster's mean.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def slice_peaks(heatmap: np.ndarray, threshold: float = 0.3, radius: int = 2) -> np.ndarray:
    """Local maxima of a 2D probability map above ``threshold``: (n, 3) rows (row, col, score)."""
    peaks = (heatmap == ndimage.maximum_filter(heatmap, size=2 * radius + 1)) & (heatmap >= threshold)
    rows, cols = np.nonzero(peaks)
    return np.column_stack([rows, cols, heatmap[rows, cols]]).astype(np.float64)


def dbscan(points: np.ndarray, eps: float, min_samples: int = 3) -> np.ndarray:
    """Cluster labels 0..k-1 per point, -1 for noise (Ester et al. 1996, with a KD-tree)."""
    points = np.asarray(points, np.float64)
    labels = np.full(len(points), -1, int)
    if not len(points):
        return labels
    neighbours = cKDTree(points).query_ball_point(points, eps)
    core = np.array([len(n) >= min_samples for n in neighbours])
    cluster = 0
    for start in np.flatnonzero(core):
        if labels[start] != -1:
            continue
        labels[start] = cluster
        queue = deque([start])
        while queue:
            p = queue.popleft()
            if not core[p]:
                continue
            for q in neighbours[p]:
                if labels[q] == -1:
                    labels[q] = cluster
                    queue.append(q)
        cluster += 1
    return labels


def main_size_class(sizes: np.ndarray, eps: float, min_samples: int = 3) -> np.ndarray:
    """Boolean mask of the boxes in the largest DBSCAN cluster of (height, width)."""
    labels = dbscan(sizes, eps, min_samples)
    if (labels < 0).all():
        return np.ones(len(sizes), bool)
    return labels == np.bincount(labels[labels >= 0]).argmax()


def cluster_centres(points_mm: np.ndarray, eps_mm: float = 6.0, min_samples: int = 3,
                    min_fraction: float = 0.2, sizes: np.ndarray | None = None,
                    size_eps: float | None = None, axis_scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """3D centres (k, 3), sorted by the last coordinate descending (cranial first in LPS),
    from detections ``points_mm`` (n, 3) in mm; ``sizes`` (n, 2) enables the size filter.
    ``axis_scale`` shrinks distances along an axis for DBSCAN only (centres stay in mm)."""
    points = np.asarray(points_mm, np.float64)
    if sizes is not None and size_eps and len(points):
        points = points[main_size_class(np.asarray(sizes, float), size_eps, min_samples)]
    labels = dbscan(points * np.asarray(axis_scale, np.float64), eps_mm, min_samples)
    if (labels < 0).all():
        return np.zeros((0, 3))
    counts = np.bincount(labels[labels >= 0])
    keep = np.flatnonzero(counts >= min_fraction * counts.max())
    centres = np.array([points[labels == k].mean(axis=0) for k in keep])
    return centres[np.argsort(-centres[:, 2])]


def peaks_to_points(peaks_per_slice: dict[int, np.ndarray], spacing_mm) -> np.ndarray:
    """Sagittal-slice peaks {slice index i: (n, 3) (j, k, score)} -> (N, 3) LPS-grid mm points."""
    rows = [np.column_stack([np.full(len(p), i), p[:, 0], p[:, 1]]) for i, p in peaks_per_slice.items() if len(p)]
    if not rows:
        return np.zeros((0, 3))
    return np.concatenate(rows) * np.asarray(spacing_mm, float)
