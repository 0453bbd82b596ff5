"""Pedicles against phantoms whose anatomy is known (spine_core.phantom), thoracic and lumbar.

The truth, from how the phantom paints a vertebra (spine_core.phantom.vertebra):

- height: the neural arch is a ring around the canal (an elliptical annulus: inner half-axes canal_w/2,
  canal_d/2, outer ones ped_w and lam_t wider), extruded along w to exactly +-ped_h/2 everywhere in front
  of the canal's centre (``canal_centre_v``). The isthmus lies there, so its height is LevelDims.ped_h.
- width: ped_w is the ring's thickness beside the canal's centre, but there the transverse process and the
  superior articular process join it (it is not the narrowest part), and in front of it the ring curves
  towards the body and converges. The narrowest section across the measured axis is therefore computed
  from the painted shape itself: ``vertebra_sdf`` (body, ring and processes, as painted, not voxels)
  evaluated in continuous coordinates on sections across the measured axis, every 0.25 mm from 8 mm
  behind to 8 mm in front of the measured isthmus, in front of the canal's centre; the narrowest of them.
  The measurement under test reads the voxelised label map in a frame estimated from it.
"""
import numpy as np
import pytest

from spine_core.measure import CSV_COLUMNS, measure, write_measurements
from spine_core.measure.pedicle_sections import sections
from spine_core.measure.pedicles import measure_pedicles
from spine_core.measure.vertebra import measure_vertebrae
from spine_core.phantom import PhantomOptions, generate_phantom
from spine_core.phantom.anatomy import region_of
from spine_core.phantom.generate import phantom_layout
from spine_core.phantom.vertebra import canal_centre_v, vertebra_sdf

CASES = {"thoracic": dict(first_level="T8", last_level="L1", spacing_mm=(0.8, 0.8, 0.8)),
         "lumbar": dict(first_level="L2", last_level="sacrum", spacing_mm=(1.0, 1.0, 1.0))}


def phantom_case(name: str):
    options = PhantomOptions(seed=3, fov_mm=160, centre_on_spine=True, shape_jitter=0.0, **CASES[name])
    return options, generate_phantom(options), {p.name: p for p in phantom_layout(options)["placements"]}


@pytest.fixture(scope="module", params=list(CASES))
def measured(request):
    _, phantom, placed = phantom_case(request.param)
    vertebrae = measure_vertebrae(phantom.labels)
    return vertebrae, measure_pedicles(phantom.labels, vertebrae), placed


class ExactBone:
    """The painted shape of one phantom vertebra, in continuous LPS coordinates (occupancy 0..1)."""

    def __init__(self, placement):
        self.p = placement

    def sdf(self, points):
        local = (np.asarray(points, float) - self.p.centre) @ self.p.rot
        return vertebra_sdf(local[..., 0], local[..., 1], local[..., 2], self.p.name, self.p.dims,
                            region_of(self.p.name))

    def occupancy(self, points):
        return np.clip(0.5 - self.sdf(points) / 0.02, 0.0, 1.0)


def narrowest_exact(placement, pedicle) -> tuple[float, float]:
    """(width, height) of the painted shape's narrowest section across the measured axis (see the module)."""
    bone = ExactBone(placement)
    axis, point = np.asarray(pedicle.axis_lps), np.asarray(pedicle.isthmus_lps)
    lateral = (1.0 if pedicle.side == "left" else -1.0) * placement.rot[:, 0]
    widths, heights, centres = sections(bone, point, axis, lateral, np.arange(-8.0, 8.01, 0.25))
    v = (centres - placement.centre) @ placement.rot[:, 1]
    ok = ~np.isnan(widths) & (v <= canal_centre_v(placement.dims))
    k = np.flatnonzero(ok)[np.argmin(widths[ok])]
    return float(widths[k]), float(heights[k])


def test_isthmus_width_and_height_match_the_phantom(measured):
    vertebrae, pedicles, placed = measured
    measured_ids = {m.label_id for m in vertebrae if m.body_found and m.name in placed}
    assert len(measured_ids) >= 4
    rows, width_errors, height_errors = [], [], []
    for p in (p for p in pedicles if p.label_id in measured_ids):
        assert p.found, (p.name, p.side, p.notes)
        placement = placed[p.name]
        width, _ = narrowest_exact(placement, p)
        width_errors.append(p.width_mm - width)
        height_errors.append(p.height_mm - placement.dims.ped_h)
        rows.append(f"{p.name} {p.side}: width {p.width_mm:.2f} (truth {width:.2f}, ped_w {placement.dims.ped_w}), "
                    f"height {p.height_mm:.2f} (ped_h {placement.dims.ped_h})")
        # the isthmus lies inside the pedicle, in front of the canal's centre (where the height is ped_h)
        local = (np.asarray(p.isthmus_lps) - placement.centre) @ placement.rot
        assert local[1] <= canal_centre_v(placement.dims), rows[-1]
        assert ExactBone(placement).sdf(np.asarray(p.isthmus_lps)) < -1.5, rows[-1]
    table = "\n".join(rows)
    assert np.max(np.abs(width_errors)) <= 1.0 and np.median(np.abs(width_errors)) <= 0.3, table
    assert np.max(np.abs(height_errors)) <= 1.0 and np.median(np.abs(height_errors)) <= 0.4, table


def test_the_axis_runs_through_the_pedicle_into_the_body(measured):
    vertebrae, pedicles, placed = measured
    for p in (p for p in pedicles if p.found and p.name in placed):
        placement, bone = placed[p.name], ExactBone(placed[p.name])
        axis, isthmus = np.asarray(p.axis_lps), np.asarray(p.isthmus_lps)
        along = bone.sdf(isthmus + np.arange(-4.0, 4.01, 0.5)[:, None] * axis)
        assert along.max() < -0.5, (p.name, p.side, along)           # inside the pedicle over 8 mm
        # the phantom's pedicles are level (extruded along w): the axis is parallel to the endplate
        assert abs(p.craniocaudal_angle_deg) <= 10.0, (p.name, p.side, p.craniocaudal_angle_deg)
        assert 0.0 < p.medial_angle_deg < 50.0                          # converging, as the ring does
        # the length runs from the posterior cortex through the whole body (its depth along the axis)
        assert p.length_mm > p.body_depth_mm >= 0.9 * placement.dims.body_d, (p.name, p.side, p.body_depth_mm)
        assert bone.sdf(np.asarray(p.entry_lps)) == pytest.approx(0.0, abs=1.0)
        assert bone.sdf(np.asarray(p.anterior_cortex_lps)) == pytest.approx(0.0, abs=1.0)


def test_the_measurements_document_lists_the_pedicles(tmp_path):
    options = PhantomOptions(seed=5, first_level="L3", last_level="L5", spacing_mm=(1.0, 1.0, 1.0), fov_mm=140,
                             centre_on_spine=True, shape_jitter=0.0)
    phantom = generate_phantom(options)
    doc = measure(phantom.labels)
    pedicles = {(p["name"], p["side"]): p for p in doc["pedicles"]}
    assert pedicles[("L4", "left")]["found"] and pedicles[("L4", "right")]["width_mm"] > 6.0
    assert set(pedicles[("L4", "left")]) >= {"width_mm", "height_mm", "isthmus_lps", "axis_lps", "entry_lps",
                                             "medial_angle_deg", "craniocaudal_angle_deg", "length_mm"}
    assert "pedicles" in doc["method"]
    row = next(r for r in doc["vertebrae"] if r["name"] == "L4")
    assert row["pedicle_width_left_mm"] == pedicles[("L4", "left")]["width_mm"]
    _, csv_path = write_measurements(tmp_path, doc)
    header, *lines = csv_path.read_text().splitlines()
    assert header.split(",") == list(CSV_COLUMNS) and header.endswith("pedicle_height_right_mm")
    l4 = next(line for line in lines if line.startswith("L4,")).split(",")
    assert float(l4[CSV_COLUMNS.index("pedicle_width_right_mm")]) == pedicles[("L4", "right")]["width_mm"]
