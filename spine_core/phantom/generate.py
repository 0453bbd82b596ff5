"""``generate_phantom``: a seeded synthetic spine CT with exact vertebra (and disc) labels."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, is_disc, label_names
from spine_core.phantom import acquisition as acq
from spine_core.phantom import bones, organs, real_shapes, skeleton
from spine_core.phantom.anatomy import level_sequence
from spine_core.phantom.canvas import BoneTissue, Canvas
from spine_core.phantom.layout import CurveShape, build_curve, place_vertebrae, stack_levels
from spine_core.phantom.real_shapes import ShapeLibrary
from spine_core.phantom.torso import TorsoProfile, paint_torso
from spine_core.progress import NullProgress, Progress, SubProgress
from spine_core.volume import LabelMap, ScanMetadata, Volume

PATIENT_POSITIONS = {"HFS": "LPS", "FFS": "RPI", "HFP": "RAS", "FFP": "LAI"}


@dataclass(frozen=True)
class PhantomOptions:
    """Everything that makes one phantom; ``PhantomOptions.sample(seed)`` draws a varied one."""
    seed: int = 0
    first_level: str = "C1"
    last_level: str = "sacrum"
    spacing_mm: tuple[float, float, float] = (0.8, 0.8, 1.0)   # left-right, front-back, slice
    fov_mm: float = 400.0
    centre_on_spine: bool = False      # small reconstructions are centred on the spine
    margin_mm: float = 10.0            # beyond the first/last level; negative truncates them
    orientation: str | None = None     # array axes, e.g. 'LPS', 'RAI', 'PIR'; default from position
    patient_position: str = "HFS"
    # Anatomy and variants
    size: float = 1.0
    habitus: float = 1.0
    fat: float = 1.0
    shape_jitter: float = 0.04
    curve: CurveShape = field(default_factory=CurveShape)
    thoracic_count: int = 12           # 13: T13 with a 13th rib pair (label 28)
    lumbar_count: int = 5              # 6: L6 (label 25)
    sacralised_l5: bool = False
    missing_12th_rib: bool = False
    fractures: tuple[tuple[str, float], ...] = ()   # (level, anterior height loss 0..0.6)
    bone_density: float = 1.0          # 1 young adult; ~0.4 osteoporotic
    osteophytes: float = 0.0           # 0..1
    disc_degeneration: float = 0.0     # 0..1
    hardware_levels: tuple[str, ...] = ()   # pedicle screws + rods, e.g. ("L3", "L4", "L5")
    contrast: bool = False
    label_discs: bool = False
    # Share of vertebrae drawn from the real shapes handed to generate_phantom (0: all analytic)
    real_shape_p: float = 0.0
    # Acquisition
    noise_hu: float = 22.0
    psf_fwhm_mm: float = 1.0

    @classmethod
    def sample(cls, seed: int, **overrides) -> "PhantomOptions":
        """A plausible random patient and scan from ``seed``; ``overrides`` fix any field."""
        r = np.random.default_rng(seed + 7919)
        cobb = float(r.choice([0.0, 0.0, r.uniform(10, 60)]))
        curve = CurveShape(sacral_slope_deg=r.uniform(30, 48), lumbar_lordosis_deg=r.uniform(35, 65),
                           thoracic_kyphosis_deg=r.uniform(20, 60), cervical_lordosis_deg=r.uniform(5, 35),
                           scoliosis_cobb_deg=cobb, scoliosis_apex=str(r.choice(["T7", "T8", "T9", "L1", "L2"])),
                           scoliosis_right=bool(r.random() < 0.7))
        density = float(r.choice([1.0, r.uniform(0.3, 1.1)]))
        slice_mm = float(r.choice([0.6, 1.0, 1.25, 2.0, 3.0]))
        pixel = float(r.uniform(0.5, 1.0))
        values = dict(seed=seed, curve=curve, size=r.uniform(0.88, 1.1), habitus=r.uniform(0.85, 1.2),
                      fat=r.uniform(0.5, 1.8), bone_density=density, osteophytes=float(r.uniform(0, 1) ** 2),
                      disc_degeneration=float(r.uniform(0, 1) ** 2), spacing_mm=(pixel, pixel, slice_mm),
                      noise_hu=r.uniform(10, 40), contrast=bool(r.random() < 0.4),
                      thoracic_count=13 if r.random() < 0.05 else 12, lumbar_count=6 if r.random() < 0.06 else 5,
                      missing_12th_rib=bool(r.random() < 0.05),
                      fractures=((str(r.choice(["T11", "T12", "L1", "L2"])), r.uniform(0.15, 0.5)),)
                      if r.random() < 0.15 else (),
                      patient_position=str(r.choice(["HFS", "HFS", "HFS", "FFS", "HFP"])))
        values.update(overrides)
        return cls(**values)

    def levels(self) -> list[str]:
        names = level_sequence(self.thoracic_count, self.lumbar_count) + ["sacrum"]
        first, last = _level_index(names, self.first_level), _level_index(names, self.last_level)
        if first > last:
            raise ValueError(f"first level {self.first_level} lies below last level {self.last_level}")
        return names[first: last + 1]


def _level_index(names, name: str) -> int:
    name = "sacrum" if name.upper() in ("S1", "SACRUM") else name.upper()
    if name not in names:
        raise ValueError(f"level {name} is not in this spine ({names[0]}-{names[-1]})")
    return names.index(name)


@dataclass
class Phantom:
    image: Volume
    labels: LabelMap
    centroids: dict[int, np.ndarray]
    options: PhantomOptions
    levels: list[str]

    def centroid_records(self, discs: bool = False) -> list[dict]:
        """Centroids in cranio-caudal order (T13 after T12, L6 before the sacrum)."""
        order = {vid: k for k, vid in enumerate(CRANIOCAUDAL)}
        keys = sorted((i for i in self.centroids if discs or not is_disc(i)),
                      key=lambda i: (is_disc(i), order.get(i - DISC_OFFSET if is_disc(i) else i, 99)))
        return [{"id": int(i), "name": self.labels.names.get(int(i), str(i)),
                 "position": [round(float(v), 2) for v in self.centroids[i]]} for i in keys]


def generate_phantom(options: PhantomOptions | None = None, progress: Progress | None = None,
                     shapes: ShapeLibrary | None = None) -> Phantom:
    """The phantom of ``options``. ``shapes``: real vertebra shapes by level; each level that has
    one (or a near level of its region) is drawn from it with probability ``options.real_shape_p``
    (chosen from the seed), the others stay analytic. Without shapes or with p = 0 the output is
    exactly the analytic phantom."""
    opts = options or PhantomOptions()
    progress = progress or NullProgress()
    rng = np.random.default_rng(opts.seed)
    progress.update(0.0, "Laying out the spine")
    anatomy = _build_anatomy(opts, rng)
    canvas, z_sub = _make_canvas(opts, anatomy, rng)
    _paint(canvas, opts, anatomy, rng, SubProgress(progress, 0.02, 0.55), shapes)
    sd = acq.noise_profile(canvas, anatomy["torso"], opts.noise_hu)
    hu = acq.blur_and_noise(canvas, sd, opts.psf_fwhm_mm, z_sub, rng, SubProgress(progress, 0.55, 0.85))
    labels = acq.decimate_labels(canvas.labels, z_sub)
    canvas.hu = None
    image16 = acq.to_int16(hu)
    del hu
    progress.update(0.9, "Orienting")
    spacing = (canvas.spacing[0], canvas.spacing[1], canvas.spacing[2] * z_sub)
    origin = canvas.origin + np.array([0, 0, canvas.spacing[2] * (z_sub - 1) / 2])
    # Round so DICOM's 16-character positions carry the grid exactly (no "uneven slices").
    origin = np.round(origin, 2)
    code = opts.orientation or PATIENT_POSITIONS.get(opts.patient_position, "LPS")
    (image16, labels), affine = acq.reorient([image16, labels], spacing, origin, code)
    meta = ScanMetadata(modality="CT", description=f"SpinePlan phantom seed {opts.seed}",
                        source="spine_core.phantom")
    image = Volume(image16, affine, meta)
    present = [i for i, box in enumerate(ndimage.find_objects(labels), start=1) if box is not None]
    labelmap = LabelMap(labels, affine, meta, names=label_names(present))
    centroids = label_centroids(labelmap)
    progress.update(1.0, "Phantom ready")
    return Phantom(image, labelmap, centroids, opts, anatomy["levels_in_fov"])


def phantom_layout(options: PhantomOptions) -> dict:
    """The anatomy a phantom of ``options`` is painted from (its ground truth for measurements):
    "placements" (per level: dims, centre, local frame, fracture), "curve", "names"."""
    return _build_anatomy(options, np.random.default_rng(options.seed))


def _build_anatomy(opts: PhantomOptions, rng) -> dict:
    names = level_sequence(opts.thoracic_count, opts.lumbar_count)
    scale = {n: opts.size * float(np.clip(1 + rng.normal(0, opts.shape_jitter), 0.85, 1.15)) for n in names}
    override = {names[-1]: 2.5} if opts.sacralised_l5 else None
    centres, discs, top = stack_levels(names, scale, override)
    curve = build_curve(names, centres, top, opts.curve)
    placements = place_vertebrae(names, curve, centres, discs, scale, rng)
    fractures = dict(opts.fractures)
    for p in placements:
        p.fracture = float(np.clip(fractures.get(p.name, 0.0), 0.0, 0.6))
        if opts.sacralised_l5 and p is placements[-1]:
            p.flags.add("sacralised")
    landmarks = {n: centres[n] for n in names}
    landmarks.update({"S1": 0.0, "hips": -120.0, "head": top + 40.0})
    torso = TorsoProfile(curve, landmarks, opts.habitus, opts.fat)
    return {"names": names, "curve": curve, "placements": placements, "landmarks": landmarks,
            "torso": torso, "scale": opts.size, "levels_in_fov": opts.levels()}


def _z_range(opts, anatomy) -> tuple[float, float]:
    levels = anatomy["levels_in_fov"]
    byname = {p.name: p for p in anatomy["placements"]}
    pos, rot, dims = skeleton.sacrum_frame(anatomy["curve"], anatomy["scale"])

    def extent(name):
        if name == "sacrum":
            tip = pos + rot @ np.array([0, 0.35 * dims["s1_d"] + 30, -dims["length"]])
            return tip[2], pos[2]
        p = byname[name]
        half = p.dims.body_h / 2 + (4.0 if name == "C1" else 0.0)
        return p.centre[2] - half, p.centre[2] + half

    lo = extent(levels[-1])[0] - opts.margin_mm
    hi = extent(levels[0])[1] + opts.margin_mm
    return lo, hi


def _make_canvas(opts, anatomy, rng):
    sx, sy, sz = opts.spacing_mm
    z_sub = max(1, math.ceil(sz / 1.25 - 1e-6)) if sz > 1.5 else 1
    fine = sz / z_sub
    lo, hi = _z_range(opts, anatomy)
    nz = max(int(round((hi - lo) / sz)), 2)
    nx, ny = int(round(opts.fov_mm / sx)), int(round(opts.fov_mm / sy))
    mid = 0.5 * (lo + hi)
    if opts.centre_on_spine:
        s = float(np.interp(mid, anatomy["curve"].pos[:, 2], anatomy["curve"].s))
        centre = anatomy["curve"].at(s)[0][:2] + np.array([0.0, 25.0])
    else:
        t = anatomy["torso"].at_z(mid)
        centre = np.array([0.0, t.cy])
    origin = np.array([centre[0] - sx * (nx - 1) / 2, centre[1] - sy * (ny - 1) / 2,
                       lo + 0.5 * sz - fine * (z_sub - 1) / 2])
    return Canvas((nx, ny, nz * z_sub), (sx, sy, fine), origin, rng), z_sub


def _paint(canvas, opts, anatomy, rng, progress, shapes=None) -> None:
    placements, torso, curve = anatomy["placements"], anatomy["torso"], anatomy["curve"]
    anchors = organs.Anchors(curve, anatomy["landmarks"])
    paint_torso(canvas, torso, SubProgress(progress, 0.0, 0.45))
    progress.update(0.45, "Organs and muscles")
    organs.paint_organs(canvas, anchors, placements, opts.contrast, rng)
    organs.paint_canal(canvas, placements)
    progress.update(0.6, "Discs and vertebrae")
    skeleton.paint_discs(canvas, placements, opts.label_discs, opts.disc_degeneration)
    _paint_vertebrae(canvas, opts, placements, curve, rng, shapes)
    sacrum_tissue = BoneTissue(cancellous=40 + 160 * opts.bone_density, cortical=850, texture=45)
    skeleton.paint_sacrum(canvas, curve, opts.size, sacrum_tissue)
    progress.update(0.8, "Ribs and pelvis")
    bones.paint_ribs(canvas, placements, torso, opts.missing_12th_rib)
    bones.paint_sternum(canvas, anchors, torso)
    bones.paint_clavicles(canvas, anchors, torso)
    pos, rot, _ = skeleton.sacrum_frame(curve, opts.size)
    bones.paint_pelvis(canvas, pos, rot, opts.size)
    if opts.hardware_levels:
        skeleton.paint_hardware(canvas, placements, set(opts.hardware_levels))
        acq.metal_streaks(canvas, rng)
    progress.update(1.0, "Anatomy painted")


def _paint_vertebrae(canvas, opts, placements, curve, rng, shapes) -> None:
    """Analytic vertebrae, or real shapes where chosen: their draws come from the seed's own
    streams, so ``rng`` (and all else painted) is the same either way."""
    sacrum_pos, sacrum_rot, _ = skeleton.sacrum_frame(curve, opts.size)
    for i, p in enumerate(placements):
        tissue = skeleton.vertebra_tissue(p, opts.bone_density, rng)
        # Fractured and sacralised levels keep their analytic wedge / butterfly processes.
        plain = p.fracture <= 0 and "sacralised" not in p.flags
        shape = real_shapes.choose_shape(shapes, p.name, opts.real_shape_p, opts.seed) if plain else None
        if shape is None:
            skeleton.paint_vertebra(canvas, p, tissue, opts.osteophytes)
            continue
        planes = real_shapes.disc_planes(placements, i, (sacrum_pos, sacrum_rot))
        real_shapes.paint_real_vertebra(canvas, p, tissue, shape, real_shapes.pose_rng(opts.seed, p.name),
                                        planes)


def label_centroids(labels: LabelMap) -> dict[int, np.ndarray]:
    """Centre of mass of each label, LPS mm (one pass for bounding boxes, then each box)."""
    out = {}
    array = labels.array
    for i, box in enumerate(ndimage.find_objects(array), start=1):
        if box is None:
            continue
        idx = np.argwhere(array[box] == i)
        if len(idx) == 0:
            continue
        mean = idx.mean(axis=0) + np.array([s.start for s in box])
        out[i] = labels.index_to_lps(mean)
    return out


__all__ = ["Phantom", "PhantomOptions", "generate_phantom", "label_centroids"]
