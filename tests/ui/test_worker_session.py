"""The Worker's signals and the Session's edit/undo model."""
import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from spine_core.edits import EditError, merge_vertebrae, shift_levels
from spine_core.errors import SpineError
from ui.session import Session
from ui.worker import Worker

from tests.ui.study import L1, T11, T12, synthetic_study


def _count(n, progress):
    for i in range(n):
        progress.update(i / n, f"step {i}")
    return n * 2


def _slow(progress):
    import time

    for i in range(400):
        progress.update(i / 400)
        time.sleep(0.005)
    return "done"


def _fails(progress):
    raise SpineError("slice 47 is missing")


@pytest.fixture
def pool():
    pool = QThreadPool()
    yield pool
    pool.waitForDone()


def test_worker_reports_progress_and_result(qtbot, pool):
    worker = Worker(_count, 5)
    seen, results = [], []
    worker.signals.progress.connect(lambda f, m: seen.append((f, m)))
    worker.signals.result.connect(results.append)
    with qtbot.waitSignals([worker.signals.started, worker.signals.result, worker.signals.finished],
                           timeout=5000):
        pool.start(worker)
    assert results == [10]
    assert seen[0] == (0.0, "step 0") and len(seen) == 5


def test_worker_reports_errors_and_cancellation(qtbot, pool):
    failing = Worker(_fails)
    with qtbot.waitSignal(failing.signals.error, timeout=5000) as blocker:
        pool.start(failing)
    assert isinstance(blocker.args[0], SpineError) and "slice 47" in str(blocker.args[0])
    slow = Worker(_slow)
    with qtbot.waitSignal(slow.signals.started, timeout=5000):
        pool.start(slow)
    with qtbot.waitSignals([slow.signals.cancelled, slow.signals.finished], timeout=5000):
        slow.cancel()
    assert slow.done


def test_session_edits_undo_redo_restore_exact_labels(qtbot, tmp_path):
    _scan, _labels, labels = synthetic_study(tmp_path)
    session = Session(history_limit=20)
    session.set_labels(labels)
    assert session.stale_mesh_ids == {T11, T12, L1}
    session.set_meshes({}, labels, {T11, T12, L1})
    original = session.labels.array.copy()
    with qtbot.waitSignal(session.labels_changed) as blocker:
        session.apply(merge_vertebrae(session.labels, L1, T12))
    assert blocker.args[0] == {L1, T12} and session.stale_mesh_ids == {L1, T12}
    session.apply(shift_levels(session.labels, -1))
    assert session.labels.ids() == [17, T11]
    assert session.stale_mesh_ids == {L1, T11}          # stale ids follow the remap (T12 -> T11)
    session.undo()
    session.undo()
    assert np.array_equal(session.labels.array, original)
    session.redo()
    assert session.labels.ids() == [T11, T12]
    session.redo()
    with pytest.raises(EditError):
        session.redo()


def test_selection_ignores_unknown_ids(qtbot, tmp_path):
    _scan, _labels, labels = synthetic_study(tmp_path)
    session = Session()
    session.set_labels(labels)
    with qtbot.waitSignal(session.selection_changed) as blocker:
        session.select(T12)
    assert blocker.args == [T12]
    session.select(99)
    assert session.selected == 0


def test_a_demo_study_folder_opens_scan_and_labels(tmp_path):
    from ui.jobs import resolve_study

    (tmp_path / "dicom").mkdir()
    (tmp_path / "labels.nii.gz").write_bytes(b"")
    paths = resolve_study(tmp_path)
    assert paths.scan == tmp_path / "dicom" and paths.labels == tmp_path / "labels.nii.gz"
    assert resolve_study(tmp_path, tmp_path / "other.nii.gz").labels == tmp_path / "other.nii.gz"


def test_series_picker_lists_and_returns_the_chosen_series(qtbot):
    from spine_core.io.dicom import SeriesInfo
    from ui.dialogs import SeriesPickerDialog

    series = [SeriesInfo(f"1.2.{n}", "CT", f"series {n}", "1.2", 512, 512, (0.7, 0.7),
                         (1, 0, 0, 0, 1, 0)) for n in range(3)]
    dialog = SeriesPickerDialog(series, default_uid="1.2.1")
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 3 and dialog.table.item(2, 0).text() == "series 2"
    assert dialog.chosen_uid() == "1.2.1"
    dialog.table.selectRow(2)
    assert dialog.chosen_uid() == "1.2.2"
