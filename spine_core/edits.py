"""Label edits a clinician makes to a vertebra label map, as compact, invertible diffs (Qt-free).

Two kinds of diff, chosen per edit so that undo history stays small on 512 x 512 x 600 maps:

- an id *remap* (rename to a free id, shift every level up or down): a bijection on the ids present,
  undone by the inverse remap; it stores a few integers and leaves the voxel geometry unchanged, so
  meshes are relabelled, not recomputed (``relabel_meshes``);
- a *voxel diff* (merge, delete, split, a brush stroke): the flat indices of the changed voxels with
  their old and new ids (old ids may differ voxel by voxel: a brush paints over neighbours).

Edits never modify a label map in place: ``apply_edit`` returns a new LabelMap on a new array, so a
worker thread still reading the previous map is never disturbed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from spine_core.errors import SpineError
from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, L6, T13, is_disc, label_name
from spine_core.meshes import VertebraMesh
from spine_core.volume import LabelMap

DEFAULT_HISTORY = 50


class EditError(SpineError):
    """The edit cannot be made as asked; the message says why and what to do instead."""


@dataclass(frozen=True, eq=False)
class LabelEdit:
    """One undoable change: an id remap, or changed voxels (flat indices, old and new ids)."""

    description: str
    remap: tuple[tuple[int, int], ...] = ()
    indices: np.ndarray | None = field(default=None, repr=False)
    old: np.ndarray | int = 0
    new: np.ndarray | int = 0

    @property
    def is_remap(self) -> bool:
        return bool(self.remap)

    @property
    def touched(self) -> frozenset[int]:
        """Every id whose voxels changed: sources and targets of the edit."""
        if self.remap:
            return frozenset(i for pair in self.remap for i in pair)
        return frozenset(int(v) for v in np.unique(np.concatenate(
            [np.atleast_1d(self.old), np.atleast_1d(self.new)])) if v != 0)

    def inverse(self) -> "LabelEdit":
        if self.remap:
            return replace(self, remap=tuple((b, a) for a, b in self.remap))
        return replace(self, old=self.new, new=self.old)

    @property
    def nbytes(self) -> int:
        arrays = (self.indices, self.old, self.new)
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)) + 16 * len(self.remap)


def apply_edit(labels: LabelMap, edit: LabelEdit) -> LabelMap:
    """A new LabelMap with ``edit`` applied (the input is left untouched)."""
    if edit.remap:
        top = max(int(labels.array.max(initial=0)), *(b for _, b in edit.remap))
        lut = np.arange(top + 1, dtype=labels.array.dtype)
        for a, b in edit.remap:
            if a <= top:
                lut[a] = b
        array = lut[labels.array]
    else:
        array = labels.array.copy()
        array.reshape(-1)[edit.indices] = edit.new
    return LabelMap(array, labels.affine, labels.metadata, names=_names_after(labels, array, edit))


def _names_after(labels: LabelMap, array: np.ndarray, edit: LabelEdit) -> dict[int, str]:
    present = {int(i) for i in np.unique(array) if i != 0}
    names = {i: n for i, n in labels.names.items() if i in present and i not in edit.touched}
    names.update({i: label_name(i) for i in present if i not in names})
    return dict(sorted(names.items()))


def _flat_indices(labels: LabelMap, label_id: int) -> np.ndarray:
    dtype = np.uint32 if labels.array.size < 2 ** 32 else np.int64
    return np.flatnonzero(labels.array == label_id).astype(dtype, copy=False)


def _require(labels: LabelMap, label_id: int) -> None:
    if int(label_id) not in labels.ids():
        raise EditError(f"{label_name(label_id)} is not in the label map; choose a vertebra that is shown.")


def rename_vertebra(labels: LabelMap, old_id: int, new_id: int) -> LabelEdit:
    """Give vertebra ``old_id`` the id ``new_id`` (which must be free: else use merge)."""
    old_id, new_id = int(old_id), int(new_id)
    _require(labels, old_id)
    if new_id <= 0:
        raise EditError("Choose a vertebra name to rename to (use Delete to remove a vertebra).")
    if new_id == old_id:
        raise EditError(f"{label_name(old_id)} already has that name.")
    if new_id in labels.ids():
        raise EditError(f"{label_name(new_id)} already exists. Rename it first, or merge "
                        f"{label_name(old_id)} into it.")
    return LabelEdit(f"Rename {label_name(old_id)} to {label_name(new_id)}", remap=((old_id, new_id),))


def _shift_order(present: set[int]) -> list[int]:
    """Levels in cranio-caudal order; the transitional T13 and L6 only where the map has them."""
    return [v for v in CRANIOCAUDAL if v not in (T13, L6) or v in present]


def shift_levels(labels: LabelMap, step: int) -> LabelEdit:
    """Move every vertebra (and disc) one level: step -1 = up (cranial, L1 -> T12), +1 = down."""
    if step not in (-1, 1):
        raise ValueError("step must be -1 (up) or +1 (down)")
    present = set(labels.ids())
    order = _shift_order(present)
    remap: list[tuple[int, int]] = []
    for label_id in sorted(present):
        vertebra = label_id - DISC_OFFSET if is_disc(label_id) else label_id
        if vertebra not in order:
            continue
        position = order.index(vertebra) + step
        if not 0 <= position < len(order):
            where = "above" if step < 0 else "below"
            raise EditError(f"{label_name(label_id)} has no level {where} it; the labels cannot "
                            f"shift {'up' if step < 0 else 'down'}.")
        target = order[position] + (DISC_OFFSET if is_disc(label_id) else 0)
        remap.append((label_id, target))
    if not remap:
        raise EditError("There are no vertebrae to shift.")
    moved = {a for a, _ in remap}
    clash = [b for _, b in remap if b in present and b not in moved]
    if clash:
        raise EditError(f"Shifting would overwrite {label_name(clash[0])}; rename it first.")
    return LabelEdit(f"Shift all levels {'up' if step < 0 else 'down'}", remap=tuple(remap))


def merge_vertebrae(labels: LabelMap, source: int, target: int) -> LabelEdit:
    """Relabel every voxel of ``source`` as ``target`` (e.g. two halves of one vertebra)."""
    source, target = int(source), int(target)
    _require(labels, source)
    _require(labels, target)
    if source == target:
        raise EditError("Choose two different vertebrae to merge.")
    return LabelEdit(f"Merge {label_name(source)} into {label_name(target)}",
                     indices=_flat_indices(labels, source), old=source, new=target)


def delete_vertebra(labels: LabelMap, label_id: int) -> LabelEdit:
    """Set every voxel of ``label_id`` to background."""
    label_id = int(label_id)
    _require(labels, label_id)
    return LabelEdit(f"Delete {label_name(label_id)}", indices=_flat_indices(labels, label_id),
                     old=label_id, new=0)


def spine_axis(labels: LabelMap) -> np.ndarray:
    """Unit vector along the spine in LPS, pointing superior: the principal direction of the
    vertebra centroids (the scanner's S axis when fewer than three vertebrae are labelled)."""
    ids = [i for i in labels.ids() if not is_disc(i)]
    if len(ids) >= 3:
        centroids = np.array([labels.index_to_lps(np.argwhere(labels.array == i).mean(axis=0)) for i in ids])
        _, _, vt = np.linalg.svd(centroids - centroids.mean(axis=0), full_matrices=False)
        axis = vt[0]
    else:
        axis = np.array([0.0, 0.0, 1.0])
    return axis if axis[2] >= 0 else -axis


def _split_target(labels: LabelMap, label_id: int) -> int:
    order = _shift_order(set(labels.ids()))           # T13 / L6 only where the map has them
    below = order[order.index(label_id) + 1] if label_id in order[:-1] else None
    if below is None:
        raise EditError(f"{label_name(label_id)} has no level below it to give the lower part.")
    if below in labels.ids():
        raise EditError(f"{label_name(below)} already exists. Shift the lower levels down (Ctrl+Down "
                        f"on {label_name(below)} and below) or rename it first, then split.")
    return below


def split_vertebra(labels: LabelMap, label_id: int, method: str = "plane") -> LabelEdit:
    """Split one vertebra in two: the upper part keeps its id, the lower part gets the next level.

    ``method='plane'``: by the plane through its centroid perpendicular to the spine axis;
    ``method='components'``: by connected pieces (the uppermost keeps the id, the rest move down).
    """
    label_id = int(label_id)
    _require(labels, label_id)
    if method not in ("plane", "components"):
        raise ValueError("method must be 'plane' or 'components'")
    target = _split_target(labels, label_id)
    indices = _flat_indices(labels, label_id)
    ijk = np.stack(np.unravel_index(indices, labels.shape), axis=1).astype(np.float64)
    height = labels.index_to_lps(ijk) @ spine_axis(labels)
    if method == "plane":
        lower = height < height.mean()
    else:
        lower = _lower_components(labels, label_id, indices, height)
    if lower.all() or not lower.any():
        raise EditError(f"{label_name(label_id)} cannot be split this way; paint or erase instead.")
    return LabelEdit(f"Split {label_name(label_id)} ({label_name(target)} below)",
                     indices=indices[lower], old=label_id, new=target)


def _lower_components(labels: LabelMap, label_id: int, indices: np.ndarray, height: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    pieces, count = ndimage.label(labels.array == label_id)
    if count < 2:
        raise EditError(f"{label_name(label_id)} is one connected piece; split it by a plane instead.")
    which = pieces.reshape(-1)[indices]
    mean_height = ndimage.mean(height, labels=which, index=np.arange(1, count + 1))
    return which != 1 + int(np.argmax(mean_height))


class BrushStroke:
    """One paint or erase stroke: dabs of a disc (radius in mm) on one slice plane, applied to a
    private copy of the labels for live display; ``finish()`` gives one undoable LabelEdit.

    Paint sets every voxel under the brush to ``label_id``; erase clears only ``label_id``'s voxels.
    ``normal_axis`` (an array axis) limits each dab to the voxel slice through its centre.
    """

    def __init__(self, labels: LabelMap, label_id: int, radius_mm: float, erase: bool = False,
                 normal_axis: int | None = None) -> None:
        if label_id <= 0:
            raise EditError("Select the vertebra to paint (click its row or its mesh) first.")
        self.source, self.label_id, self.erase = labels, int(label_id), bool(erase)
        self.radius_mm, self.normal_axis = max(float(radius_mm), 0.1), normal_axis
        self.array = labels.array.copy()
        self._old: dict[int, int] = {}

    def add(self, center_lps) -> int:
        """Apply one dab; returns how many voxels it changed."""
        center = self.source.lps_to_index(center_lps)
        spacing = self.source.spacing
        reach = np.ceil(self.radius_mm / spacing).astype(int)
        low = np.maximum(np.floor(center).astype(int) - reach, 0)
        high = np.minimum(np.ceil(center).astype(int) + reach + 1, self.source.shape)
        if self.normal_axis is not None:
            k = int(np.clip(np.rint(center[self.normal_axis]), 0, self.source.shape[self.normal_axis] - 1))
            low[self.normal_axis], high[self.normal_axis] = k, k + 1
        if np.any(high <= low):
            return 0
        grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high)), indexing="ij"), -1)
        offsets = (grid - center) @ self.source.affine[:3, :3].T
        inside = np.einsum("...i,...i->...", offsets, offsets) <= self.radius_mm ** 2
        box = self.array[tuple(slice(a, b) for a, b in zip(low, high))]
        change = inside & ((box == self.label_id) if self.erase else (box != self.label_id))
        flat = np.ravel_multi_index(tuple(grid[change].T), self.source.shape)
        for index, value in zip(flat.tolist(), box[change].tolist()):
            self._old.setdefault(index, value)
        box[change] = 0 if self.erase else self.label_id
        return int(change.sum())

    def preview(self) -> LabelMap:
        """The labels with the stroke so far (shares the stroke's array: cheap, for display)."""
        names = dict(self.source.names)
        names.setdefault(self.label_id, label_name(self.label_id))
        return LabelMap(self.array, self.source.affine, self.source.metadata, names=names)

    def finish(self) -> LabelEdit | None:
        """The stroke as one voxel diff, or None when it changed nothing."""
        if not self._old:
            return None
        dtype = np.uint32 if self.array.size < 2 ** 32 else np.int64
        indices = np.fromiter(self._old, dtype=dtype, count=len(self._old))
        order = np.argsort(indices)
        old = np.fromiter(self._old.values(), dtype=self.array.dtype, count=len(self._old))[order]
        verb = "Erase" if self.erase else "Paint"
        return LabelEdit(f"{verb} {label_name(self.label_id)}", indices=indices[order], old=old,
                         new=0 if self.erase else self.label_id)


def relabel_meshes(meshes: Mapping[int, VertebraMesh], remap) -> dict[int, VertebraMesh]:
    """Meshes after an id remap: same surfaces under their new ids and names (no re-meshing)."""
    mapping = dict(remap)
    result = {}
    for label_id, mesh in meshes.items():
        new_id = mapping.get(label_id, label_id)
        result[new_id] = mesh if new_id == label_id else replace(mesh, label_id=new_id, name=label_name(new_id))
    return dict(sorted(result.items()))


class EditHistory:
    """Undo and redo stacks of LabelEdits; a new edit clears the redo stack."""

    def __init__(self, limit: int = DEFAULT_HISTORY) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._undo: list[LabelEdit] = []
        self._redo: list[LabelEdit] = []

    def push(self, edit: LabelEdit) -> None:
        self._undo.append(edit)
        del self._undo[:-self.limit]
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> LabelEdit:
        """The edit to revert (apply its ``inverse()``)."""
        if not self._undo:
            raise EditError("Nothing to undo.")
        edit = self._undo.pop()
        self._redo.append(edit)
        return edit

    def redo(self) -> LabelEdit:
        """The edit to apply again."""
        if not self._redo:
            raise EditError("Nothing to redo.")
        edit = self._redo.pop()
        self._undo.append(edit)
        return edit

    def done(self) -> list[LabelEdit]:
        """The edits made (and not undone), oldest first."""
        return list(self._undo)

    def next_undo(self) -> LabelEdit | None:
        return self._undo[-1] if self._undo else None

    def next_redo(self) -> LabelEdit | None:
        return self._redo[-1] if self._redo else None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._undo + self._redo)
