"""Segmentation and labelling accuracy: a predicted vertebra label map against a reference.

``evaluate(pred, ref)`` returns an ``EvalReport``: per-vertebra Dice, IoU, Hausdorff, HD95, ASSD,
centroid error and VerSe identification, plus a summary (mean and binary Dice, identification rate,
instance accuracy, localization Acc@1.5/2/3 mm, PA/FPD/FND, level shift, missing/extra levels).
"""
from spine_core.metrics.evaluate import EvalOptions, evaluate, grids_overlap
from spine_core.metrics.overlap import BinaryConfusion, JointCounts, dice, iou
from spine_core.metrics.report import (EvalReport, EvalSummary, OverlapRow, VertebraRow,
                                       format_report)
from spine_core.metrics.surface import SurfaceDistances, surface_distances

__all__ = ["BinaryConfusion", "EvalOptions", "EvalReport", "EvalSummary", "JointCounts", "OverlapRow",
           "SurfaceDistances", "VertebraRow", "dice", "evaluate", "format_report", "grids_overlap",
           "iou", "surface_distances"]
