"""The evented Session: the open scan, its label map, vertebra meshes, the selection, the planned screws
and the edit history.

Thin Qt wrapper over ``spine_core.edits``: widgets subscribe to its typed signals; it never touches
a widget. After a voxel edit the touched ids are *stale* until ``set_meshes`` delivers fresh meshes
made from the current label map (the window runs ``remesh_labels`` in a Worker); an id remap
(rename, shift) relabels meshes at once. Screw changes (``spine_core.planning.edits.ScrewEdit``) share the
history with the label edits: one Undo takes back whichever came last. Screws belong to the scan: a new
scan drops them, new labels keep them (their checks are redone by ui/planning_actions.py).
"""
from __future__ import annotations

from typing import Mapping

from PySide6.QtCore import QObject, Signal

from spine_core.edits import EditHistory, LabelEdit, apply_edit, relabel_meshes
from spine_core.meshes import VertebraMesh
from spine_core.planning.edits import ScrewEdit
from spine_core.planning.screws import Screw
from spine_core.volume import LabelMap, Volume


class Session(QObject):
    volume_changed = Signal()
    labels_changed = Signal(object)        # set[int]: ids whose voxels changed (all ids on load)
    meshes_changed = Signal()
    selection_changed = Signal(int)        # vertebra id, 0 = none
    history_changed = Signal()
    screws_changed = Signal()

    def __init__(self, history_limit: int = 50, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.volume: Volume | None = None
        self.labels: LabelMap | None = None
        self.meshes: dict[int, VertebraMesh] = {}
        self.selected = 0
        self.stale_mesh_ids: set[int] = set()
        self.history = EditHistory(history_limit)
        self.source = ""                   # path the scan came from
        self.screws: tuple[Screw, ...] = ()
        self.last_remap: dict[int, int] = {}     # old id -> new id of the last change (an id remap), else {}

    # --- loading ------------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None, source: str = "") -> None:
        """A new scan: labels, meshes, selection and history of the previous one are dropped."""
        self.volume, self.source = volume, source
        self._reset_labels(None)
        self.set_screws(())
        self.volume_changed.emit()

    def set_labels(self, labels: LabelMap | None) -> None:
        """New labels for the scan (loaded or segmented): meshes go stale, history restarts."""
        old = set(self.labels.ids()) if self.labels is not None else set()
        self._reset_labels(labels)
        self.labels_changed.emit(old | set(self.stale_mesh_ids))

    def _reset_labels(self, labels: LabelMap | None) -> None:
        self.labels, self.last_remap = labels, {}
        self.meshes = {}
        self.stale_mesh_ids = set(labels.ids()) if labels is not None else set()
        self.history.clear()
        self.history_changed.emit()
        self.meshes_changed.emit()
        self.select(0)

    def set_meshes(self, meshes: Mapping[int, VertebraMesh], labels: LabelMap, ids) -> bool:
        """Fresh meshes of ``ids`` made from ``labels``; ignored (False) when the labels moved on."""
        if labels is not self.labels:
            return False
        ids = {int(i) for i in ids}
        merged = {i: m for i, m in self.meshes.items() if i not in ids}
        merged.update({i: m for i, m in meshes.items() if i in ids})
        self.meshes = dict(sorted(merged.items()))
        self.stale_mesh_ids -= ids
        self.meshes_changed.emit()
        return True

    # --- selection ----------------------------------------------------------------------------
    def select(self, label_id: int) -> None:
        label_id = int(label_id)
        if self.labels is None or label_id not in self.labels.names:
            label_id = 0
        if label_id != self.selected:
            self.selected = label_id
            self.selection_changed.emit(label_id)

    # --- screws -------------------------------------------------------------------------------
    def set_screws(self, screws) -> None:
        """Screws that are no edit of the user's: a plan's, or the same screws with their checks redone."""
        screws = tuple(screws)
        if screws != self.screws:
            self.screws = screws
            self.screws_changed.emit()

    # --- edits --------------------------------------------------------------------------------
    def apply(self, edit: LabelEdit | ScrewEdit) -> None:
        """Make an edit (from spine_core.edits) and record it for undo."""
        self._apply(edit)
        self.history.push(edit)
        self.history_changed.emit()

    def undo(self) -> LabelEdit:
        edit = self.history.undo()
        self._apply(edit.inverse())
        self.history_changed.emit()
        return edit

    def redo(self) -> LabelEdit:
        edit = self.history.redo()
        self._apply(edit)
        self.history_changed.emit()
        return edit

    def _apply(self, edit: LabelEdit | ScrewEdit) -> None:
        if isinstance(edit, ScrewEdit):
            self.screws = tuple(edit.after)
            self.screws_changed.emit()
            return
        if self.labels is None:
            return
        self.labels = apply_edit(self.labels, edit)
        self.last_remap = dict(edit.remap) if edit.is_remap else {}
        if edit.is_remap:
            mapping = dict(edit.remap)
            self.meshes = relabel_meshes(self.meshes, edit.remap)
            self.stale_mesh_ids = {mapping.get(i, i) for i in self.stale_mesh_ids}
            selected = mapping.get(self.selected, self.selected)
        else:
            self.stale_mesh_ids |= set(edit.touched)
            selected = self.selected
        self.meshes = {i: m for i, m in self.meshes.items() if i in self.labels.names}
        self.selected = 0 if selected not in self.labels.names else selected
        self.labels_changed.emit(set(edit.touched))
        self.meshes_changed.emit()
        self.selection_changed.emit(self.selected)
