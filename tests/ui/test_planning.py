"""Planning in the workstation: the Measurements panel and its geometry, suggested screws with their checks,
screws added, dragged, resized and deleted (live check, undo, redo), screws in plans and the autosave.

One small phantom (L1-sacrum, 1 mm; L3 down measured) is made once for the module; each test opens it in a
fresh window."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from spine_core.plan import load_plan
from tests.ui.study import open_and_wait
from tests.viewers.test_slice_view import grab_rgb
from viewers.measure_overlay import ANGLE, ENDPLATE
from viewers.overlay import Disc, Rod, Segment

L4, L5 = 23, 24


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory):
    from spine_core.io import save_labelmap, save_volume
    from spine_core.phantom import PhantomOptions, generate_phantom

    folder = tmp_path_factory.mktemp("phantom")
    phantom = generate_phantom(PhantomOptions(seed=5, first_level="L3", last_level="sacrum", spacing_mm=(1.0, 1.0, 1.0),
                                              fov_mm=140, centre_on_spine=True, shape_jitter=0.0, margin_mm=25.0))
    return save_volume(phantom.image, folder / "scan.nii.gz"), save_labelmap(phantom.labels, folder / "labels.nii.gz")


@pytest.fixture
def opened(qtbot, window, phantom_study):
    open_and_wait(qtbot, window, *phantom_study, timeout=60000)
    return window


def _idle(qtbot, window, timeout=60000):
    qtbot.waitUntil(lambda: not window.tasks.is_busy(), timeout=timeout)


def _suggest(qtbot, window):
    window.planning.suggest()
    _idle(qtbot, window)
    assert window.session.screws, window.errors
    qtbot.waitUntil(lambda: all(s.min_cortex_distance_mm is not None for s in window.session.screws), timeout=30000)


def _colour_share(image, rgb, tolerance=40) -> float:
    pixels = np.asarray(image)[..., :3].astype(int)
    return float((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tolerance).mean())


def test_measure_fills_the_panel_and_a_row_draws_its_geometry(qtbot, opened):
    window = opened
    panel = window.measurements_panel
    with qtbot.waitSignal(window.measure.measured, timeout=60000):
        window.measure.measure()
    names = [panel.levels.item(r, 0).text() for r in range(panel.levels.rowCount())]
    assert names[-4:] == ["L3", "L4", "L5", "sacrum"]
    row = names.index("L4")
    heights = [float(panel.levels.item(row, c).text()) for c in (1, 2, 3)]
    assert all(15 < h < 40 for h in heights)
    assert 4 < float(panel.levels.item(row, 7).text()) < 15            # left pedicle width (mm)
    measures = [panel.alignment.item(r, 0).text() for r in range(panel.alignment.rowCount())]
    cobb = measures.index("Coronal Cobb")
    assert panel.alignment.item(cobb, 2).text().startswith("L3 superior - L5 inferior")       # its end vertebrae
    assert panel.alignment.item(measures.index("Lumbar lordosis L1-S1"), 1).text() == "-"  # no L1 in view
    assert "Measured on the labels shown" in panel.status.text()
    # a level: endplates and heights on the sagittal slice, pedicles on the axial one, discs and lines in 3D
    panel.level_clicked.emit(row)
    views = window.views
    sagittal = views.slices["sagittal"].overlay("measure")
    assert sum(isinstance(i, Segment) and "sagittal" in i.views for i in sagittal) == 2 + 3
    assert sum(isinstance(i, Segment) and "axial" in i.views for i in sagittal) == 4   # two pedicles: width, axis
    assert views.mesh_view.overlay_count("measure") >= 6
    assert window.session.selected == L4
    qtbot.wait(50)
    assert _colour_share(grab_rgb(views.slices["sagittal"]), ENDPLATE) > 0.0005
    # an alignment angle: its two endplates on the coronal slice
    panel.angle_clicked.emit(cobb)
    coronal = [i for i in views.slices["coronal"].overlay("measure") if "coronal" in i.views]
    assert sum(isinstance(i, Segment) for i in coronal) == 2 and all(i.color == ANGLE for i in coronal
                                                                      if isinstance(i, Segment))
    assert sum(isinstance(i, Disc) for i in views.slices["coronal"].overlay("measure")) == 2
    # an edit makes the numbers stale until measured again
    window.edits.delete_vertebra(L5)
    assert window.measure.stale and "edited" in panel.status.text()
    with qtbot.waitSignal(window.measure.measured, timeout=60000):
        window.measure.measure()
    assert not window.measure.stale and "L5" not in [panel.levels.item(r, 0).text()
                                                      for r in range(panel.levels.rowCount())]


def test_suggested_screws_fill_the_table_and_the_views_and_undo_as_one_step(qtbot, opened):
    window = opened
    _suggest(qtbot, window)
    screws, table = window.session.screws, window.screws_panel.table
    assert {(s.vertebra, s.side) for s in screws} >= {("L4", "left"), ("L4", "right"), ("L5", "left")}
    assert table.rowCount() == len(screws)
    for r, s in enumerate(screws):
        assert table.item(r, 0).text() == s.vertebra and table.item(r, 5).text() == "A"
        assert float(table.item(r, 4).text()) >= 1.0
    rods = [i for i in window.views.slices["axial"].overlay("screws") if isinstance(i, Rod)]
    assert len(rods) == len(screws) and window.views.mesh_view.overlay_count("screws") >= len(screws)
    assert window.views.mesh_opacity.value() <= 25                      # the bone made see-through
    assert window.session.history.next_undo().description.startswith("Suggest")
    window.edits.undo()
    assert window.session.screws == () and table.rowCount() == 0
    window.edits.redo()
    assert len(window.session.screws) == len(screws)
    # the levels shifted up: each screw follows its bone (L4's are L3's now), checked again on the new labels
    window.edits.shift_levels(-1)
    qtbot.waitUntil(lambda: all(s.grade for s in window.session.screws), timeout=30000)
    assert [s.vertebra for s in window.session.screws] == [{"L3": "L2", "L4": "L3", "L5": "L4"}[s.vertebra]
                                                            for s in screws]
    assert [s.min_cortex_distance_mm for s in window.session.screws] == [s.min_cortex_distance_mm for s in screws]


def test_added_dragged_resized_and_deleted_screws_are_checked_live_and_undoable(qtbot, opened):
    window, planning = opened, opened.planning
    views = window.views
    # a screw drawn on the axial slice (entry, then tip) in a vertebra not yet checked: made in a Worker
    _suggest(qtbot, window)
    template = next(s for s in window.session.screws if (s.vertebra, s.side) == ("L4", "left"))
    window.session.select(L4)
    planning.select(window.session.screws.index(template))
    assert planning.delete_selected() and template not in window.session.screws
    planning.checks.grids.pop(L4)                                 # forces the check's Worker path
    window.planning_actions.add.trigger()
    assert planning.adding and views.slices["axial"].pick_mode
    views.point_picked.emit("axial", *template.entry_lps)
    views.point_picked.emit("axial", *template.tip_lps)
    assert not planning.adding
    added = window.session.screws[planning.selected]
    assert (added.vertebra, added.side, added.source) == ("L4", "left", "user")
    qtbot.waitUntil(lambda: window.session.screws[planning.selected].min_cortex_distance_mm is not None,
                    timeout=30000)
    added = window.session.screws[planning.selected]
    thicker = (added.diameter_mm - template.diameter_mm) / 2          # drawn: as thick as the pedicle allows
    assert added.min_cortex_distance_mm == pytest.approx(template.min_cortex_distance_mm - thicker, abs=0.15)
    assert added.grade == "A"
    # drag its tip with the mouse on the axial slice, out through the side of the body
    axial = views.slices["axial"]
    window.views.set_crosshair(np.asarray(added.tip_lps))
    qtbot.wait(50)
    axial.repaint()
    tip = next(at for name, at, _ in axial.handles() if name == f"screw:{planning.selected}:tip")
    start = QPoint(round(tip.x()), round(tip.y()))
    outward = np.sign(added.tip_lps[0] - added.entry_lps[0]) or 1.0     # further to the screw's side
    target = axial.lps_to_widget(np.asarray(added.tip_lps) + (12.0 * outward, 0.0, 0.0))
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(axial, QPoint(round(target.x()), round(target.y())))
    live = window.screws_panel.table.item(planning.selected, 4).text()
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x()), round(target.y())))
    moved = window.session.screws[planning.selected]
    assert moved.min_cortex_distance_mm < 0 and moved.grade != "A" and float(live) < 0
    assert moved.entry_lps == added.entry_lps and window.session.history.next_undo().description.startswith("Move")
    window.edits.undo()
    assert window.session.screws[planning.selected].min_cortex_distance_mm == added.min_cortex_distance_mm
    window.edits.redo()
    # a thicker screw (typed into the table) comes nearer the cortex
    index = next(k for k, s in enumerate(window.session.screws) if s.vertebra == "L5")
    before = window.session.screws[index]
    window.screws_panel.table.item(index, 2).setText(f"{before.diameter_mm + 1.0:g}")
    qtbot.waitUntil(lambda: window.session.screws[index].diameter_mm != before.diameter_mm, timeout=5000)
    after = window.session.screws[index]
    assert after.diameter_mm == before.diameter_mm + 1.0
    assert after.min_cortex_distance_mm == pytest.approx(before.min_cortex_distance_mm - 0.5, abs=0.01)
    # Delete (the key's action) deletes the selected screw, not the vertebra
    planning.select(index)
    count, vertebrae = len(window.session.screws), window.session.labels.names.copy()
    edit_delete = next(a for a in window.actions.edits if a.text() == "&Delete vertebra")
    edit_delete.trigger()
    assert len(window.session.screws) == count - 1 and window.session.labels.names == vertebrae
    window.edits.undo()
    assert len(window.session.screws) == count


def test_screws_are_saved_in_plans_and_the_autosave_and_opened_again(qtbot, opened, tmp_path):
    window = opened
    _suggest(qtbot, window)
    first = window.session.screws[0]
    window.planning.move_end(0, "tip", np.asarray(first.tip_lps) + (0.0, 0.0, 2.0))
    planned = [(s.vertebra, s.side, s.entry_lps, s.tip_lps, s.diameter_mm, s.source) for s in window.session.screws]
    window.plans.save_plan(tmp_path / "case")
    _idle(qtbot, window)
    saved = load_plan(tmp_path / "case.spineplan").info
    assert [(s["vertebra"], s["side"], s["source"]) for s in saved.screws] == [p[:2] + p[5:] for p in planned]
    window.plans.autosave_now()
    _idle(qtbot, window)
    assert len(load_plan(window.plans.recovery_candidate()).info.screws) == len(planned)
    window.edits.undo()                                            # the move: the open plan differs
    with qtbot.waitSignal(window.study_ready, timeout=60000):
        window.open_plan(tmp_path / "case.spineplan")
    assert [(s.vertebra, s.side, s.entry_lps, s.tip_lps, s.diameter_mm, s.source)
            for s in window.session.screws] == planned
    assert window.screws_panel.table.rowCount() == len(planned)
    assert all(s.grade for s in window.session.screws)


def test_a_loss_measured_but_not_graded_shows_why_in_the_table(qtbot):
    """A blank Genant cell means no loss; one measured but not graded reads n/g, its reason in the tooltip."""
    from ui.measurements_panel import MeasurementsPanel

    panel = MeasurementsPanel()
    qtbot.addWidget(panel)
    why = "its label stops 12 mm short of the lower endplate the scan shows: heights not graded"
    rows = [{"name": "T12", "genant_grade": None, "notes": [why], "flags": []},
            {"name": "L1", "genant_grade": 2, "notes": [], "flags": ["suspected fracture (Genant 2)"]},
            {"name": "L2", "genant_grade": 0, "notes": [], "flags": []}]
    panel.set_document({"vertebrae": rows, "alignment": {"segmental": []}})
    cells = [panel.levels.item(r, 5) for r in range(3)]
    assert [c.text() for c in cells] == ["n/g", "2", ""]
    assert cells[0].toolTip() == why and cells[1].toolTip() == "suspected fracture (Genant 2)"
