"""Vertebra meshes and their export, on tiny synthetic label maps (headless)."""
import hashlib
import json

import numpy as np
import pytest

from spine_core.errors import Cancelled
from spine_core.export import ExportOptions, MeshExportError, export_meshes, read_manifest
from spine_core.meshes import MeshOptions, mesh_labels, remesh_labels
from spine_core.progress import CancelToken, NullProgress
from spine_core.volume import LabelMap, affine_from_geometry

SHAPE = (40, 40, 40)
CENTRE = np.array([5.0, -12.0, 40.0])       # LPS mm
RADIUS = 9.0


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


GRIDS = {
    "identity": np.eye(3),
    "PIR": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),   # as verse009, det > 0
    "mirror": np.diag([1.0, -1.0, 1.0]),                                      # det < 0
    "oblique_mirror": _rotation(0.3, -0.2, 0.5) @ np.diag([1.0, 1.0, -1.0]),  # oblique, det < 0
}
SPACINGS = {"identity": (1.0, 1.0, 1.0), "PIR": (0.8, 1.0, 1.25), "mirror": (1.0, 0.9, 1.5),
            "oblique_mirror": (0.9, 0.9, 1.2)}


def _grid_affine(kind):
    spacing = np.array(SPACINGS[kind])
    direction = GRIDS[kind]
    centre_index = (np.array(SHAPE) - 1) / 2
    origin = CENTRE - direction @ (spacing * centre_index)
    return affine_from_geometry(spacing, direction, origin)


def _spheres(kind, specs=((1, CENTRE, RADIUS),)):
    """A label map holding balls (id, centre LPS, radius mm) on the grid ``kind``."""
    affine = _grid_affine(kind)
    ijk = np.indices(SHAPE).reshape(3, -1).T
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    array = np.zeros(int(np.prod(SHAPE)), np.int16)
    for label_id, centre, radius in specs:
        array[np.linalg.norm(lps - centre, axis=1) <= radius] = label_id
    return LabelMap(array.reshape(SHAPE), affine), lps


def _voxel_box(labels, lps, label_id):
    """LPS bounding box of the label's voxel centres, widened by half a voxel diagonal."""
    inside = lps[labels.array.ravel() == label_id]
    half = 0.5 * np.abs(labels.affine[:3, :3]).sum(axis=1)
    return inside.min(0) - half, inside.max(0) + half


@pytest.mark.parametrize("kind", list(GRIDS))
def test_sphere_mesh_matches_lps_extent_and_faces_outward(kind):
    labels, _ = _spheres(kind)
    assert (np.linalg.det(labels.affine[:3, :3]) < 0) == ("mirror" in kind)
    mesh = mesh_labels(labels)[1]
    voxel = float(labels.spacing.max())
    np.testing.assert_allclose(mesh.bounds[0], CENTRE - RADIUS, atol=voxel)
    np.testing.assert_allclose(mesh.bounds[1], CENTRE + RADIUS, atol=voxel)
    np.testing.assert_allclose(mesh.centroid, CENTRE, atol=0.5)
    expected = 4 / 3 * np.pi * RADIUS ** 3
    assert mesh.signed_volume_mm3() == pytest.approx(expected, rel=0.12)
    poly = mesh.to_polydata()
    assert poly.volume == pytest.approx(expected, rel=0.12)
    normals = poly.compute_normals(auto_orient_normals=False, consistent_normals=False,
                                   cell_normals=True, point_normals=False)["Normals"]
    outward = np.einsum("ij,ij->i", normals, poly.cell_centers().points - CENTRE) > 0
    assert outward.mean() > 0.99
    assert poly.n_open_edges == 0


def test_options_change_smoothing_and_decimation():
    labels, _ = _spheres("identity", ((1, CENTRE, 14.0),))
    raw = mesh_labels(labels, options=MeshOptions(smoothing_iterations=0, target_reduction=0))[1]
    fine = mesh_labels(labels, options=MeshOptions(target_reduction=0))[1]
    coarse = mesh_labels(labels, options=MeshOptions(target_reduction=0.75))[1]
    assert raw.n_faces == fine.n_faces > coarse.n_faces
    assert coarse.n_faces < 0.35 * fine.n_faces
    radii = np.linalg.norm(fine.vertices - CENTRE, axis=1)
    raw_radii = np.linalg.norm(raw.vertices - CENTRE, axis=1)
    assert radii.std() < raw_radii.std()          # smoothing removes the voxel staircase
    assert coarse.signed_volume_mm3() > 0


def _two_balls():
    return ((3, CENTRE + [0, 0, -10], 6.0), (4, CENTRE + [0, 0, 10], 6.0))


def test_only_requested_labels_are_remeshed():
    labels, _ = _spheres("identity", _two_balls())
    first = mesh_labels(labels)
    assert sorted(first) == [3, 4]
    assert (first[3].name, first[4].name) == ("C3", "C4")
    edited = labels.array.copy()
    edited[edited == 4] = 0                       # the user erased label 4
    edited[20, 20, 5:8] = 3                       # and painted onto label 3
    relabelled = LabelMap(edited, labels.affine)
    seen = []

    class Recorder(NullProgress):
        def update(self, fraction, message=""):
            seen.append(message)

    again = remesh_labels(relabelled, first, touched=[4], progress=Recorder())
    assert sorted(again) == [3] and again[3] is first[3]      # 3 untouched: same object
    assert "Meshed C4" in seen and "Meshed C3" not in seen
    again = remesh_labels(relabelled, first, touched=[3])
    assert again[4] is first[4] and again[3] is not first[3]


def test_meshing_can_be_cancelled():
    labels, _ = _spheres("identity", _two_balls())
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        mesh_labels(labels, progress=NullProgress(token))


@pytest.mark.parametrize("fmt", ["stl", "ply", "obj"])
def test_export_writes_files_and_manifest(tmp_path, fmt):
    import pyvista as pv

    labels, lps = _spheres("oblique_mirror", _two_balls())
    meshes = mesh_labels(labels)
    folder = export_meshes(meshes, tmp_path / "case" / "meshes",
                           ExportOptions(format=fmt, source_series_uid="1.2.3"))
    manifest = read_manifest(folder)
    assert manifest["coordinate_system"] == "LPS" and manifest["units"] == "mm"
    assert manifest["source_series_uid"] == "1.2.3"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json"] + [
        m["file"] for m in manifest["meshes"]])
    for entry in manifest["meshes"]:
        path = folder / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        mesh = meshes[entry["id"]]
        assert entry["name"] == mesh.name and path.suffix == f".{fmt}"
        assert (entry["n_vertices"], entry["n_faces"]) == (mesh.n_vertices, mesh.n_faces)
        read = pv.read(path)
        assert read.n_cells == mesh.n_faces
        low, high = _voxel_box(labels, lps, entry["id"])
        bounds = np.array(read.bounds).reshape(3, 2)
        np.testing.assert_array_less(low - 0.01, bounds[:, 0])
        np.testing.assert_array_less(bounds[:, 1], high + 0.01)
        np.testing.assert_allclose(bounds[:, 0], low, atol=1.5)
        np.testing.assert_allclose(bounds[:, 1], high, atol=1.5)
        np.testing.assert_allclose(entry["centroid"], mesh.centroid, atol=1e-3)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_stl_is_binary_with_outward_normals(tmp_path):
    labels, _ = _spheres("mirror")
    folder = export_meshes(mesh_labels(labels), tmp_path / "meshes")
    data = (folder / "C1.stl").read_bytes()
    assert not data.startswith(b"solid")
    n = int(np.frombuffer(data[80:84], "<u4")[0])
    rows = np.frombuffer(data[84:], np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    assert len(rows) == n and len(data) == 84 + 50 * n
    outward = np.einsum("ij,ij->i", rows["normal"], rows["v"].mean(axis=1) - CENTRE) > 0
    assert outward.mean() > 0.99


def test_failed_export_leaves_no_partial_folder_and_keeps_previous(tmp_path, monkeypatch):
    import spine_core.export as export

    labels, _ = _spheres("identity", _two_balls())
    meshes = mesh_labels(labels)
    target = tmp_path / "meshes"
    export_meshes(meshes, target)
    before = json.loads((target / "manifest.json").read_text())
    calls = []

    def failing(mesh, fmt):
        calls.append(mesh.label_id)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return b"x"

    monkeypatch.setattr(export, "mesh_bytes", failing)
    with pytest.raises(MeshExportError, match="disk space"):
        export_meshes(meshes, target, ExportOptions(format="ply"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshes"]
    assert json.loads((target / "manifest.json").read_text()) == before
    with pytest.raises(MeshExportError, match="segment the spine"):
        export_meshes({}, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
