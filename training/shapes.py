"""Real vertebra shapes for the phantoms, from the label-only VerSe masks in ../shared/data/masks.

Each mask file is split by label; each vertebra is resampled (spine_core's SimpleITK resampling
through LPS space) at 1 mm onto a grid in its own frame: w along the spine (first from the
neighbouring vertebrae's centroids, pointing superior, then from T4 down along its body's
endplates), v posterior (the canal straight behind the body), u = v x w to the patient's left.
The body is the thick part in front of the canal (the largest hole of the axial projection); its
centre becomes the origin and its width, depth and height are measured as the dimension table
gives them, so the phantom can scale the shape to any level (spine_core.phantom.real_shapes).
Compressed (fractured) bodies are left out. Masks carry only their own geometry: a shifted world
position (verse004, verse009) does not matter. The library is cached per process (~9 s to build).
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from spine_core.errors import SpineError
from spine_core.labels import CRANIOCAUDAL, VERTEBRAE
from spine_core.phantom.anatomy import dims_for
from spine_core.phantom.real_shapes import ShapeLibrary, VertebraShape
from spine_core.pipeline.preprocess import crop_volume
from spine_core.resample import resample_to_grid
from spine_core.volume import LabelMap, Volume, affine_from_geometry

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("spineplan.training")
SPACING_MM = 1.0
MARGIN_MM = 4.0
# On the analytic vertebrae this measure reads ~2 mm under the dimension table (rims, partial
# voxels): added so that real and analytic bodies are sized alike.
TABLE_OFFSET_MM = 2.0


def shape_root(configured: str = "") -> Path:
    """The masks folder: ``configured``, else $SPINEPLAN_SHARED/data/masks or ../shared/data/masks."""
    if configured:
        return Path(configured)
    return Path(os.environ.get("SPINEPLAN_SHARED", REPO.parent / "shared")) / "data" / "masks"


@lru_cache(maxsize=4)
def load_shape_library(root: str = "", spacing_mm: float = SPACING_MM) -> ShapeLibrary | None:
    """Every vertebra of every ``*/labels.nii.gz`` under the root, kept in memory; None (with a
    warning) when there is no such folder or no usable vertebra: phantoms then stay analytic."""
    from spine_core.io import load_labels

    folder = shape_root(root)
    files = sorted(folder.glob("*/labels.nii.gz")) if folder.is_dir() else []
    if not files:
        log.warning("no real vertebra masks under %s: phantoms keep their analytic vertebrae", folder)
        return None
    shapes: dict[str, list[VertebraShape]] = {}
    for path in files:
        try:
            found = shapes_from_labels(load_labels(path), path.parent.name, spacing_mm)
        except (SpineError, OSError, ValueError) as exc:      # a damaged or unreadable file
            log.warning("real vertebra masks %s skipped: %s", path, exc)
            continue
        for name, shape in found.items():
            shapes.setdefault(name, []).append(shape)
    library = ShapeLibrary(shapes)
    if not len(library):
        log.warning("the masks under %s held no usable vertebra: phantoms stay analytic", folder)
        return None
    return library


def shapes_from_labels(labels: LabelMap, source: str, spacing_mm: float = SPACING_MM) -> dict[str, VertebraShape]:
    """One shape per vertebra (C1-L6, T13) of a label map; the sacrum and discs are left out."""
    present = set(labels.ids())
    ids = [v for v in CRANIOCAUDAL if v in present and v != 26]
    boxes = ndimage.find_objects(labels.array)
    centroids = {}
    for vid in ids:
        idx = np.argwhere(labels.array[boxes[vid - 1]] == vid) + [s.start for s in boxes[vid - 1]]
        centroids[vid] = labels.index_to_lps(idx.mean(axis=0))
    out = {}
    for vid in ids:
        shape = vertebra_shape(labels, vid, boxes[vid - 1], spine_axis(centroids, vid),
                               f"{source}:{VERTEBRAE[vid]}", spacing_mm)
        if shape is not None:
            out[VERTEBRAE[vid]] = shape
    return out


def spine_axis(centroids: dict[int, np.ndarray], vid: int) -> np.ndarray:
    """Unit vector pointing superior along the spine at ``vid`` from the neighbours' centroids
    (a first guess: vertebra_shape squares it on the body's endplates). C1's centroid lies behind
    the line of the bodies (it has none): it takes C2's axis and is never used for the others'."""
    order = [v for v in CRANIOCAUDAL if v in centroids and v != 1]
    if vid == 1:
        vid = 2 if 2 in centroids else vid
        order = order if vid == 2 else [1, *order]
    if len(order) < 2 or vid not in order:
        return np.array([0.0, 0.0, 1.0])
    k = order.index(vid)
    up = centroids[order[max(k - 1, 0)]] - centroids[order[min(k + 1, len(order) - 1)]]
    return up / np.linalg.norm(up)


def _frame(up, posterior=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Columns u (left), v (posterior), w (superior) in LPS: w along ``up``, v as close to
    ``posterior`` as w allows, u = v x w."""
    w = np.asarray(up, float) / np.linalg.norm(up)
    v = np.asarray(posterior, float) - (np.asarray(posterior, float) @ w) * w
    v /= np.linalg.norm(v)
    return np.column_stack([np.cross(v, w), v, w])


def _in_frame(part: Volume, rot: np.ndarray, spacing_mm: float) -> Volume:
    """The 0/1 mask on a grid along ``rot``'s axes covering the part (linear, then > 0.5)."""
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    lps = part.index_to_lps(corners * (np.asarray(part.shape) - 1))
    local = lps @ rot
    lo, hi = local.min(axis=0) - MARGIN_MM, local.max(axis=0) + MARGIN_MM
    shape = tuple(int(np.ceil((h - lo_) / spacing_mm)) + 1 for lo_, h in zip(lo, hi))
    grid = Volume(np.broadcast_to(np.uint8(0), shape), affine_from_geometry([spacing_mm] * 3, rot, rot @ lo))
    sampled = resample_to_grid(part, grid, labels=False, fill=0.0)
    return Volume((sampled.array > 0.5).astype(np.uint8), grid.affine)


def vertebra_shape(labels: LabelMap, vid: int, box, up, source: str,
                   spacing_mm: float = SPACING_MM) -> VertebraShape | None:
    """Vertebra ``vid`` in its own frame with its body centre at the origin; None if its canal or
    body cannot be found (cut by the field of view) or its body is out of proportion for its
    level (a compression fracture: the phantom would stretch it to a healthy height)."""
    found = vertebra_frame(labels, vid, box, up, spacing_mm)
    if found is None:
        log.info("%s: no canal or body found; shape left out", source)
        return None
    _, mask, body = found
    if not _in_proportion(VERTEBRAE[vid], body["size_mm"]):
        log.info("%s: body %s mm out of proportion for its level; shape left out", source,
                 tuple(round(x) for x in body["size_mm"]))
        return None
    array, corner = _trim(mask.array, int(np.ceil(MARGIN_MM / spacing_mm)))
    # Index -> local mm with the body centre at 0 (the grid's axes are u, v, w already).
    origin = (corner - np.asarray(body["centre"])) * spacing_mm
    return VertebraShape(Volume(array, affine_from_geometry([spacing_mm] * 3, None, origin)),
                         body["size_mm"], source)


def vertebra_frame(labels: LabelMap, vid: int, box, up, spacing_mm: float = SPACING_MM):
    """(frame, mask on it, body) of vertebra ``vid``: the frame starts from ``up`` and +P and is
    squared on the body (the canal straight behind; from T4 down also w along the endplates'
    normal) until it moves less than 2 degrees; None if no body is found.

    On analytic phantoms with lordosis, kyphosis and scoliosis this recovers the true frame within
    ~2 degrees (the neighbours' centroids alone: up to 9 at L5). The endplate fit is left out for
    the small bodies above T4 (C2's sloping lower lip, uncinate processes): there it made the
    frame worse than the centroids' 2-4 degrees."""
    pad = [int(np.ceil(MARGIN_MM / s)) for s in labels.spacing]
    sl = tuple(slice(max(s.start - p, 0), min(s.stop + p, n)) for s, p, n in zip(box, pad, labels.shape))
    cropped = crop_volume(labels, sl)
    part = Volume((cropped.array == vid).astype(np.float32), cropped.affine)
    rot, found = _frame(up), None
    for _ in range(4):
        mask = _in_frame(part, rot, spacing_mm)
        body = find_body(mask.array, spacing_mm, atlas=vid == 1, axis=vid == 2, endplates=vid >= 11)
        if body is None:                      # keep the last frame that showed a body
            break
        found = (rot, mask, body)
        if body["frame_off_deg"] < 2.0:
            break
        rot = _frame(rot @ body["axis"], rot @ body["posterior"])
    return found


def _in_proportion(name: str, size_mm) -> bool:
    """Height/depth within 0.75-1.5 x the level's table value (width is left free: cervical
    bodies measure wide with their uncinate processes)."""
    if size_mm is None or name in ("C1", "C2"):
        return True
    table = dims_for(name)
    _, d, h = size_mm
    return 0.75 <= (h / d) / (table.body_h / table.body_d) <= 1.5


def _trim(array: np.ndarray, margin: int):
    """The array cut to its nonzero box plus ``margin`` voxels, and that box's first index."""
    box = ndimage.find_objects(array.astype(np.uint8))[0]
    lo = np.array([max(s.start - margin, 0) for s in box])
    hi = np.array([min(s.stop + margin, n) for s, n in zip(box, array.shape)])
    return np.ascontiguousarray(array[tuple(slice(a, b) for a, b in zip(lo, hi))]), lo.astype(float)


def find_body(mask: np.ndarray, spacing_mm: float, atlas: bool = False, axis: bool = False,
              endplates: bool = True) -> dict | None:
    """Body centre (voxel index) and size (width, depth, height mm; None for C1) from a 0/1 mask
    whose axes are u (left), v (posterior), w (superior); with the endplates' normal ("axis") and
    the body -> canal direction ("posterior") in those axes, and how far (degrees) they are from
    w and v ("frame_off_deg"). ``axis``: C2, whose dens rises from the body's top. ``endplates``:
    take the axis from the endplates (else w stays)."""
    canal = _canal(mask, spacing_mm)
    if canal is None:
        return None
    cu, cv, front = canal
    h = spacing_mm
    if atlas:                                   # C1: the analytic atlas sits 10 mm before its canal
        ws = np.nonzero(mask[int(round(cu))].any(axis=0))[0]
        return {"centre": (cu, cv - 10.0 / h, 0.5 * (ws.min() + ws.max())), "size_mm": None,
                "frame_off_deg": 0.0}
    ahead = mask.astype(bool) & (np.arange(mask.shape[1]) < front)[None, :, None]
    column = np.nonzero(ahead[int(round(cu))].any(axis=1))[0]
    if len(column) < 3:
        return None
    depth = (front - column.min()) * h
    body = _thick_part(ahead, radius_mm=float(np.clip(0.22 * depth, 2.5, 8.0)), spacing_mm=h)
    if body is None:
        return None
    us, vs, _ = np.nonzero(body)
    width, depth = (us.max() - us.min() + 1) * h, (vs.max() - vs.min() + 1) * h
    uc, vc = 0.5 * (us.min() + us.max()), 0.5 * (vs.min() + vs.max())
    foot = ndimage.binary_erosion(body.any(axis=2), iterations=max(int(2.0 / h), 1))
    if axis:                                    # C2: the front third, clear of the dens
        foot[:, int(vs.min() + 0.33 * depth / h):] = False
    columns = body[foot]
    if len(columns) < 5:
        return None
    tops = body.shape[2] - 1 - np.argmax(columns[:, ::-1], axis=1)
    bottoms = np.argmax(columns, axis=1)
    # The rim height (concave endplates make the centre lower), as the analytic table gives it.
    height = float(np.percentile(tops - bottoms + 1, 75)) * h
    wc = float(np.median(0.5 * (tops + bottoms)))
    size = tuple(float(x) + TABLE_OFFSET_MM for x in (width, depth, height))
    # The endplates' mean normal (C2: its lower endplate only) and the body -> canal direction.
    uv = np.argwhere(foot).astype(float)
    surfaces = [bottoms, tops] if endplates and not axis else []
    slopes = np.mean([np.linalg.lstsq(np.column_stack([uv, np.ones(len(uv))]), z, rcond=None)[0][:2]
                      for z in surfaces], axis=0) if surfaces else np.zeros(2)
    normal = np.array([-slopes[0], -slopes[1], 1.0]) / np.linalg.norm([slopes[0], slopes[1], 1.0])
    posterior = np.array([cu - uc, cv - vc, 0.0]) / np.hypot(cu - uc, cv - vc)
    off = max(np.degrees(np.arccos(min(normal[2], 1.0))), abs(np.degrees(np.arctan2(posterior[0], posterior[1]))))
    return {"centre": (uc, vc, wc), "size_mm": size, "axis": normal, "posterior": posterior,
            "frame_off_deg": float(off)}


def _thick_part(region: np.ndarray, radius_mm: float, spacing_mm: float) -> np.ndarray | None:
    """The largest piece of ``region`` left by an opening with a ball of ``radius_mm``: the body,
    without the thin processes (cervical transverse processes, pedicle roots) beside it."""
    boxes = ndimage.find_objects(region.astype(np.uint8))
    if not boxes:
        return None
    pad = int(np.ceil(radius_mm / spacing_mm)) + 1
    box = tuple(slice(max(s.start - pad, 0), s.stop + pad) for s in boxes[0])
    part = region[box]
    core = ndimage.distance_transform_edt(part, sampling=spacing_mm) > radius_mm
    if not core.any():
        return None
    opened = (ndimage.distance_transform_edt(~core, sampling=spacing_mm) <= radius_mm) & part
    lab, n = ndimage.label(opened)
    if n == 0:
        return None
    sizes = ndimage.sum(opened, lab, range(1, n + 1))
    out = np.zeros_like(region, dtype=bool)
    out[box] = lab == int(np.argmax(sizes)) + 1
    return out


def _canal(mask: np.ndarray, spacing_mm: float):
    """(u, v) centre and front (v index) of the vertebral foramen: the largest hole in the
    projection along w, after closing gaps of up to ~5 mm (a thin or unfused posterior arch);
    None if there is none."""
    r = max(int(round(2.5 / spacing_mm)), 1)
    proj = np.pad(mask.any(axis=2), r)
    disc = np.add.outer(np.arange(-r, r + 1) ** 2, np.arange(-r, r + 1) ** 2) <= r * r
    proj = ndimage.binary_closing(proj, disc)[r:-r, r:-r]
    holes = ndimage.binary_fill_holes(proj) & ~proj
    lab, n = ndimage.label(holes)
    if n == 0:
        return None
    sizes = ndimage.sum(holes, lab, range(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    if sizes[k - 1] * spacing_mm ** 2 < 20:
        return None
    us, vs = np.nonzero(lab == k)
    cu, cv = float(us.mean()), float(vs.mean())
    band = np.abs(us - cu) < max(2.0, 0.2 * (us.max() - us.min()))
    return cu, cv, float(vs[band].min())
