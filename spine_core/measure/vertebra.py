"""Per-vertebra measures from a label map (and the scan, for bone density), each in the vertebra's own
frame: w along the spine (superior), v posterior, u left.

The frame: w is the direction of the chain of centroids at the vertebra (its neighbours above and
below), v is patient-posterior made perpendicular to w, u = v x w. The body is the part of the
vertebra in front of the spinal canal: along the mid-sagittal strip the first run of bone from the
front ends at the body's posterior wall.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, signal

from spine_core.labels import CRANIOCAUDAL, SACRUM, vertebra_name
from spine_core.resample import median_across
from spine_core.review import ids_on_border
from spine_core.volume import LabelMap

STRIP_MM = 3.0            # half-width of the mid-sagittal strip the heights are read in
COLUMN_MM = 1.5           # half-thickness (along v) of the column a height is read in
# The deepest adult vertebral body (L5) is ~35-45 mm front to back: a longer run of bone from the front
# along the midline is body and arch together (a canal the labels fill), and its heights would be the arch's.
MAX_BODY_DEPTH_MM = 60.0
# The canal behind the body: along the midline a label may leave specks in it, or cross it at some
# heights, but it does not fill the canal's height: where, for CANAL_RUN_MM front to back (the canal is
# >= ~12 mm deep), it covers under CANAL_SHARE of the heights it covers in the body, the body has ended;
# not before MIN_BODY_DEPTH_MM (the shallowest body, C3, is ~15 mm deep).
CANAL_SHARE = 1.0 / 3.0
CANAL_RUN_MM = 4.0
MIN_BODY_DEPTH_MM = 10.0
# The tallest adult vertebral body, L4/L5, is ~27-32 mm at its front; C2 with its dens ~40 mm. A label
# whose body column reads taller holds more than one body (or a body and a disc and part of the next).
MAX_BODY_HEIGHT_MM = 45.0
CORE_EROSION_MM = 3.0     # the cancellous core: the body eroded this far from its cortex
LOW_DENSITY_HU = 110.0    # cancellous HU below this suggests osteoporosis (opportunistic CT screening)
# An endplate is roughly square to the spine: wedging and segmental angles reach ~20-25 degrees
# against the centroid chain. A plane fitted further off has latched onto a wall, an osteophyte or a
# segmentation defect, and an angle read from it would be nonsense (on verse007's 3 mm slices a
# wall-fit gave a "Cobb angle" of 172 degrees).
MAX_ENDPLATE_TILT_DEG = 40.0
# Whether a body's label ends at its endplates, read on the scan along the body's middle column (the
# median across a disc of DISC_RADIUS_MM at each millimetre): an endplate is cortical bone, a peak at
# least ENDPLATE_HU over the column's cancellous bone and over the disc beyond it (on CT the disc and
# osteoporotic cancellous bone can read alike; the cortex cannot). A label ends at an endplate when
# one lies within SHORT_MM or a voxel and a half of its end (the label covers the cortex; thick slices
# blur it by a slice). Where the nearest endplate lies further out, with no cortex between, the label
# stopped short of it; two endplates (a disc between them: ENDPLATE_GAP_MM) well inside a label are
# a disc it runs across. Anatomy and CT physics, set before looking at any scan's result.
DISC_RADIUS_MM = 4.0
ENDPLATE_HU = 100.0
ENDPLATE_GAP_MM = (3.0, 16.0)
SHORT_MM = 6.0
DISC_REACH_MM = 30.0


@dataclass
class Plane:
    point: list[float]     # LPS mm
    normal: list[float]    # unit, pointing superior (for endplates)


@dataclass
class VertebraMeasures:
    label_id: int
    name: str
    volume_ml: float
    centroid: list[float]
    frame: dict                        # "u", "v", "w" unit vectors in LPS
    body_found: bool = False
    anterior_height_mm: float | None = None
    middle_height_mm: float | None = None
    posterior_height_mm: float | None = None
    body_width_mm: float | None = None
    body_depth_mm: float | None = None
    superior_endplate: Plane | None = None
    inferior_endplate: Plane | None = None
    endplate_angle_deg: float | None = None      # between its own endplates (wedging)
    wedge_ratio: float | None = None             # anterior / posterior height
    height_loss: float | None = None             # 0..1, Genant: worst of wedge, biconcave, crush
    genant_grade: int | None = None
    core_hu: float | None = None                 # mean HU of the cancellous core
    # False where the label is not one body from endplate to endplate: taller than any body, or (on
    # the scan) stopping short of an endplate or running across a disc; its heights are the label's,
    # not the body's. None: not checked (no scan, or no endplate to be seen)
    label_at_endplates: bool | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, float)
    n = np.linalg.norm(x)
    return x / n if n > 0 else x


def centroids_mm(labels: LabelMap) -> dict[int, np.ndarray]:
    ids = [i for i in labels.ids() if i in CRANIOCAUDAL]
    if not ids:
        return {}
    # one pass over the labelled voxels only (a centre of mass over the whole grid took ~35 s on a spine)
    flat = labels.array.reshape(-1)
    where = np.flatnonzero(flat)
    values = flat[where].astype(np.int64)
    counts = np.bincount(values)
    ijk = np.unravel_index(where, labels.shape)
    sums = np.stack([np.bincount(values, weights=axis, minlength=counts.size) for axis in ijk], axis=1)
    return {i: labels.index_to_lps(sums[i] / counts[i]) for i in ids}


def frames(centres: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Columns u (left), v (posterior), w (superior) per vertebra, from the centroid chain."""
    order = [i for i in CRANIOCAUDAL if i in centres]
    out = {}
    for n, vid in enumerate(order):
        above = centres[order[n - 1]] if n > 0 else None
        below = centres[order[n + 1]] if n + 1 < len(order) else None
        if above is not None and below is not None:
            w = above - below
        elif above is not None:
            w = above - centres[vid]
        elif below is not None:
            w = centres[vid] - below
        else:
            w = np.array([0.0, 0.0, 1.0])
        w = _unit(w)
        if w[2] < 0:
            w = -w
        v = _unit(np.array([0.0, 1.0, 0.0]) - w[1] * w)
        out[vid] = np.column_stack([np.cross(v, w), v, w])
    return out


def _local_points(labels: LabelMap, label_id: int, box) -> tuple[np.ndarray, np.ndarray]:
    ijk = np.argwhere(labels.array[box] == label_id) + [s.start for s in box]
    return ijk, ijk @ labels.affine[:3, :3].T + labels.affine[:3, 3]


def _fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Plane through points, least squares, refitted twice without the points more than 1.5 mm off
    it (a spur or a neighbour's rim on a surface must not tilt the plane): (centre, unit normal)."""
    keep = np.ones(len(points), bool)
    fit = None
    for _ in range(3):
        if keep.sum() < 10:
            return fit
        centre = points[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(points[keep] - centre, full_matrices=False)
        fit = centre, vt[-1]
        keep = np.abs((points - centre) @ vt[-1]) <= 1.5
    return fit


def measure_vertebra(labels: LabelMap, label_id: int, box, frame: np.ndarray, image=None) -> VertebraMeasures:
    ijk, lps = _local_points(labels, label_id, box)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) / 1000.0
    centre = lps.mean(axis=0)
    m = VertebraMeasures(label_id, vertebra_name(label_id), round(len(ijk) * voxel_ml, 2),
                         [round(float(x), 2) for x in centre],
                         {k: [round(float(x), 4) for x in frame[:, n]] for n, k in enumerate("uvw")})
    local = (lps - centre) @ frame                 # u, v, w
    step = float(np.min(np.abs(labels.spacing)))
    body = _body(local, step) if label_id != 1 else None       # C1 (the atlas) has no body
    if body is not None:
        body = _largest_piece(ijk, body)
    if body is None:
        m.notes.append("no vertebral body could be told from the arch")
        return m
    m.body_found = True
    b = local[body]
    strip = np.abs(b[:, 0]) <= STRIP_MM
    # depth on the midline: bone beside it (a rib head, a spur) must not move the columns
    v_front, v_back = float(b[strip, 1].min()), float(b[strip, 1].max())
    depth = v_back - v_front
    heights = [_column_height(b[strip], v_front + at * depth, step, _cell(labels)) for at in (0.15, 0.5, 0.85)]
    m.anterior_height_mm, m.middle_height_mm, m.posterior_height_mm = [
        None if h is None else round(h, 2) for h in heights]
    mid = np.abs(b[:, 2] - np.median(b[:, 2])) <= 3.0
    m.body_width_mm = round(float(np.ptp(b[mid, 0]) + step), 2) if mid.sum() > 3 else None
    m.body_depth_mm = round(depth + step, 2)
    footprint = (0.0, 0.5 * (v_front + v_back), 0.35 * (m.body_width_mm or depth), 0.35 * depth)
    m.superior_endplate, m.inferior_endplate = _endplates(b, centre, frame, step, footprint, _cell(labels))
    for which in ("superior_endplate", "inferior_endplate"):
        plane = getattr(m, which)
        tilt = None if plane is None else _tilt_deg(plane, frame)
        if tilt is not None and tilt > MAX_ENDPLATE_TILT_DEG:
            setattr(m, which, None)
            m.notes.append(f"{which.replace('_', ' ')} not found: the fitted plane is {tilt:.0f} degrees off the "
                           "spine's axis (a wall or a defect of the labels, not an endplate)")
    if m.superior_endplate and m.inferior_endplate:
        cos = abs(float(np.dot(m.superior_endplate.normal, m.inferior_endplate.normal)))
        m.endplate_angle_deg = round(float(np.degrees(np.arccos(min(cos, 1.0)))), 2)
    ha, hm, hp = heights
    if ha and hp:
        m.wedge_ratio = round(ha / hp, 3)
    if hp and (ha or hm):
        m.height_loss = round(max(0.0, 1.0 - min(h for h in (ha, hm) if h) / hp), 3)
    tallest = max((h for h in heights if h), default=0.0)
    if tallest > MAX_BODY_HEIGHT_MM:
        m.label_at_endplates = False
        m.notes.append(f"its body reads {tallest:.0f} mm tall, taller than any vertebral body: the label holds "
                       "more than one body; heights not graded")
    if image is not None:
        m.core_hu = _core_hu(labels, image, ijk[body], step)
        mid_column = b[strip & (np.abs(b[:, 1] - (v_front + 0.5 * depth)) <= COLUMN_MM)]
        if len(mid_column) >= 3 and m.label_at_endplates is None:
            m.label_at_endplates, said = _ends_at_endplates(labels, image, centre, frame, mid_column,
                                                         v_front + 0.5 * depth)
            m.notes += said
    if label_id == 2:
        m.notes.append("C2: the middle height includes the dens")
    return m


def _column_hu(labels: LabelMap, image, centre, frame, v: float, w: np.ndarray) -> np.ndarray:
    """Median HU across a disc of ``DISC_RADIUS_MM`` (in u and v) at each w along the line u = 0, v."""
    line = centre + (np.array([0.0, v, 0.0])[None] + w[:, None] * np.array([0.0, 0.0, 1.0])[None]) @ frame.T
    return median_across(image.array, labels, line, frame[:, 0], frame[:, 1], DISC_RADIUS_MM)


def _endplates_on(hu: np.ndarray, base: float) -> np.ndarray:
    """Indices of the cortical peaks along a column: ``ENDPLATE_HU`` over ``base`` and as prominent."""
    peaks, _ = signal.find_peaks(hu, height=base + ENDPLATE_HU, prominence=ENDPLATE_HU)
    return peaks


def _ends_at_endplates(labels: LabelMap, image, centre, frame, column: np.ndarray, v: float) -> tuple[bool | None, list[str]]:
    """(whether the body's label ends at its endplates, notes): read along its middle column on the
    scan. None where the scan shows no endplate within reach (thin slices of poor contrast, metal
    aside): then nothing is said."""
    if not labels.same_grid(image, atol_mm=1e-2):
        return None, []
    bottom, top = float(column[:, 2].min()), float(column[:, 2].max())
    w = np.arange(bottom - DISC_REACH_MM, top + DISC_REACH_MM + 0.5, 1.0)
    hu = _column_hu(labels, image, centre, frame, v, w)
    inside = (w >= bottom + 0.25 * (top - bottom)) & (w <= top - 0.25 * (top - bottom))
    if not inside.any():
        return None, []
    plates = w[_endplates_on(hu, float(np.median(hu[inside])))]
    if not len(plates):
        return None, []
    slack = max(SHORT_MM, 1.5 * _cell(labels))
    said = []
    for side, edge, sign in (("upper", top, 1.0), ("lower", bottom, -1.0)):
        if np.any(np.abs(plates - edge) <= slack):
            continue
        beyond = plates[sign * (plates - edge) > 0]
        if len(beyond):
            gap = float(np.min(np.abs(beyond - edge)))
            said.append(f"its label stops {gap:.0f} mm short of the {side} endplate the scan shows: heights not graded")
    within = np.sort(plates[(plates > bottom + slack) & (plates < top - slack)])
    if np.any((np.diff(within) >= ENDPLATE_GAP_MM[0]) & (np.diff(within) <= ENDPLATE_GAP_MM[1])):
        said.append("its label runs across a disc (two endplates inside it): heights not graded")
    return (False, said) if said else (True, [])


def _cell(labels: LabelMap) -> float:
    return max(1.0, float(np.max(np.abs(labels.spacing))))


def _tilt_deg(plane: Plane, frame: np.ndarray) -> float:
    """Angle between an endplate's normal and the vertebra's axis w."""
    cos = abs(float(np.dot(plane.normal, frame[:, 2])))
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def _column_height(points: np.ndarray, v: float, step: float, coarsest: float | None = None) -> float | None:
    """Median over a row of cells (side to side) at depth ``v`` of the body's superior-inferior extent
    in each (a voxel centre sits half a voxel inside each surface: + one voxel). Cells of at least 2 mm:
    in a frame tilted against the voxel grid a thinner cell holds only a diagonal sliver of each voxel
    column; and as wide as the coarsest voxel edge (thick slices). Cells are cut from the strip's points,
    never from a band already cut to the column: a cell holding part of such a band holds the top of one
    voxel row and the bottom of none (half the height, on a column tilted by 0.6 degrees)."""
    size = max(2.0, 2.0 * step, coarsest or 0.0)
    points = points[np.floor((points[:, 1] - v) / size + 0.5) == 0]
    if len(points) < 3:
        return None
    _, cell = np.unique(np.floor(points[:, 0] / size).astype(int), return_inverse=True)
    cell = cell.ravel()
    top = np.full(cell.max() + 1, -np.inf)
    bottom = np.full(cell.max() + 1, np.inf)
    np.maximum.at(top, cell, points[:, 2])
    np.minimum.at(bottom, cell, points[:, 2])
    return float(np.median(top - bottom) + step)


def _largest_piece(ijk: np.ndarray, body: np.ndarray) -> np.ndarray | None:
    """Only the body's largest connected piece: fragments a segmentation left in front of it would
    otherwise set its heights and endplates."""
    lo = ijk[body].min(axis=0)
    grid = np.zeros(tuple(ijk[body].max(axis=0) - lo + 1), bool)
    grid[tuple((ijk[body] - lo).T)] = True
    pieces, count = ndimage.label(grid, structure=np.ones((3, 3, 3)))
    if count > 1:
        sizes = np.bincount(pieces.ravel())[1:]
        keep = pieces[tuple((ijk - lo).clip(0, np.array(grid.shape) - 1).T)] == int(np.argmax(sizes)) + 1
        body = body & keep
    return body if body.sum() >= 50 else None


def _body(local: np.ndarray, step: float) -> np.ndarray | None:
    """Mask of the body's points: along the mid-sagittal strip (bins of ``step`` along v), the first
    run of bone from the front ends at the posterior wall; the canal is the gap behind it. Where the
    label leaves no gap within a body's depth (specks in the canal, or the canal crossed at some
    heights), the canal is the first run of ``CANAL_RUN_MM`` where the label covers under
    ``CANAL_SHARE`` of the heights it covers in the body. None where the body would still be deeper
    than any (``MAX_BODY_DEPTH_MM``)."""
    strip = np.abs(local[:, 0]) <= STRIP_MM
    if strip.sum() < 20:
        return None
    v, w = local[strip, 1], local[strip, 2]
    bins = np.arange(v.min(), v.max() + step, step)
    which = np.clip(np.digitize(v, bins) - 1, 0, max(len(bins) - 2, 0))
    rows = np.zeros(max(len(bins) - 1, 1))
    for k in np.unique(which):
        rows[k] = len(np.unique(np.floor(w[which == k] / step)))
    if not rows.any():
        return None
    start = int(np.argmax(rows > 0))
    gap = np.flatnonzero(rows[start:] == 0)
    wall = float(bins[start + gap[0]]) if len(gap) else float(v.max())   # no gap: sacrum, a lone body
    if wall - float(v.min()) > MAX_BODY_DEPTH_MM:
        run = int(np.ceil(CANAL_RUN_MM / step))
        for k in range(start + int(np.ceil(MIN_BODY_DEPTH_MM / step)), len(rows) - run + 1):
            if np.all(rows[k:k + run] < CANAL_SHARE * np.median(rows[start:k])):
                wall = float(bins[k])
                break
    if wall - float(v.min()) > MAX_BODY_DEPTH_MM:
        return None
    body = local[:, 1] <= wall
    return body if body.sum() >= 50 else None


def _endplates(b: np.ndarray, centre, frame, step: float, footprint=None, cell: float = 1.0):
    """Planes fitted to the top and the bottom surface of the body's inner 70 % (the rims curl):
    the highest (lowest) point of each ``cell`` mm cell inside ``footprint`` (u0, v0, half-width,
    half-depth; default: from the points' own extent). A cell must be as wide as the coarsest voxel
    edge: a finer one between two thick slices holds only the few voxels the frame's tilt lets in,
    whose highest point is not the surface."""
    u, v = b[:, 0], b[:, 1]
    if footprint is None:
        footprint = (np.median(u), np.median(v), 0.35 * np.ptp(u), 0.35 * np.ptp(v))
    u0, v0, ru, rv = footprint
    inner = ((u - u0) / max(ru, 1e-6)) ** 2 + ((v - v0) / max(rv, 1e-6)) ** 2 <= 1.0
    cell = max(step, cell)
    keys = np.floor(b[inner, :2] / cell).astype(int)
    planes = []
    for sign in (1.0, -1.0):
        w = sign * b[inner, 2]
        order = np.lexsort((-w, keys[:, 1], keys[:, 0]))
        k = keys[order]
        first = np.ones(len(k), bool)
        first[1:] = np.any(k[1:] != k[:-1], axis=1)
        fit = _fit_plane(np.column_stack([(k[first] + 0.5) * cell, sign * w[order][first]]))
        if fit is None:
            planes.append(None)
            continue
        c_local, n_local = fit
        if n_local[2] < 0:
            n_local = -n_local
        planes.append(Plane([round(float(x), 3) for x in centre + frame @ c_local],
                            [round(float(x), 5) for x in _unit(frame @ n_local)]))
    return planes[0], planes[1]


def _core_hu(labels: LabelMap, image, body_ijk: np.ndarray, step: float) -> float | None:
    if not labels.same_grid(image, atol_mm=1e-2) or len(body_ijk) == 0:
        return None
    lo, hi = body_ijk.min(axis=0), body_ijk.max(axis=0) + 1
    mask = np.zeros(tuple(hi - lo), bool)
    mask[tuple((body_ijk - lo).T)] = True
    radius = np.maximum(np.round(CORE_EROSION_MM / np.asarray(labels.spacing)), 1).astype(int)
    structure = np.zeros(tuple(2 * radius + 1), bool)
    grid = np.indices(structure.shape).reshape(3, -1).T - radius
    inside = ((grid / np.maximum(radius, 1)) ** 2).sum(axis=1) <= 1.0
    structure[tuple((grid[inside] + radius).T)] = True
    core = ndimage.binary_erosion(mask, structure)
    if core.sum() < 10:
        return None
    values = image.array[tuple(slice(a, b) for a, b in zip(lo, hi))][core]
    return round(float(values.mean()), 1)


def measure_vertebrae(labels: LabelMap, image=None) -> list[VertebraMeasures]:
    """Every numbered vertebra. One cut by the scan's edge is listed but not measured (its body is
    partial); the sacrum gets only its S1 endplate, read under the vertebra above."""
    centres = centroids_mm(labels)
    axes = frames(centres)
    boxes = ndimage.find_objects(labels.array if np.issubdtype(labels.array.dtype, np.integer)
                                 else labels.array.astype(np.int32))
    edge = ids_on_border(labels.array)
    out: list[VertebraMeasures] = []
    for vid in [i for i in CRANIOCAUDAL if i in centres]:
        box = boxes[vid - 1]
        if box is None:
            continue
        if vid == SACRUM:
            above = next((m for m in reversed(out) if m.body_found), None)
            out.append(_sacrum(labels, box, above))
            continue
        if vid in edge:
            ijk = np.argwhere(labels.array[box] == vid)
            voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) / 1000.0
            m = VertebraMeasures(vid, vertebra_name(vid), round(len(ijk) * voxel_ml, 2),
                                 [round(float(x), 2) for x in centres[vid]],
                                 {k: [round(float(x), 4) for x in axes[vid][:, n]] for n, k in enumerate("uvw")})
            m.notes.append("cut by the scan's edge: not measured")
            out.append(m)
            continue
        out.append(measure_vertebra(labels, vid, box, axes[vid], image))
    return out


def _sacrum(labels: LabelMap, box, above: VertebraMeasures | None) -> VertebraMeasures:
    """The S1 endplate: the sacrum's top surface under the body of the vertebra above, in that
    vertebra's frame (the sacrum's own centroid lies far behind and below its endplate)."""
    ijk, lps = _local_points(labels, SACRUM, box)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) / 1000.0
    m = VertebraMeasures(SACRUM, vertebra_name(SACRUM), round(len(ijk) * voxel_ml, 2),
                         [round(float(x), 2) for x in lps.mean(axis=0)], {})
    if above is None or above.body_width_mm is None or above.inferior_endplate is None:
        m.notes.append("no measured vertebra above: the S1 endplate was not read")
        return m
    frame = np.column_stack([above.frame[k] for k in "uvw"])
    centre = np.asarray(above.inferior_endplate.point)
    local = (lps - centre) @ frame
    radius = 0.35 * min(above.body_width_mm, above.body_depth_mm or above.body_width_mm)
    under = (local[:, 0] ** 2 + local[:, 1] ** 2 <= radius ** 2) & (local[:, 2] > -40.0)
    if under.sum() < 30:
        m.notes.append("the sacrum does not lie under the vertebra above: the S1 endplate was not read")
        return m
    step = float(np.min(np.abs(labels.spacing)))
    m.frame = above.frame
    m.superior_endplate, _ = _endplates(local[under], centre, frame, step, cell=_cell(labels))
    m.body_found = m.superior_endplate is not None
    m.notes.append("only the S1 endplate is measured")
    return m
