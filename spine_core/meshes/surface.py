"""Per-vertebra surface meshes from a LabelMap, in LPS millimetres.

Each label is cropped to its bounding box (plus a zero border so every surface closes),
contoured with scikit-image's marching cubes at the 0.5 level of its binary mask in index space,
and the vertices are mapped through the LabelMap's affine. Mapping through the full affine (not a
spacing) keeps flipped, permuted and oblique grids right. A mirror-image affine (det < 0) reverses
the triangles' handedness, so the winding is chosen from the affine's sign: triangles are always
counter-clockwise seen from outside, i.e. normals point out of the bone.

Measured on verse009 (16 vertebrae, 106x408x48 at 1x1x2 mm): marching cubes on the crops takes
~0.1 s for all labels with scikit-image, ~0.05 s with VTK's vtkDiscreteFlyingEdges3D; both are
small beside smoothing and decimation, so the simpler, numpy-native scikit-image path is used.

Smoothing is VTK's windowed-sinc filter (pyvista ``smooth_taubin``): it removes the voxel staircase
without the shrinkage of Laplacian smoothing. Decimation is quadric (pyvista ``decimate``), which
keeps the shape best for a given triangle count.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from scipy import ndimage
from skimage.measure import marching_cubes

from spine_core.labels import label_name
from spine_core.progress import NullProgress, Progress
from spine_core.volume import LabelMap

# Meshes with fewer triangles than this are not decimated (tiny fragments, test spheres).
_MIN_FACES_TO_DECIMATE = 500


@dataclass(frozen=True)
class MeshOptions:
    """How surfaces are made. Defaults suit 0.5-2 mm CT label maps."""

    smoothing_iterations: int = 20     # windowed-sinc iterations; 0 turns smoothing off
    smoothing_pass_band: float = 0.05  # 0..2, lower smooths more
    target_reduction: float = 0.5      # fraction of triangles removed by decimation; 0 keeps all
    pad_voxels: int = 1                # border kept around each label's bounding box

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_reduction < 1.0:
            raise ValueError("target_reduction must be in [0, 1)")
        if self.smoothing_iterations < 0 or self.pad_voxels < 0:
            raise ValueError("smoothing_iterations and pad_voxels must be >= 0")


@dataclass(frozen=True, eq=False)
class VertebraMesh:
    """A closed triangle surface of one label, vertices in LPS mm, triangles wound outward."""

    label_id: int
    name: str
    vertices: np.ndarray        # (n, 3) float64, LPS mm
    faces: np.ndarray           # (m, 3) int64 vertex indices, counter-clockwise from outside
    centroid: np.ndarray        # (3,) LPS mm, centroid of the label's voxels

    @property
    def n_vertices(self) -> int:
        return int(len(self.vertices))

    @property
    def n_faces(self) -> int:
        return int(len(self.faces))

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3): minimum and maximum LPS corner."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def signed_volume_mm3(self) -> float:
        """Positive when triangles are wound outward (divergence theorem)."""
        a, b, c = (self.vertices[self.faces[:, n]] - self.centroid for n in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def to_polydata(self):
        """A pyvista PolyData (for rendering or VTK filters)."""
        import pyvista as pv

        cells = np.hstack([np.full((self.n_faces, 1), 3, dtype=np.int64), self.faces]).ravel()
        return pv.PolyData(np.asarray(self.vertices, dtype=np.float64), cells)


def mesh_vertebra(labels: LabelMap, label_id: int, options: MeshOptions | None = None,
                  box: tuple[slice, ...] | None = None) -> VertebraMesh | None:
    """The surface of one label, or None when the label has no voxels."""
    options = options or MeshOptions()
    if box is None:
        box = _bounding_box(labels.array, label_id)
        if box is None:
            return None
    pad = options.pad_voxels + 1
    start = np.array([s.start for s in box], dtype=np.float64) - pad
    mask = np.pad(labels.array[box] == label_id, pad)
    if not mask.any():
        return None
    verts_ijk, faces, _, _ = marching_cubes(mask.astype(np.float32), 0.5, gradient_direction="descent",
                                            allow_degenerate=False)
    linear, offset = labels.affine[:3, :3], labels.affine[:3, 3]
    vertices = (verts_ijk + start) @ linear.T + offset
    # scikit-image winds triangles clockwise seen from outside in index space; a mirror-image
    # affine reverses that, so only a proper (det > 0) affine needs the order flipped.
    if np.linalg.det(linear) > 0:
        faces = faces[:, ::-1]
    centroid_ijk = np.array(ndimage.center_of_mass(mask)) + start
    mesh = VertebraMesh(label_id=int(label_id), name=_name(labels, label_id),
                        vertices=vertices, faces=np.ascontiguousarray(faces, dtype=np.int64),
                        centroid=centroid_ijk @ linear.T + offset)
    return _refine(mesh, options)


def mesh_labels(labels: LabelMap, ids: Iterable[int] | None = None, options: MeshOptions | None = None,
                progress: Progress | None = None) -> dict[int, VertebraMesh]:
    """Meshes of the given labels (all non-zero labels by default), keyed by label id.

    The labels are meshed side by side, one thread per core: the work is in compiled code (marching
    cubes, VTK's filters) that runs beside other threads; on two idle cores an 11-structure MR took
    0.7 s instead of 1.2-1.6 s one label after another."""
    progress = progress or NullProgress()
    options = options or MeshOptions()
    wanted = sorted(set(int(i) for i in ids)) if ids is not None else labels.ids()
    wanted = [i for i in wanted if i > 0]
    boxes = _bounding_boxes(labels.array, wanted)
    todo = [i for i in wanted if i in boxes]
    meshes: dict[int, VertebraMesh] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        jobs = {pool.submit(mesh_vertebra, labels, i, options, boxes[i]): i for i in todo}
        done = [i for i in wanted if i not in boxes]            # no voxels: nothing to mesh
        try:
            for n, label_id in enumerate(done):
                progress.update((n + 1) / len(wanted), f"Meshed {_name(labels, label_id)}")
            for job in as_completed(jobs):
                done.append(jobs[job])
                if (mesh := job.result()) is not None:
                    meshes[jobs[job]] = mesh
                progress.update(len(done) / len(wanted), f"Meshed {_name(labels, jobs[job])}")
        except BaseException:           # a cancel: what has not started never starts
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    progress.update(1.0, f"Meshed {len(meshes)} structures")
    return dict(sorted(meshes.items()))


def remesh_labels(labels: LabelMap, previous: Mapping[int, VertebraMesh], touched: Iterable[int],
                  options: MeshOptions | None = None, progress: Progress | None = None,
                  ) -> dict[int, VertebraMesh]:
    """Re-mesh only the ``touched`` labels (e.g. after an edit); keep every other previous mesh.

    A touched label that has no voxels any more loses its mesh. Untouched meshes are the same
    objects as in ``previous``, so a viewer can tell by identity which ones to redraw.
    """
    touched = {int(i) for i in touched}
    fresh = mesh_labels(labels, touched, options, progress)
    result = {i: m for i, m in previous.items() if i not in touched}
    result.update(fresh)
    return dict(sorted(result.items()))


def _refine(mesh: VertebraMesh, options: MeshOptions) -> VertebraMesh:
    """Smoothing then decimation with VTK (through pyvista); faces stay wound outward."""
    if options.smoothing_iterations == 0 and options.target_reduction == 0:
        return mesh
    poly = mesh.to_polydata()
    if options.smoothing_iterations > 0:
        poly = poly.smooth_taubin(n_iter=options.smoothing_iterations, pass_band=options.smoothing_pass_band,
                                  normalize_coordinates=True, non_manifold_smoothing=True)
    if options.target_reduction > 0 and mesh.n_faces >= _MIN_FACES_TO_DECIMATE:
        poly = poly.decimate(options.target_reduction, volume_preservation=True)
    faces = poly.faces.reshape(-1, 4)
    if not np.all(faces[:, 0] == 3):
        raise RuntimeError("mesh filters returned non-triangle cells")
    # Both filters keep each surviving triangle's vertex order, so the outward winding holds.
    return VertebraMesh(label_id=mesh.label_id, name=mesh.name, vertices=np.asarray(poly.points, np.float64),
                        faces=np.ascontiguousarray(faces[:, 1:], dtype=np.int64), centroid=mesh.centroid)


def _name(labels: LabelMap, label_id: int) -> str:
    return str(labels.names.get(int(label_id)) or label_name(int(label_id)))


def _bounding_box(array: np.ndarray, label_id: int) -> tuple[slice, ...] | None:
    return _bounding_boxes(array, [label_id]).get(int(label_id))


def _bounding_boxes(array: np.ndarray, ids: list[int]) -> dict[int, tuple[slice, ...]]:
    """Bounding boxes of the wanted ids in one pass over the array."""
    if not ids:
        return {}
    top = max(ids)
    relabelled = np.where((array > 0) & (array <= top), array, 0)
    found = ndimage.find_objects(relabelled.astype(np.int32, copy=False), max_label=top)
    return {i: found[i - 1] for i in ids if found[i - 1] is not None}
