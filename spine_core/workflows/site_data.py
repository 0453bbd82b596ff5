"""A site's own data for retraining (``spineplan retrain``): its unlabelled scans and the cases its
clinicians corrected, found in the folders the site names. Qt-free and torch-free: the training package
reads what this finds.

Corrections are what the workstation and the batch review already save:

- plans (``NAME.spineplan`` files or plan folders): the edited labels, and the scan they were made on
  (``plan.json`` ``scan_source`` + ``series_uid``);
- batch output folders (``journal.jsonl``): every case a reviewer marked "corrected"
  (``reviews/<id>/labels.nii.gz``), on the scan the journal names;
- plain pairs: a folder holding ``image.nii.gz`` (or another image file / a ``dicom`` folder) and
  ``labels.nii.gz``.

A correction whose scan cannot be found any more is skipped with the reason (the scan stays in PACS
or on its drive; plans do not copy it). Everything is identified by a digest of its voxels, never by
a file name: names can hold patient identifiers, and model cards record only counts and digests.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spine_core.errors import SpineError
from spine_core.volume import LabelMap, Volume

log = logging.getLogger(__name__)
PAIR_IMAGES = ("image.nii.gz", "image.nii", "image.nrrd", "image.mha", "dicom")
PAIR_LABELS = "labels.nii.gz"


def voxel_digest(volume: Volume) -> str:
    """A short content digest: the same scan gives the same digest whatever its file name."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(volume.array).tobytes())
    h.update(np.asarray(volume.affine, np.float64).round(4).tobytes())
    return h.hexdigest()[:16]


@dataclass
class SiteCorrection:
    """A scan and the labels a clinician made or corrected on it."""
    origin: str                        # "plan", "batch review" or "pair"
    scan: str                          # where the scan is read from
    labels: str                        # the corrected label file (or the plan holding it)
    series_uid: str = ""

    def load(self) -> tuple[Volume, LabelMap]:
        from spine_core.io import load_labels, load_scan
        from spine_core.plan import is_plan_file, load_plan
        from spine_core.resample import resample_to_grid

        image = load_scan(self.scan, series=self.series_uid or None)
        labels = load_plan(self.labels).labels if is_plan_file(self.labels) else load_labels(self.labels)
        if not labels.same_grid(image):
            labels = resample_to_grid(labels, image)
        return image, labels


@dataclass
class SiteData:
    scans: list[str] = field(default_factory=list)                 # image files / DICOM series folders
    corrections: list[SiteCorrection] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)               # what could not be used, and why


def find_scans(folder) -> list:
    """The studies below ``folder`` (batch discovery: one per image file or DICOM series)."""
    from spine_core.workflows.batch_discovery import discover

    return [s for s in discover(folder) if not s.refuse]


def _plan_correction(path: Path, skipped: list[str]) -> SiteCorrection | None:
    from spine_core.plan import PlanError, load_plan

    try:
        info = load_plan(path).info
    except PlanError as exc:
        skipped.append(f"a plan that does not read ({exc})")
        return None
    if not info.scan_source or not Path(info.scan_source).exists():
        skipped.append("a plan whose scan is no longer where it was opened from")
        return None
    if not info.edits:
        skipped.append("a plan without edits (the automatic labels are not a correction)")
        return None
    return SiteCorrection("plan", info.scan_source, str(path), info.series_uid)


def _batch_corrections(root: Path, skipped: list[str]) -> list[SiteCorrection]:
    from spine_core.workflows.batch_folder import BatchFolder

    batch = BatchFolder(root)
    out = []
    for record in batch.records().values():
        if not record.review or record.review.get("decision") != "corrected":
            continue
        labels = batch.corrected_labels(record.case_id)
        if not labels.is_file() or not record.source or not Path(record.source).exists():
            skipped.append("a batch correction whose scan or labels are missing")
            continue
        out.append(SiteCorrection("batch review", record.source, str(labels), record.series_uid))
    return out


def find_corrections(folder) -> tuple[list[SiteCorrection], list[str]]:
    """Every correction below ``folder`` (plans, batch reviews, image + labels pairs) and what was skipped."""
    from spine_core.plan import PLAN_JSON, PLAN_SUFFIX

    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise SpineError(f"'{folder}' is not a folder. Give the folder that holds the saved plans or batch "
                         "review folders.")
    found: list[SiteCorrection] = []
    skipped: list[str] = []
    for journal in sorted(root.rglob("journal.jsonl")):
        found += _batch_corrections(journal.parent, skipped)
    batch_roots = [j.parent for j in root.rglob("journal.jsonl")]
    for path in sorted(root.rglob("*")):
        if any(path.is_relative_to(b) for b in batch_roots):
            continue
        if (path.is_file() and path.suffix == PLAN_SUFFIX) or (path.is_dir() and (path / PLAN_JSON).is_file()):
            correction = _plan_correction(path, skipped)
            if correction:
                found.append(correction)
        elif path.is_dir() and (path / PAIR_LABELS).is_file():
            image = next((path / n for n in PAIR_IMAGES if (path / n).exists()), None)
            if image is None:
                skipped.append("a labels.nii.gz without an image beside it")
            else:
                found.append(SiteCorrection("pair", str(image), str(path / PAIR_LABELS)))
    return found, skipped


def hold_back(items: list, digests: list[str], fraction: float) -> tuple[list, list]:
    """(train, held back): a fixed share, chosen by digest (the same cases on every run and resume);
    at least one held back whenever there is any."""
    if not items:
        return [], []
    order = sorted(range(len(items)), key=lambda i: digests[i])
    n_back = max(1, int(round(fraction * len(items)))) if fraction > 0 else 0
    back = set(order[:n_back])
    return [x for i, x in enumerate(items) if i not in back], [x for i, x in enumerate(items) if i in back]
