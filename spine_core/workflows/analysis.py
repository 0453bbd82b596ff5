"""Analyse a scan: the pipeline (the shipped one, or a site's own named by ``SPINEPLAN_PIPELINE`` =
``module:function``), the review rows, and the result folder.

A result folder holds labels.nii.gz (the input's grid), centroids.json (LPS mm, with the review
rows' flags), meshes/ (+ manifest.json), metrics.json, segment.log and the marker that lists them
(.spineplan-result.json). It is written into a hidden folder beside the target and renamed into place
at the end, so a crash or a cancel never leaves half a result; what may be replaced, and how the
staging folders of killed runs are cleaned: spine_core.workflows.result_folder.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import time
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import GridMismatch, SpineError
from spine_core.io.writers import replace_folder
from spine_core.progress import NullProgress
from spine_core.review import CaseReview
from spine_core.volume import LabelMap, Volume
from spine_core.workflows.result_folder import (check_outdir, staging_folder, uninterrupted, write_marker,
                                                writing_to)

log = logging.getLogger("spineplan.segment")
PIPELINE_ENV = "SPINEPLAN_PIPELINE"
_SHIPPED = (("spine_core.pipeline", "segment"),)


def find_segment():
    """(segment function, "") or (None, why it is unavailable)."""
    named = os.environ.get(PIPELINE_ENV, "").strip()
    candidates = [tuple(named.split(":", 1))] if ":" in named else list(_SHIPPED)
    for module_name, attr in candidates:
        try:
            fn = getattr(importlib.import_module(module_name), attr, None)
        except ImportError as exc:
            log.debug("no analysis pipeline in %s: %s", module_name, exc)
            continue
        if callable(fn):
            return fn, ""
    if named:
        return None, f"the analysis pipeline '{named}' ({PIPELINE_ENV}) could not be loaded"
    return None, "automatic analysis is not installed in this version of SpinePlan"


def labels_on_grid(labels: LabelMap, volume: Volume) -> tuple[LabelMap, str]:
    """Labels on the scan's voxel grid: resampled (nearest) through patient space if needed."""
    if labels.same_grid(volume, atol_mm=1e-2):
        return labels, ""
    from spine_core.metrics import grids_overlap
    from spine_core.resample import resample_to_grid

    if not grids_overlap(labels, volume):
        raise GridMismatch("The label map does not overlap the scan in patient space; "
                           "open the labels made for this scan.")
    moved = resample_to_grid(labels, volume)
    moved = LabelMap(moved.array, volume.affine, volume.metadata, names=dict(labels.names))
    return moved, "the label map was on another grid and was resampled onto the scan"


def analyse(volume: Volume, options, progress=None, segment=None):
    """``segment(volume, options, progress)`` (the installed pipeline by default), its labels on the
    scan's grid whatever the pipeline returned."""
    if segment is None:
        segment, why = find_segment()
        if segment is None:
            raise SpineError(f"Analysis is unavailable: {why}.")
    result = segment(volume, options, progress or NullProgress())
    if not result.labels.same_grid(volume, atol_mm=1e-2):
        result.labels, note = labels_on_grid(result.labels, volume)
        result.warnings.append(note)
    return result


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def review(result, volume) -> tuple[dict[int, list[str]], CaseReview]:
    """Every vertebra's flags as the workstation shows them and the case's QA status and flags
    (spine_core.review: the analysis' own flags and those read from the label map and the scan)."""
    from spine_core.review import case_review, vertebra_rows

    rows = vertebra_rows(result.labels, {v.id: v for v in result.vertebrae})
    case = case_review(rows, volume, result.warnings, result.labels)
    return {row.label_id: list(row.flags) for row in rows}, case


def vertebra_dicts(result, flags: dict[int, list[str]]) -> list[dict]:
    return [{"id": v.id, "name": v.name, "position": [round(float(x), 3) for x in v.position],
             "confidence": v.confidence, "flags": flags.get(v.id, list(v.flags))} for v in result.vertebrae]


def metrics_dict(result, volume, pipeline: str, flags: dict[int, list[str]], case) -> dict:
    return {"pipeline": pipeline, "provider": result.provider, "case": case.as_dict(),
            "models": list(getattr(result, "models", [])),
            "input": {"shape": list(volume.shape), "spacing_mm": [round(float(s), 4) for s in volume.spacing],
                      "orientation": volume.orientation, "series_uid": volume.metadata.series_uid,
                      "frame_of_reference_uid": volume.metadata.frame_of_reference_uid},
            "vertebrae": [{"id": v.id, "name": v.name, "volume_mm3": round(v.volume_mm3, 1),
                           "centroid": [round(float(x), 3) for x in v.position], "confidence": v.confidence,
                           "flags": flags.get(v.id, list(v.flags))} for v in result.vertebrae],
            "timings_s": result.timings_s, "peak_rss_mb": peak_rss_mb(), "warnings": result.warnings}


def write_results(result, volume, folder: Path, pipeline: str, fast: bool):
    """The result folder's files; returns the review flags written per vertebra id (one pass over the
    labels) and the case's QA review."""
    from spine_core.export import ExportOptions, export_meshes
    from spine_core.io.writers import save_labelmap
    from spine_core.meshes import MeshOptions, mesh_labels

    save_labelmap(result.labels, folder / "labels.nii.gz")
    flags, case = review(result, volume)
    doc = {"coordinate_system": "LPS", "units": "mm", "case": case.as_dict(),
           "vertebrae": vertebra_dicts(result, flags)}
    with atomic_path(folder / "centroids.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    began = time.perf_counter()
    options = MeshOptions(smoothing_iterations=10, target_reduction=0.8) if fast else MeshOptions()
    meshes = mesh_labels(result.labels, options=options)
    if meshes:
        meta = volume.metadata
        export_meshes(meshes, folder / "meshes", ExportOptions(source_series_uid=meta.series_uid,
                                                               frame_of_reference_uid=meta.frame_of_reference_uid))
    result.timings_s["meshes"] = round(time.perf_counter() - began, 3)
    with atomic_path(folder / "metrics.json") as tmp:
        metrics = metrics_dict(result, volume, result.pipeline or pipeline, flags, case)
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return flags, case


def _file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def analyse_to_folder(volume: Volume, out: Path, options, progress=None, segment=None, overwrite: bool = False):
    """Analyse ``volume`` and write the result folder ``out`` atomically; returns the SegmentResult,
    the review flags of each vertebra id and the case's QA review (spine_core.review.CaseReview).
    An earlier SpinePlan result in ``out`` is replaced only with ``overwrite`` (result_folder)."""
    out = Path(out).expanduser().resolve()
    check_outdir(out, overwrite)
    with staging_folder(out) as staging:
        result, flags, case = _analyse_into(volume, staging, out, options, progress, segment)
        with writing_to(out):
            write_marker(staging)
            check_outdir(out, overwrite)      # again: the folder may have changed during the analysis
            with uninterrupted():
                replace_folder(staging, out)
    return result, flags, case


def _analyse_into(volume: Volume, staging: Path, out: Path, options, progress, segment):
    """The analysis, its files and its log, written into ``staging``."""
    handler = _file_log(staging / "segment.log")
    try:
        log.info("segmenting %s, pipeline %s, device %s%s", volume, options.pipeline, options.device,
                 ", fast" if options.fast else "")
        result = analyse(volume, options, progress, segment)
        with writing_to(out):
            flags, case = write_results(result, volume, staging, options.pipeline, options.fast)
        log.info("done: %d vertebrae, QA %s %s, %s", len(result.vertebrae), case.status, list(case.flags),
                 result.timings_s)
        return result, flags, case
    finally:
        logging.getLogger().removeHandler(handler)    # first: a closed FileHandler reopens on a record
        handler.close()
