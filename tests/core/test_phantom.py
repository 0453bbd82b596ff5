"""Synthetic spine phantoms: reproducible, exactly labelled, anatomically sized, valid DICOM."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from spine_core.errors import Cancelled
from spine_core.io import load_labels, load_scan
from spine_core.labels import NAME_TO_ID
from spine_core.phantom import CurveShape, PhantomOptions, generate_phantom, write_phantom
from spine_core.phantom.anatomy import PUBLISHED_BODY_RANGES, region_of
from spine_core.progress import CallbackProgress

STRAIGHT = CurveShape(sacral_slope_deg=0, lumbar_lordosis_deg=0, thoracic_kyphosis_deg=0,
                      cervical_lordosis_deg=0)


def small(**kw) -> PhantomOptions:
    base = dict(seed=5, first_level="L2", last_level="L5", spacing_mm=(1.6, 1.6, 2.0), fov_mm=300.0)
    base.update(kw)
    return PhantomOptions(**base)


@pytest.fixture(scope="module")
def lumbar():
    return generate_phantom(small(label_discs=True, spacing_mm=(1.0, 1.0, 1.0), fov_mm=340.0))


def test_same_seed_same_phantom_other_seed_differs():
    a, b = generate_phantom(small()), generate_phantom(small())
    assert np.array_equal(a.image.array, b.image.array)
    assert np.array_equal(a.labels.array, b.labels.array)
    assert np.allclose(a.image.affine, b.image.affine)
    c = generate_phantom(small(seed=6))
    assert not np.array_equal(a.image.array, c.image.array)


def test_requested_levels_labelled_and_nothing_far_beyond(lumbar):
    ids = set(lumbar.labels.ids())
    wanted = {NAME_TO_ID[n] for n in ("L2", "L3", "L4", "L5")}
    assert wanted <= ids
    vertebrae = {i for i in ids if i < 100}
    # A partial field of view may clip a neighbour's process, never anything further away.
    assert vertebrae - wanted <= {NAME_TO_ID["L1"], NAME_TO_ID["sacrum"]}
    counts = ndimage.sum(np.ones_like(lumbar.labels.array), lumbar.labels.array, sorted(vertebrae))
    sizes = dict(zip(sorted(vertebrae), counts))
    for extra in vertebrae - wanted:
        assert sizes[extra] < 0.5 * min(sizes[w] for w in wanted)
    assert {121, 122, 123} <= ids          # discs L2/L3..L4/L5 when asked for


@pytest.mark.parametrize("kw, label", [(dict(lumbar_count=6, first_level="L4", last_level="sacrum"), 25),
                                       (dict(thoracic_count=13, first_level="T12", last_level="L1"), 28)])
def test_variants_get_their_labels(kw, label):
    p = generate_phantom(small(**kw))
    assert label in p.labels.ids()
    if label == 28:
        assert NAME_TO_ID["T12"] in p.labels.ids() and NAME_TO_ID["L1"] in p.labels.ids()


def test_sacralised_l5_and_missing_rib_generate():
    p = generate_phantom(small(first_level="L4", last_level="sacrum", sacralised_l5=True))
    assert {23, 24, 26} <= set(p.labels.ids())


def test_centroids_sit_in_their_labels(lumbar):
    arr = lumbar.labels.array
    for vid, lps in lumbar.centroids.items():
        idx = np.argwhere(arr == vid)
        com = lumbar.labels.index_to_lps(idx.mean(axis=0))
        assert np.linalg.norm(com - lps) < 0.5
        # Within 4 mm of the centroid there is bone of that vertebra.
        near = lumbar.labels.lps_to_index(lps)
        dist = np.linalg.norm((idx - near) * lumbar.labels.spacing, axis=1).min()
        assert dist < 4.0, (vid, dist)


def test_hu_per_tissue_is_ct_like(lumbar):
    img, lab = lumbar.image.array.astype(np.float32), lumbar.labels.array
    vertebra = ndimage.binary_erosion(np.isin(lab, [21, 22, 23, 24]), iterations=2)
    assert np.median(img[vertebra]) > 150
    for disc in (121, 122, 123):
        core = ndimage.binary_erosion(lab == disc, iterations=1)
        assert 50 < np.median(img[core]) < 150, disc
    smooth = ndimage.uniform_filter(img, 5)
    soft = smooth[(smooth > -300) & (smooth < 150) & (lab == 0)]
    hist, edges = np.histogram(soft, bins=np.arange(-300, 151, 10))
    fat_peak = edges[np.argmax(hist * (edges[:-1] < -30))]
    muscle_peak = edges[np.argmax(hist * (edges[:-1] > 0))]
    assert fat_peak < -50 and 20 <= muscle_peak <= 70
    assert img.min() >= -1024 and img.max() <= 3071


def _body_dims(labels, vid):
    """Width, depth, height (mm) of a vertebral body of a straight spine, from its label only."""
    m = labels.array == vid
    sp = labels.spacing
    xs, ys, zs = np.nonzero(m)
    front = ys < ys.min() + 8.0 / sp[1]            # the body is the anterior part of the label
    zc, xc = int(np.median(zs[front])), int(np.median(xs[front]))
    mid = m[:, :, zc]
    column = np.nonzero(mid[xc])[0]
    front = column.min()
    gaps = np.nonzero(np.diff(column) > 1)[0]      # the canal interrupts the midline column
    back = column[gaps[0]] if len(gaps) else column.max()
    depth = (back - front + 1) * sp[1]
    rows = mid[:, front: front + int(0.55 * (back - front)) + 1].any(axis=1)   # clear of processes
    row = np.nonzero(rows)[0]
    width = (row.max() - row.min() + 1) * sp[0]
    height = (np.ptp(np.nonzero(m[xc, (front + back) // 2])[0]) + 1) * sp[2]
    return width, depth, height


@pytest.mark.parametrize("first, last", [("C3", "C6"), ("T3", "T11"), ("L1", "L5")])
def test_vertebral_body_sizes_match_published_ranges(first, last):
    p = generate_phantom(PhantomOptions(seed=1, first_level=first, last_level=last, curve=STRAIGHT,
                                        spacing_mm=(0.8, 0.8, 1.0), fov_mm=140.0, centre_on_spine=True,
                                        shape_jitter=0.03))
    names = p.levels[1:-1] or p.levels
    for name in names:
        w, d, h = _body_dims(p.labels, NAME_TO_ID[name])
        ranges = PUBLISHED_BODY_RANGES[region_of(name)]
        assert ranges["w"][0] <= w <= ranges["w"][1], (name, "width", w)
        assert ranges["d"][0] <= d <= ranges["d"][1], (name, "depth", d)
        assert ranges["h"][0] <= h <= ranges["h"][1], (name, "height", h)
    if first == "L1":
        w, d, _ = _body_dims(p.labels, NAME_TO_ID["L3"])
        assert 44 <= w <= 52 and 31 <= d <= 39


@pytest.mark.parametrize("code", ["RAI", "PIR", "LPI", "ASL"])
def test_orientations_place_the_same_anatomy(code):
    ref = generate_phantom(small(last_level="L3"))
    p = generate_phantom(small(last_level="L3", orientation=code))
    assert p.image.orientation == code
    assert sorted(p.image.shape) == sorted(ref.image.shape)
    for vid, lps in ref.centroids.items():
        assert np.allclose(p.centroids[vid], lps, atol=1e-3)
    # The same physical point holds the same HU in both.
    probe = ref.centroids[NAME_TO_ID["L2"]]
    i_ref = np.round(ref.image.lps_to_index(probe)).astype(int)
    i_new = np.round(p.image.lps_to_index(probe)).astype(int)
    assert ref.image.array[tuple(i_ref)] == p.image.array[tuple(i_new)]


def test_patient_position_sets_axis_order():
    assert generate_phantom(small(last_level="L2", patient_position="FFS")).image.orientation == "RPI"


def test_scoliosis_cobb_angle_is_close_to_requested():
    curve = CurveShape(scoliosis_cobb_deg=40.0, scoliosis_apex="L2", lumbar_lordosis_deg=0,
                       sacral_slope_deg=0, thoracic_kyphosis_deg=0)
    p = generate_phantom(small(first_level="T9", last_level="sacrum", curve=curve, spacing_mm=(2, 2, 2)))
    pts = np.array([p.centroids[NAME_TO_ID[n]] for n in ("T9", "T10", "T11", "T12", "L1", "L2", "L3",
                                                        "L4", "L5")])
    tilt = np.degrees(np.arctan(np.diff(pts[:, 0]) / np.diff(pts[:, 2])))
    cobb = tilt.max() - tilt.min()
    assert 20 <= cobb <= 50, cobb          # chords between centroids read a little low


def test_fracture_osteoporosis_and_hardware():
    normal = generate_phantom(small(last_level="L3"))
    p = generate_phantom(small(last_level="L3", fractures=(("L2", 0.4),), bone_density=0.35,
                               hardware_levels=("L2", "L3")))
    assert (p.image.array > 2500).sum() > 100               # screws and rods
    lab = p.labels.array
    core_p = ndimage.binary_erosion(lab == 22, iterations=2)   # L3: osteoporotic, not fractured
    core_n = ndimage.binary_erosion(normal.labels.array == 22, iterations=2)
    assert np.median(p.image.array[core_p]) < np.median(normal.image.array[core_n]) - 60
    h_frac = np.ptp(np.nonzero((lab == 21).any(axis=(0, 1)))[0])
    h_norm = np.ptp(np.nonzero((normal.labels.array == 21).any(axis=(0, 1)))[0])
    assert (lab == 21).sum() < 0.9 * (normal.labels.array == 21).sum() or h_frac < h_norm


def test_progress_reports_and_cancels():
    seen = []
    generate_phantom(small(last_level="L2"), CallbackProgress(lambda f, m: seen.append(f)))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    progress = CallbackProgress(lambda f, m: None)
    progress.token.cancel()
    with pytest.raises(Cancelled):
        generate_phantom(small(), progress)


@pytest.mark.parametrize("code", ["LPS", "LPI"])
def test_written_study_round_trips(tmp_path, code):
    p = generate_phantom(small(last_level="L3", orientation=code))
    paths = write_phantom(p, tmp_path / "study", nifti_image=True)
    scan = load_scan(paths["dicom"])
    labels = load_labels(paths["labels"], grid=scan)           # same grid as the loaded DICOM
    assert scan.metadata.modality == "CT" and not scan.metadata.warnings
    image = load_scan(paths["image"])
    assert image.same_grid(scan, atol_mm=1e-3) and np.array_equal(image.array, scan.array)
    for vid, lps in p.centroids.items():
        idx = np.argwhere(labels.array == vid).mean(axis=0)
        assert np.linalg.norm(labels.index_to_lps(idx) - lps) < 0.5
    doc = json.loads(paths["centroids"].read_text())
    assert doc["coordinate_system"] == "LPS" and doc["units"] == "mm"
    assert {v["name"] for v in doc["vertebrae"]} >= {"L2", "L3"}
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(paths["dicom"]))
    itk = sitk.ReadImage(files)
    assert np.allclose(itk.GetSpacing(), scan.spacing, atol=1e-4)
    assert np.allclose(itk.GetOrigin(), scan.origin, atol=1e-3)


def test_dicom_is_valid_for_dciodvfy_and_dcmtk(tmp_path):
    p = generate_phantom(small(last_level="L2"))
    paths = write_phantom(p, tmp_path / "study")
    first = sorted(paths["dicom"].glob("*.dcm"))[0]
    if shutil.which("dciodvfy"):
        out = subprocess.run(["dciodvfy", str(first)], capture_output=True, text=True)
        errors = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, errors
    if shutil.which("dcm2json"):
        doc = json.loads(subprocess.run(["dcm2json", str(first)], capture_output=True, text=True,
                                        check=True).stdout)
        assert doc["00100010"]["Value"][0]["Alphabetic"] == "PHANTOM"
        assert doc["00080060"]["Value"] == ["CT"]
    if not (shutil.which("dciodvfy") or shutil.which("dcm2json")):
        pytest.skip("neither dicom3tools nor dcmtk is installed")


def test_write_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("x")
    from spine_core.errors import SpineError

    with pytest.raises(SpineError):
        write_phantom(generate_phantom(small(last_level="L2")), tmp_path / "busy")
