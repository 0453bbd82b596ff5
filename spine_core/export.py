"""Export of labelled vertebra meshes for surgical navigation, in patient (LPS) millimetres.

Layout of an export::

    <folder>/                 e.g. .../case01/meshes
        L1.stl  L2.stl ...    one file per vertebra (binary STL, binary PLY or OBJ)
        screw-L4-left.stl ... one closed cylinder per planned screw, where the plan has screws
        manifest.json         coordinate system, units, source series and frame of reference, and per
                              file its sha256 (screws: level, side, diameter, length, entry, tip)

The export is built in a hidden sibling folder and renamed into place only when every file and the
manifest are written (each file itself through ``atomic_path``). A failure removes the partial
folder and leaves any previous export untouched; a crash can at worst leave a hidden
``.<name>.*.partial`` folder beside it, never a half-written ``<folder>``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.io.writers import staged_folder
from spine_core.meshes import VertebraMesh
from spine_core.progress import NullProgress, Progress

FORMATS = ("stl", "ply", "obj")
MANIFEST = "manifest.json"


class MeshExportError(SpineError):
    """The meshes could not be exported; the message says why and what to do."""


@dataclass(frozen=True)
class ExportOptions:
    format: str = "stl"              # "stl" (binary), "ply" (binary) or "obj"
    source_series_uid: str = ""      # DICOM SeriesInstanceUID of the scan the labels belong to
    frame_of_reference_uid: str = "" # DICOM FrameOfReferenceUID: the patient coordinates the LPS mm are in

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise MeshExportError(f"Unknown mesh format '{self.format}'; choose one of {', '.join(FORMATS)}.")


def export_meshes(meshes: Mapping[int, VertebraMesh], folder, options: ExportOptions | None = None,
                  progress: Progress | None = None, implants: Sequence[tuple[VertebraMesh, dict]] = ()) -> Path:
    """Write one file per mesh plus ``manifest.json`` into ``folder``, atomically. Returns ``folder``.
    ``implants``: planned screws as (mesh, what the manifest says of it), one file each beside the vertebrae."""
    options = options or ExportOptions()
    progress = progress or NullProgress()
    folder = Path(folder)
    if not meshes:
        raise MeshExportError("There are no vertebra meshes to export: segment the spine first.")
    try:
        with staged_folder(folder) as staging:
            entries = _write_files(meshes, staging, options, progress)
            manifest = {"coordinate_system": "LPS", "units": "mm", "format": options.format,
                        "source_series_uid": options.source_series_uid,
                        "frame_of_reference_uid": options.frame_of_reference_uid, "meshes": entries}
            if implants:
                manifest["screws"] = _write_implants(implants, staging, options.format)
            with atomic_path(staging / MANIFEST) as tmp:
                tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise MeshExportError(f"Could not write the meshes to '{folder}': {exc.strerror or exc}. "
                              "Check free disk space and permissions; nothing was changed.") from exc
    progress.update(1.0, f"Exported {len(meshes)} meshes")
    return folder


def read_manifest(folder) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def mesh_bytes(mesh: VertebraMesh, fmt: str) -> bytes:
    """The file content of one mesh in ``fmt`` (stl, ply or obj)."""
    return {"stl": _stl_bytes, "ply": _ply_bytes, "obj": _obj_bytes}[fmt](mesh)


def file_stem(name: str, label_id: int, taken: set[str]) -> str:
    """A portable file name from a clinical name: 'L4/L5' -> 'L4-L5'; unique within ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.replace("/", "-")).strip("-.") or f"label{label_id}"
    if stem.lower() in taken:
        stem = f"{stem}_{label_id}"
    taken.add(stem.lower())
    return stem


def _write_files(meshes, staging: Path, options: ExportOptions, progress: Progress) -> list[dict]:
    entries, taken = [], set()
    for n, (label_id, mesh) in enumerate(sorted(meshes.items())):
        progress.update(n / len(meshes), f"Writing {mesh.name}")
        data = mesh_bytes(mesh, options.format)
        name = f"{file_stem(mesh.name, label_id, taken)}.{options.format}"
        with atomic_path(staging / name) as tmp:
            tmp.write_bytes(data)
        entries.append({"id": int(label_id), "name": mesh.name, "file": name,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "n_vertices": mesh.n_vertices, "n_faces": mesh.n_faces,
                        "centroid": [round(float(c), 3) for c in mesh.centroid]})
    return entries


def _write_implants(implants, staging: Path, fmt: str) -> list[dict]:
    entries, taken = [], set()
    for mesh, record in implants:
        data = mesh_bytes(mesh, fmt)
        name = f"screw-{file_stem(mesh.name, mesh.label_id, taken)}.{fmt}"
        with atomic_path(staging / name) as tmp:
            tmp.write_bytes(data)
        entries.append({**record, "name": mesh.name, "file": name, "sha256": hashlib.sha256(data).hexdigest(),
                        "n_vertices": mesh.n_vertices, "n_faces": mesh.n_faces})
    return entries


def _face_normals(mesh: VertebraMesh) -> np.ndarray:
    v = mesh.vertices
    n = np.cross(v[mesh.faces[:, 1]] - v[mesh.faces[:, 0]], v[mesh.faces[:, 2]] - v[mesh.faces[:, 0]])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _stl_bytes(mesh: VertebraMesh) -> bytes:
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    rows = np.zeros(mesh.n_faces, dtype=record)
    rows["normal"] = _face_normals(mesh)
    rows["v"] = mesh.vertices[mesh.faces]
    # The header must not start with "solid" (that marks ASCII STL to many readers).
    header = f"SpinePlan {mesh.name} (id {mesh.label_id}) LPS mm".encode("ascii", "replace")[:80]
    return header.ljust(80, b" ") + np.uint32(mesh.n_faces).tobytes() + rows.tobytes()


def _ply_bytes(mesh: VertebraMesh) -> bytes:
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"comment SpinePlan {mesh.name} (id {mesh.label_id}) LPS mm\n"
              f"element vertex {mesh.n_vertices}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {mesh.n_faces}\nproperty list uchar int vertex_indices\nend_header\n")
    faces = np.zeros(mesh.n_faces, dtype=np.dtype([("n", "u1"), ("v", "<i4", 3)]))
    faces["n"], faces["v"] = 3, mesh.faces
    return header.encode("ascii", "replace") + mesh.vertices.astype("<f4").tobytes() + faces.tobytes()


def _obj_bytes(mesh: VertebraMesh) -> bytes:
    lines = [f"# SpinePlan {mesh.name} (id {mesh.label_id}) LPS mm", f"o {mesh.name}"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in mesh.vertices]
    lines += [f"f {a} {b} {c}" for a, b, c in mesh.faces + 1]
    return ("\n".join(lines) + "\n").encode("utf-8")
