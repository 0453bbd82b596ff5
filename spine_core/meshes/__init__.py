"""Per-vertebra surface meshes in LPS millimetres (Qt-free; VTK is used as a library only)."""
from spine_core.meshes.surface import MeshOptions, VertebraMesh, mesh_labels, mesh_vertebra, remesh_labels

__all__ = ["MeshOptions", "VertebraMesh", "mesh_labels", "mesh_vertebra", "remesh_labels"]
