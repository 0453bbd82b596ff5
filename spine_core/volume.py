"""The one image type: a voxel array plus the affine that places it in patient space.

Conventions (used everywhere in SpinePlan):
- ``array[i, j, k]`` is indexed in ITK/DICOM order: i along image rows (columns of pixels),
  j along image columns, k along the slice stack.
- ``affine`` (4x4) maps the homogeneous index (i, j, k, 1) to LPS millimetres, the DICOM
  patient coordinate system. Spacing, direction and origin are derived from it, never stored
  separately, so they cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class ScanMetadata:
    modality: str = ""
    series_uid: str = ""
    study_uid: str = ""
    description: str = ""
    source: str = ""
    warnings: tuple[str, ...] = ()
    frame_of_reference_uid: str = ""     # DICOM FrameOfReferenceUID: the patient coordinates' origin
    body_part: str = ""                  # DICOM BodyPartExamined (e.g. "CSPINE"), as the scanner wrote it
    slice_thickness_mm: float = 0.0      # DICOM SliceThickness of a stack (array axis k); 0 = not known
    # Identifies the patient: kept for export headers, never written to logs or reprs.
    patient_id: str = field(default="", repr=False)


@dataclass(frozen=True, eq=False)
class Volume:
    array: np.ndarray
    affine: np.ndarray
    metadata: ScanMetadata = field(default_factory=ScanMetadata)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {affine.shape}")
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got {self.array.ndim}D")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise ValueError("affine is singular")
        affine = affine.copy()
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)

    # Geometry derived from the affine
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        return self.affine[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    @property
    def orientation(self) -> str:
        """Three letters naming where each array axis points in LPS terms, e.g. 'LPS' or 'RAI'."""
        return orientation_code(self.affine)

    def index_to_lps(self, ijk) -> np.ndarray:
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps) -> np.ndarray:
        lps = np.asarray(lps, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return lps @ inv[:3, :3].T + inv[:3, 3]

    def with_array(self, array: np.ndarray) -> "Volume":
        """Same grid, new voxels (e.g. a filtered image)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from grid {self.array.shape}")
        return replace(self, array=array)

    def same_grid(self, other: "Volume", atol_mm: float = 1e-3) -> bool:
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol_mm))

    def physical_extent_mm(self) -> np.ndarray:
        return self.spacing * np.asarray(self.shape)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return (f"{type(self).__name__}(shape={self.shape}, spacing=({sp}) mm, "
                f"orientation={self.orientation}, dtype={self.array.dtype}, "
                f"modality={self.metadata.modality!r})")


@dataclass(frozen=True, eq=False, repr=False)
class LabelMap(Volume):
    """A Volume of integer ids; ``names`` maps each id to its clinical name."""

    names: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer):
            raise ValueError(f"LabelMap needs integer ids, got {self.array.dtype}")
        if not self.names:
            from spine_core.labels import label_names

            object.__setattr__(self, "names", label_names(np.unique(self.array)))

    @classmethod
    def on_grid(cls, grid: Volume, array: np.ndarray, names: Mapping[int, str] | None = None) -> "LabelMap":
        if array.shape != grid.shape:
            raise ValueError(f"label shape {array.shape} differs from grid {grid.shape}")
        return cls(array=array, affine=grid.affine, metadata=grid.metadata, names=dict(names or {}))

    def ids(self) -> list[int]:
        return [int(v) for v in np.unique(self.array) if v != 0]


def orientation_code(affine: np.ndarray) -> str:
    """Closest anatomical direction each array axis points towards, in LPS letters."""
    pos, neg = "LPS", "RAI"
    code = []
    for col in np.asarray(affine)[:3, :3].T:
        axis = int(np.argmax(np.abs(col)))
        code.append(pos[axis] if col[axis] > 0 else neg[axis])
    return "".join(code)


def affine_from_geometry(spacing, direction=None, origin=None) -> np.ndarray:
    """Build an index-to-LPS affine from spacing (i, j, k), a 3x3 direction and an origin."""
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing, dtype=np.float64)
    affine[:3, 3] = np.zeros(3) if origin is None else np.asarray(origin, dtype=np.float64)
    return affine
