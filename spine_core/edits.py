"""Label edits a clinician makes to a vertebra label map, as compact, invertible diffs (Qt-free).

Two kinds of diff, chosen per edit so that undo history stays small on 512 x 512 x 600 maps:

- an id *remap* (rename to a free id, shift every level up or down): a bijection on the ids present,
  undone by the inverse remap; it stores a few integers and leaves the voxel geometry unchanged, so
  meshes are relabelled, not recomputed (``relabel_meshes``);
- a *voxel diff* (merge, delete): the flat indices of the changed voxels with their old and new ids.

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
