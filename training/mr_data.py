"""The shared MR cases as the MR training and benchmark read them (numpy only: no torch here)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DISC = 100


def shared_mr_root(root: str = "") -> Path:
    if root:
        return Path(root)
    return Path(os.environ.get("SPINEPLAN_SHARED", REPO.parent / "shared")) / "data" / "mr"


def mr_case_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "image.nii.gz").exists() and (p / "labels.nii.gz").exists())


@dataclass
class MRCase:
    name: str
    image: np.ndarray          # normalised, (L, P, S)
    labels: np.ndarray         # VerSe ids and discs (100 + id above), (L, P, S)
    has_body: bool
    has_disc: bool
    slices: np.ndarray         # L indices holding any label


def load_scan_and_labels(root: Path, name: str):
    """The case's scan (Volume) and its reference labels (LabelMap) on the scan's grid."""
    from spine_core.io import load_labels, load_scan

    scan = load_scan(root / name / "image.nii.gz")
    return scan, _on_scan_grid(load_labels(root / name / "labels.nii.gz"), scan, name)


def load_mr_case(root: Path, name: str) -> MRCase:
    return mr_case(name, *load_scan_and_labels(root, name))


def mr_case(name: str, scan, labels) -> MRCase:
    """A scan (Volume) and its labels (LabelMap) as the MR networks read them."""
    from spine_core.pipeline.mr_input import mr_input
    from spine_core.resample import resample_to_grid

    image, grid = mr_input(scan)
    lab = np.asarray(resample_to_grid(labels, grid).array).astype(np.int16)
    ids = np.unique(lab)
    return MRCase(name, image, lab, bool(np.any((ids > 0) & (ids < DISC))), bool(np.any(ids >= DISC)),
                  np.flatnonzero(lab.reshape(lab.shape[0], -1).max(axis=1) > 0))


def unlabelled_mr_case(name: str, scan) -> MRCase:
    """A scan without labels as the MR networks read it; its sampled slices are the middle half across,
    where the spine mostly is."""
    from spine_core.pipeline.mr_input import mr_input

    image, _ = mr_input(scan)
    n = image.shape[0]
    middle = np.arange(n // 4, max(n // 4 + 1, 3 * n // 4))
    return MRCase(name, image, np.zeros(image.shape, np.int16), False, False, middle)


def _on_scan_grid(labels, scan, name: str):
    """Three shared VB2 cases store labels with one more (empty) end slice than their image: drop it
    (the label/image alignment is then uncertain by that one 1 mm slice, which only moves the lateral
    edge of a body). Any other disagreement is refused."""
    from spine_core.volume import LabelMap

    extra = np.array(labels.shape) - np.array(scan.shape)
    if np.any(extra):
        axis = int(np.flatnonzero(extra)[0]) if np.count_nonzero(extra) == 1 else -1
        if axis < 0 or extra[axis] != 1 or np.take(labels.array, -1, axis=axis).any():
            raise ValueError(f"{name}: labels {labels.shape} do not fit the image {scan.shape}")
        array = np.take(labels.array, range(scan.shape[axis]), axis=axis)
        labels = LabelMap(array, scan.affine, labels.metadata)
    if not labels.same_grid(scan, atol_mm=1e-3):
        raise ValueError(f"{name}: labels are not on the image's grid")
    return labels
