"""Label edits: each edit and its inverse, compact diffs, history limits (headless)."""
import numpy as np
import pytest

from spine_core.edits import (EditError, EditHistory, apply_edit, delete_vertebra, merge_vertebrae,
                              relabel_meshes, rename_vertebra, shift_levels)
from spine_core.meshes import mesh_labels
from spine_core.volume import LabelMap, affine_from_geometry

T11, T12, L1, L2, SACRUM, T13 = 18, 19, 20, 21, 26, 28


def _labels(ids=(T11, T12, L1), disc=True, shape=(12, 12, 40)) -> LabelMap:
    """Stacked boxes, one per id, from head (high k... written top down) with an optional disc."""
    array = np.zeros(shape, np.int16)
    for n, label_id in enumerate(ids):
        array[3:9, 3:9, 2 + 12 * n: 10 + 12 * n] = label_id
    if disc:
        array[4:8, 4:8, 10:13] = 100 + ids[0]
    return LabelMap(array, affine_from_geometry((1.0, 1.0, 2.0)))


def _round_trip(labels, edit):
    after = apply_edit(labels, edit)
    back = apply_edit(after, edit.inverse())
    assert np.array_equal(back.array, labels.array)
    assert back.ids() == labels.ids()
    return after


def test_rename_is_a_remap_and_reverts_exactly():
    labels = _labels()
    edit = rename_vertebra(labels, L1, L2)
    assert edit.is_remap and edit.touched == {L1, L2}
    after = _round_trip(labels, edit)
    assert after.ids() == [T11, T12, L2, 100 + T11]
    assert after.names[L2] == "L2" and L1 not in after.names
    assert np.array_equal(after.array == L2, labels.array == L1)
    assert labels.ids() == [T11, T12, L1, 100 + T11]          # the input is untouched


@pytest.mark.parametrize("old, new", [(L1, T12), (L1, L1), (L2, L1), (L1, 0)])
def test_rename_refuses_clashes_and_missing_ids(old, new):
    with pytest.raises(EditError):
        rename_vertebra(_labels(), old, new)


def test_shift_moves_every_level_and_its_disc():
    labels = _labels()
    down = shift_levels(labels, +1)
    after = _round_trip(labels, down)
    assert after.ids() == [T12, L1, L2, 100 + T12]           # T13 is skipped where absent
    up = shift_levels(labels, -1)
    assert apply_edit(labels, up).ids() == [17, T11, T12, 117]
    assert "down" in down.description and "up" in up.description


def test_shift_uses_t13_only_where_present_and_stops_at_the_ends():
    with_t13 = _labels((T12, T13, L1), disc=False)
    assert set(apply_edit(with_t13, shift_levels(with_t13, +1)).ids()) == {T13, L1, L2}
    with pytest.raises(EditError, match="below"):
        shift_levels(_labels((L1, SACRUM), disc=False), +1)
    with pytest.raises(EditError, match="above"):
        shift_levels(_labels((1, 2), disc=False), -1)


def test_merge_and_delete_store_only_the_changed_voxels():
    labels = _labels()
    merge = merge_vertebrae(labels, L1, T12)
    assert merge.touched == {L1, T12} and not merge.is_remap
    assert merge.indices.size == int((labels.array == L1).sum())
    assert merge.nbytes == merge.indices.nbytes < labels.array.nbytes / 5
    after = _round_trip(labels, merge)
    assert after.ids() == [T11, T12, 100 + T11]
    assert int((after.array == T12).sum()) == int(np.isin(labels.array, [T12, L1]).sum())
    delete = delete_vertebra(labels, T11)
    after = _round_trip(labels, delete)
    assert T11 not in after.ids() and delete.touched == {T11}
    with pytest.raises(EditError):
        merge_vertebrae(labels, L1, L1)
    with pytest.raises(EditError):
        delete_vertebra(labels, L2)


def test_history_undo_redo_and_limit():
    labels = _labels()
    history = EditHistory(limit=20)
    states = [labels]
    for n in range(25):
        edit = shift_levels(states[-1], +1 if n % 2 == 0 else -1)
        history.push(edit)
        states.append(apply_edit(states[-1], edit))
    assert len(history) == 20
    current = states[-1]
    for n in range(20):
        current = apply_edit(current, history.undo().inverse())
        assert np.array_equal(current.array, states[-2 - n].array)
    with pytest.raises(EditError):
        history.undo()
    current = apply_edit(current, history.redo())
    assert np.array_equal(current.array, states[6].array)
    history.push(delete_vertebra(current, current.ids()[0]))
    assert not history.can_redo()


def test_relabel_meshes_keeps_surfaces_under_new_ids():
    labels = _labels(disc=False)
    meshes = mesh_labels(labels)
    edit = shift_levels(labels, +1)
    moved = relabel_meshes(meshes, edit.remap)
    assert sorted(moved) == [T12, L1, L2]
    assert moved[L2].name == "L2" and moved[L2].vertices is meshes[L1].vertices
    untouched = relabel_meshes(meshes, rename_vertebra(labels, T11, 17).remap)
    assert untouched[T12] is meshes[T12]


def test_split_by_plane_gives_the_lower_half_the_next_level():
    from spine_core.edits import spine_axis, split_vertebra

    labels = _labels((T11, T12), disc=False)
    np.testing.assert_allclose(spine_axis(labels), [0, 0, 1])
    edit = split_vertebra(labels, T12)
    after = _round_trip(labels, edit)
    assert after.ids() == [T11, T12, L1] and edit.touched == {T12, L1}
    ks_upper = np.argwhere(after.array == T12)[:, 2]
    ks_lower = np.argwhere(after.array == L1)[:, 2]
    assert ks_lower.max() < ks_upper.min()                      # k grows superior here
    assert abs(len(ks_upper) - len(ks_lower)) <= 36 * 2
    with pytest.raises(EditError, match="already exists"):
        split_vertebra(_labels((T11, T12, L1), disc=False), T12)


def test_split_by_components_keeps_the_uppermost_piece():
    from spine_core.edits import split_vertebra

    labels = _labels((T11,), disc=False)
    array = labels.array.copy()
    array[3:9, 3:9, 14:20] = T11                                # a second piece, higher up
    labels = LabelMap(array, labels.affine)
    after = _round_trip(labels, split_vertebra(labels, T11, method="components"))
    assert set(np.argwhere(after.array == T11)[:, 2]) == set(range(14, 20))
    assert set(np.argwhere(after.array == T12)[:, 2]) == set(range(2, 10))
    with pytest.raises(EditError, match="one connected piece"):
        split_vertebra(_labels((T11,), disc=False), T11, method="components")


def test_brush_stroke_paints_a_disc_and_undoes_exactly():
    from spine_core.edits import BrushStroke

    labels = _labels()
    stroke = BrushStroke(labels, L1, radius_mm=2.0, normal_axis=2)
    centre = labels.index_to_lps([6, 6, 12])                   # over the disc and background
    assert stroke.add(centre) > 0
    stroke.add(labels.index_to_lps([6, 7, 12]))                 # overlapping dab: no double record
    painted = stroke.preview().array
    assert np.all(painted[:, :, 12][np.hypot(*np.indices((12, 12)) - 6) <= 2] == L1)
    assert np.array_equal(painted[:, :, 11], labels.array[:, :, 11])   # one slice only
    edit = stroke.finish()
    assert edit.indices.size == len(np.unique(edit.indices)) and edit.nbytes < 200
    after = _round_trip(labels, edit)
    assert np.array_equal(after.array, painted) and 100 + T11 in edit.touched
    eraser = BrushStroke(after, L1, radius_mm=1.0, erase=True, normal_axis=2)
    eraser.add(centre)
    erased = _round_trip(after, eraser.finish())
    assert erased.array[6, 6, 12] == 0 and erased.array[6, 6, 26] == L1
    assert BrushStroke(labels, T11, 1.0, erase=True).finish() is None
    with pytest.raises(EditError):
        BrushStroke(labels, 0, 1.0)
