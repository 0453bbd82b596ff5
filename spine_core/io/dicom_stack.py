"""A series' slices as one grid: do they belong together, are they evenly stacked, is the gantry
tilted. Mixed slices are refused, missing ones too; uneven spacing and tilt are resampled with a
warning."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from spine_core.errors import IncompleteSeries, MixedSeries
from spine_core.volume import Volume

# Relative tolerance on slice steps before a series counts as unevenly spaced.
_STEP_TOLERANCE = 0.05
# A step this many times the typical one means slices are missing.
_GAP_FACTOR = 1.5
# Gantry tilt below this angle (degrees) is numerical noise, not tilt.
_TILT_DEGREES = 0.5
# Slices of one volume share their orientation within this angle (degrees) and their pixel spacing
# within this relative difference.
_ORIENTATION_DEGREES = 0.5
_SPACING_TOLERANCE = 1e-3
# A slice whose normal is further than this from the others' (degrees) is an image in another plane.
OTHER_PLANE_DEGREES = 45.0

_MIXED = ("; the series mixes images of two acquisitions (two series with one UID?). Copy each series into "
          "its own folder, or re-export the series from PACS, and open it again.")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def angle_degrees(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(_unit(a) @ _unit(b)), 0.0, 1.0))))


def _differences(ref, s) -> str:
    if (s.rows, s.columns) != (ref.rows, ref.columns):
        return f"is {s.columns} x {s.rows} pixels where the others are {ref.columns} x {ref.rows}"
    if not np.allclose(s.spacing, ref.spacing, rtol=_SPACING_TOLERANCE):
        return (f"has a pixel spacing of {s.spacing[1]:.4g} x {s.spacing[0]:.4g} mm where the others have "
                f"{ref.spacing[1]:.4g} x {ref.spacing[0]:.4g} mm")
    turn = max(angle_degrees(s.direction[:3], ref.direction[:3]), angle_degrees(s.direction[3:], ref.direction[3:]))
    if turn > _ORIENTATION_DEGREES:
        return f"is turned {turn:.1f} degrees against the others (ImageOrientationPatient)"
    if s.pixel_format != ref.pixel_format:
        return f"stores its pixels differently (samples, bits, sign {s.pixel_format} vs {ref.pixel_format})"
    if s.frame_uid and ref.frame_uid and s.frame_uid != ref.frame_uid:
        return "has another frame of reference (FrameOfReferenceUID)"
    if s.study_uid and ref.study_uid and s.study_uid != ref.study_uid:
        return "belongs to another study (StudyInstanceUID)"
    return ""


def check_consistent(slices, uid: str) -> None:
    """Refuse a series whose slices differ in size, spacing, orientation, pixel format or frame."""
    ref = slices[0]
    for s in slices[1:]:
        difference = _differences(ref, s)
        if difference:
            raise MixedSeries(f"In series {uid or '(no series UID)'}, '{s.path.name}' {difference}" + _MIXED)


def check_steps(uid: str, distances: np.ndarray) -> list[str]:
    """Raise on missing or duplicate slices; return warnings for uneven spacing."""
    steps = np.diff(distances)
    if np.any(steps < 1e-3):
        dup = int(np.argmax(steps < 1e-3)) + 1
        raise IncompleteSeries(f"Series {uid} has two slices at the same position (slice {dup}); "
                               "it may mix two acquisitions. Choose another series or re-export it.")
    typical = float(np.median(steps))
    gaps = np.nonzero(steps > _GAP_FACTOR * typical)[0]
    if len(gaps):
        where = ", ".join(f"after slice {g + 1}" for g in gaps[:5])
        missing = int(round(float(np.sum(steps[gaps] / typical - 1))))
        raise IncompleteSeries(f"Series {uid} is missing about {missing} slice(s) ({where}; slices "
                               f"are {typical:.3g} mm apart elsewhere). Re-export the complete series "
                               "from PACS before planning on it.")
    if np.max(np.abs(steps - typical)) > _STEP_TOLERANCE * typical:
        return [f"slice spacing varies from {steps.min():.3g} to {steps.max():.3g} mm; "
                f"resampled to a uniform {typical:.3g} mm"]
    return []


def resample_uniform(volume: Volume, distances: np.ndarray) -> Volume:
    """Linear interpolation along the stack onto evenly spaced slices."""
    rel = distances - distances[0]
    step = float(np.median(np.diff(rel)))
    n = int(np.floor(rel[-1] / step + 1e-6)) + 1
    targets = np.arange(n) * step
    idx = np.clip(np.searchsorted(rel, targets, side="right") - 1, 0, len(rel) - 2)
    w = ((targets - rel[idx]) / (rel[idx + 1] - rel[idx])).astype(np.float32)
    src = volume.array.astype(np.float32)
    out = src[:, :, idx] * (1 - w) + src[:, :, idx + 1] * w
    affine = volume.affine.copy()
    affine[:3, 2] = affine[:3, 2] / np.linalg.norm(affine[:3, 2]) * step
    return replace(volume, array=out.astype(volume.array.dtype), affine=affine)


def deshear(volume: Volume) -> tuple[Volume, list[str]]:
    """Resample a gantry-tilted (sheared) grid onto an orthogonal one, with a warning."""
    from scipy import ndimage

    a = volume.affine[:3, :3]
    normal = _unit(np.cross(a[:, 0], a[:, 1]))
    stack = _unit(a[:, 2])
    tilt = float(np.degrees(np.arccos(np.clip(abs(stack @ normal), -1, 1))))
    if tilt < _TILT_DEGREES:
        return volume, []
    # Orthogonal grid covering the sheared one: same in-plane axes, slices along the normal.
    step = float(np.linalg.norm(a[:, 2]) * abs(stack @ normal))
    corners = np.array([[i, j, k] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                        for k in (0, volume.shape[2] - 1)], dtype=float)
    lps = volume.index_to_lps(corners)
    new = np.eye(4)
    new[:3, :3] = np.column_stack([a[:, 0], a[:, 1], normal * step])
    new[:3, 3] = volume.affine[:3, 3]
    inv = np.linalg.inv(new)
    idx = lps @ inv[:3, :3].T + inv[:3, 3]
    lo, hi = np.floor(idx.min(axis=0)), np.ceil(idx.max(axis=0))
    new[:3, 3] = new[:3, :3] @ lo + new[:3, 3]
    shape = tuple(int(v) for v in (hi - lo + 1))
    to_old = np.linalg.inv(volume.affine) @ new
    fill = float(volume.array.min())
    out = ndimage.affine_transform(volume.array.astype(np.float32), to_old[:3, :3], to_old[:3, 3],
                                   output_shape=shape, order=1, cval=fill)
    resampled = replace(volume, array=out.astype(volume.array.dtype), affine=new)
    return resampled, [f"gantry tilt of {tilt:.1f} degrees; resampled onto an axial grid"]
