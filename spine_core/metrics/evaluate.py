"""``evaluate``: a predicted vertebra label map scored against a reference one.

PRED is resampled onto REF's grid through patient (LPS) space with nearest neighbour before any
voxel metric (Dice, IoU, surface distances, instances, PA/FPD/FND), so the two may come on
different grids (spacing, orientation, field of view). Centroids and volumes of the prediction are
measured on its own grid, in LPS millimetres, so resampling does not move them.

Scope: vertebrae (VerSe ids 1-26, 28) are scored fully; discs (ids > 100) get overlap rows of their
own and take no part in identification, the binary spine mask or the mean Dice. Other ids are
ignored and named in the report's notes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spine_core.errors import GridMismatch, UnsupportedImage
from spine_core.labels import VERTEBRAE, is_disc, label_name
from spine_core.metrics import identification as ident
from spine_core.metrics.overlap import (BinaryConfusion, JointCounts, dice, iou, label_boxes,
                                        union_box)
from spine_core.metrics.report import EvalReport, EvalSummary, OverlapRow, VertebraRow
from spine_core.metrics.surface import label_surface_distances
from spine_core.progress import NullProgress, Progress
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume

ACC_THRESHOLDS_MM = (1.5, 2.0, 3.0)


@dataclass(frozen=True)
class EvalOptions:
    identification_radius_mm: float = 20.0   # VerSe
    instance_min_iou: float = 0.5            # a match needs IoU strictly above this
    hd_percentile: float = 95.0
    level_shift_agreement: float = 0.75      # share of paired vertebrae that must agree on a shift


def _corners_lps(volume: Volume) -> np.ndarray:
    hi = np.asarray(volume.shape, dtype=np.float64) - 0.5
    corners = np.array([[i, j, k] for i in (-0.5, hi[0]) for j in (-0.5, hi[1]) for k in (-0.5, hi[2])])
    return volume.index_to_lps(corners)


def _box_hits(index_points: np.ndarray, shape) -> bool:
    lo, hi = index_points.min(axis=0), index_points.max(axis=0)
    return bool(np.all(lo < np.asarray(shape) - 0.5) and np.all(hi > -0.5))


def grids_overlap(a: Volume, b: Volume) -> bool:
    """Whether the two scan boxes share any patient space (a test on each one's own axes)."""
    return (_box_hits(a.lps_to_index(_corners_lps(b)), a.shape)
            and _box_hits(b.lps_to_index(_corners_lps(a)), b.shape))


def _voxel_mm3(volume: Volume) -> float:
    return float(abs(np.linalg.det(volume.affine[:3, :3])))


def _distance(a, b) -> float | None:
    return None if a is None or b is None else float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@dataclass(frozen=True)
class _Grids:
    """The two maps and what one pass over each yields."""

    ref: LabelMap
    pred: LabelMap
    on_ref: LabelMap          # the prediction resampled onto the reference grid
    counts: JointCounts
    ref_boxes: dict
    on_ref_boxes: dict
    pred_boxes: dict          # on the prediction's own grid

    @classmethod
    def of(cls, pred: LabelMap, ref: LabelMap, progress: Progress) -> "_Grids":
        progress.update(0.02, "resampling the prediction onto the reference grid")
        on_ref = resample_to_grid(pred, ref, labels=True)
        progress.update(0.15, "counting overlaps")
        counts = JointCounts.of(ref.array, on_ref.array)
        ref_boxes, on_ref_boxes = label_boxes(ref.array), label_boxes(on_ref.array)
        pred_boxes = on_ref_boxes if on_ref is pred else label_boxes(pred.array)
        return cls(ref, pred, on_ref, counts, ref_boxes, on_ref_boxes, pred_boxes)

    def overlap_row(self, label: int, pred_voxels: int, options: EvalOptions) -> OverlapRow:
        ref_n, pred_n = self.counts.ref_count(label), self.counts.pred_count(label)
        inter = self.counts.intersection(label, label)
        box = union_box([self.ref_boxes.get(label), self.on_ref_boxes.get(label)], self.ref.shape)
        found = label_surface_distances(self.ref.array, self.on_ref.array, label, box,
                                        self.ref.spacing, options.hd_percentile)
        return OverlapRow(id=label, name=label_name(label), dice=dice(inter, ref_n, pred_n),
                          iou=iou(inter, ref_n, pred_n),
                          hd=found.hd if found else None, hd95=found.hd95 if found else None,
                          assd=found.assd if found else None,
                          volume_ref_mm3=ref_n * _voxel_mm3(self.ref),
                          volume_pred_mm3=pred_voxels * _voxel_mm3(self.pred))


def _check_inputs(pred: LabelMap, ref: LabelMap) -> None:
    for labels, role in ((pred, "prediction"), (ref, "reference")):
        if labels.array.size and int(labels.array.min()) < 0:
            raise UnsupportedImage(f"The {role} holds negative values: it looks like an image, not a "
                                   "label map. Choose a label map file (integer vertebra ids).")
    if not grids_overlap(pred, ref):
        raise GridMismatch("The prediction and the reference do not overlap in patient space at all "
                           "(their scan boxes are disjoint). Choose a prediction made on this scan.")


def evaluate(pred: LabelMap, ref: LabelMap, options: EvalOptions | None = None,
             progress: Progress | None = None) -> EvalReport:
    """Score ``pred`` against ``ref`` (see the module docstring for what is scored how)."""
    options, progress = options or EvalOptions(), progress or NullProgress()
    _check_inputs(pred, ref)
    g = _Grids.of(pred, ref, progress)
    ref_ids = ident.vertebra_ids(g.ref_boxes)
    if not ref_ids:
        raise UnsupportedImage("The reference holds no vertebra labels (VerSe ids 1-28); nothing to "
                               "score against. Choose the reference vertebra label map.")
    pred_ids = ident.vertebra_ids(g.pred_boxes)
    pred_discs = [i for i in g.pred_boxes if is_disc(i)]
    pred_centroids, pred_sizes = ident.label_centroids(pred, g.pred_boxes, pred_ids + pred_discs)
    pred_centroids = {i: c for i, c in pred_centroids.items() if i in VERTEBRAE}
    rows = _vertebra_rows(g, ref_ids, (pred_centroids, pred_sizes), options, progress)
    discs = tuple(g.overlap_row(label, pred_sizes.get(label, 0), options)
                  for label in sorted(i for i in g.ref_boxes if is_disc(i)))
    summary = _summary(rows, discs, g, pred_ids, options)
    progress.update(1.0, "done")
    return EvalReport(vertebrae=rows, summary=summary, discs=discs, notes=_notes(g))


def _vertebra_rows(g: _Grids, ref_ids, pred_stats, options: EvalOptions,
                   progress: Progress) -> tuple[VertebraRow, ...]:
    pred_centroids, pred_sizes = pred_stats
    ref_centroids, _ = ident.label_centroids(g.ref, g.ref_boxes, ref_ids)
    is_identified = ident.identified(ref_centroids, pred_centroids, options.identification_radius_mm)
    ref_sizes = {i: n for i, n in g.counts.ref_sizes().items() if i in VERTEBRAE}
    matches = ident.match_instances(g.ref, g.on_ref.array, g.on_ref_boxes, ref_sizes,
                                    options.instance_min_iou)
    rows = []
    for n, label in enumerate(ref_ids):
        progress.update(0.2 + 0.75 * n / len(ref_ids), f"scoring {label_name(label)}")
        base = g.overlap_row(label, pred_sizes.get(label, 0), options)
        match = matches.get(label)
        rows.append(VertebraRow(
            **vars(base),
            centroid_error_mm=_distance(ref_centroids[label], pred_centroids.get(label)),
            identified=is_identified[label],
            instance_correct=match is not None and match.pred_id == label,
            localization_error_mm=_distance(ref_centroids[label],
                                            match.centroid_lps if match else None)))
    return tuple(rows)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _summary(rows, discs, g: _Grids, pred_ids, options: EvalOptions) -> EvalSummary:
    ref_ids = [row.id for row in rows]
    binary = BinaryConfusion.of(g.counts, VERTEBRAE)
    on_ref_ids = ident.vertebra_ids(g.on_ref_boxes)
    offsets = ident.level_offsets(g.counts, on_ref_ids, ref_ids)
    located = [row.localization_error_mm for row in rows]
    acc = [sum(d is not None and d <= t for d in located) / len(rows) for t in ACC_THRESHOLDS_MM]
    return EvalSummary(
        mean_dice=float(np.mean([row.dice for row in rows])),
        binary_dice=binary.dice, binary_iou=binary.iou,
        identification_rate=sum(row.identified for row in rows) / len(rows),
        instance_accuracy=sum(row.instance_correct for row in rows) / len(rows),
        mean_centroid_error_mm=_mean(row.centroid_error_mm for row in rows),
        mean_localization_error_mm=_mean(located),
        acc_1_5mm=acc[0], acc_2mm=acc[1], acc_3mm=acc[2],
        pixel_accuracy=binary.pixel_accuracy, fpd=binary.false_positive_dice,
        fnd=binary.false_negative_dice,
        level_shift=ident.level_shift(offsets, options.level_shift_agreement),
        n_ref=len(ref_ids), n_pred=len(pred_ids),
        missing=tuple(i for i in ref_ids if i not in pred_ids),
        extra=tuple(i for i in pred_ids if i not in ref_ids),
        mean_disc_dice=_mean(row.dice for row in discs))


def _notes(g: _Grids) -> tuple[str, ...]:
    notes = []
    if g.on_ref is not g.pred:
        notes.append("the prediction was resampled onto the reference grid (nearest neighbour) "
                     "for the voxel metrics")
    other = sorted(i for i in set(g.ref_boxes) | set(g.pred_boxes)
                   if i not in VERTEBRAE and not is_disc(i))
    if other:
        notes.append("ids neither vertebra nor disc were ignored: " + ", ".join(map(str, other)))
    return tuple(notes)
