"""The long tasks the window runs in Workers: plain functions taking ``progress`` (no Qt here).

The analysis is spine_core.workflows.analysis (shared with the CLI and batch): the shipped pipeline,
or a site's own pipeline named by the ``SPINEPLAN_PIPELINE`` environment variable
(``module:function``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spine_core.io import load_labels, load_scan, save_labelmap, scan_listing
from spine_core.io.dicom import SeriesInfo
from spine_core.meshes import MeshOptions, mesh_labels, remesh_labels
from spine_core.progress import NullProgress, SubProgress
from spine_core.volume import LabelMap, Volume
from spine_core.workflows.analysis import analyse, labels_on_grid

LABEL_FILE_NAMES = ("labels.nii.gz", "labels.nii", "seg.nii.gz", "segmentation.nii.gz")


@dataclass(frozen=True)
class StudyPaths:
    scan: Path
    labels: Path | None = None


@dataclass
class LoadedStudy:
    """What a load produced. ``volume`` is None when the user must pick one of ``series`` first."""

    paths: StudyPaths
    volume: Volume | None = None
    labels: LabelMap | None = None
    series: list[SeriesInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: object = None                  # the spine_core.plan.Plan it came from, if any


def resolve_study(path, labels=None) -> StudyPaths:
    """A demo-style study folder (DIR/dicom + DIR/labels.nii.gz) opens as scan plus labels."""
    path = Path(path).expanduser()
    labels_path = Path(labels).expanduser() if labels else None
    if path.is_dir() and (path / "dicom").is_dir():
        found = [path / n for n in LABEL_FILE_NAMES if (path / n).is_file()]
        if labels_path is None and found:
            labels_path = found[0]
        path = path / "dicom"
    return StudyPaths(path, labels_path)


def looks_like_labels(path) -> bool:
    name = Path(path).name.lower()
    return any(word in name for word in ("label", "seg", "mask"))


def load_study(paths: StudyPaths, series: str | None = None, ask_series: bool = True,
               progress=None) -> LoadedStudy:
    """Read the scan (and labels, put on the scan's grid). Several DICOM series and no choice:
    returns the listing only, so the user can pick (``ask_series``)."""
    progress = progress or NullProgress()
    progress.update(0.0, f"Reading {paths.scan.name}")
    if ask_series and series is None and paths.scan.is_dir():
        listing = scan_listing(paths.scan)
        if len(listing) > 1:
            return LoadedStudy(paths, series=listing)
    volume = load_scan(paths.scan, series=series, progress=SubProgress(progress, 0.0, 0.8))
    study = LoadedStudy(paths, volume, warnings=list(volume.metadata.warnings))
    if paths.labels is not None:
        progress.update(0.85, f"Reading {paths.labels.name}")
        study.labels, note = labels_on_grid(load_labels(paths.labels), volume)
        if note:
            study.warnings.append(note)
    progress.update(1.0, "Loaded")
    return study


def read_labels(path, volume: Volume, progress=None) -> tuple[LabelMap, str]:
    (progress or NullProgress()).update(0.0, f"Reading {Path(path).name}")
    return labels_on_grid(load_labels(path), volume)


def make_meshes(labels: LabelMap, ids=None, previous=None, options: MeshOptions | None = None,
                progress=None):
    """Meshes of ``ids`` (all labels by default), keeping ``previous`` ones of untouched ids;
    returns (meshes, labels, ids) for Session.set_meshes."""
    ids = set(labels.ids()) if ids is None else {int(i) for i in ids}
    if previous:
        meshes = remesh_labels(labels, previous, ids, options, progress)
    else:
        meshes = mesh_labels(labels, ids, options, progress)
    return meshes, labels, ids


# --- analysis -----------------------------------------------------------------------------------
def run_analysis(segment, volume: Volume, options, progress=None):
    """The analysis in a Worker (spine_core.workflows.analysis.analyse, as the CLI runs it)."""
    return analyse(volume, options, progress, segment)


# --- plans --------------------------------------------------------------------------------------
def load_plan_study(path, progress=None) -> LoadedStudy:
    """A plan and the scan it was made on (from the path and series UID the plan records)."""
    from spine_core.errors import InputNotFound
    from spine_core.plan import load_plan

    progress = progress or NullProgress()
    progress.update(0.0, f"Reading {Path(path).name}")
    plan = load_plan(path)
    scan = Path(plan.info.scan_source)
    if not plan.info.scan_source or not scan.exists():
        raise InputNotFound(f"The scan this plan was made on is not at '{scan}'. Open the scan "
                            "first (File > Open), then its plan's labels (File > Open labels).")
    study = load_study(StudyPaths(scan), plan.info.series_uid or None, ask_series=False,
                       progress=SubProgress(progress, 0.05, 0.9))
    study.labels, note = labels_on_grid(plan.labels, study.volume)
    if note:
        study.warnings.append(note)
    study.plan = plan
    return study


def write_plan(path, labels: LabelMap, info, progress=None) -> Path:
    from spine_core.plan import save_plan

    (progress or NullProgress()).update(0.0, f"Saving {Path(path).name}")
    return save_plan(path, labels, info)


def save_labels(labels: LabelMap, path, progress=None) -> Path:
    (progress or NullProgress()).update(0.0, f"Saving {Path(path).name}")
    path = Path(path)
    if not path.name.lower().endswith((".nii.gz", ".nii")):
        path = path.with_name(path.name + ".nii.gz")
    return save_labelmap(labels, path)
