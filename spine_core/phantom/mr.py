"""``generate_mr_phantom``: a seeded synthetic sagittal T2 lumbar MR with body and disc labels.

The anatomy is the CT phantom's (same seed, same spine); only the signal differs. Each tissue's CT
value is mapped to a T2-weighted turbo-spin-echo signal (fluid and CSF bright, fat bright, muscle
and cortex dark, fatty marrow intermediate), the discs get their own signal (bright nucleus, dark
annulus), then slice thickness, a coil bias field and Rician noise. The labels are what the shared
MR sets label: vertebral bodies (VerSe ids, posterior elements not included) and discs (100 + the id
of the vertebra above); the sacrum is not labelled.

Why it exists: the MR half of site retraining needs a fixed reference set that ships with the
product, and nothing real may ship. It is a check that a retrained model has not broken, not a
model of any scanner: its figures are never quoted as MR accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from spine_core.labels import DISC_OFFSET, label_names
from spine_core.phantom.generate import Phantom, PhantomOptions, generate_phantom, label_centroids, phantom_layout
from spine_core.progress import NullProgress, Progress, SubProgress
from spine_core.volume import LabelMap, ScanMetadata, Volume, affine_from_geometry

# CT value (HU) -> T2 signal (0..1); piecewise linear. Knots sit between the phantom's tissue
# values (organs.HU, torso.HU, skeleton.DISC_HU, bone tissue), so each tissue lands on a plateau.
T2_KNOTS = ((-1000.0, 0.0), (-900.0, 0.01), (-400.0, 0.08), (-150.0, 0.4), (-90.0, 0.45), (-40.0, 0.5),
            (0.0, 0.92), (15.0, 0.95), (20.0, 0.6), (30.0, 0.3), (45.0, 0.15), (70.0, 0.2), (120.0, 0.4),
            (300.0, 0.5), (550.0, 0.15), (850.0, 0.03))
# Inside a disc (75 HU at the centre to 95 HU at the rim in the CT phantom): bright but for a thin dark annulus.
DISC_KNOTS = ((75.0, 0.92), (89.0, 0.85), (95.0, 0.35))
SACRUM = 26
SOFT_TISSUE = 0.15          # T2 of muscle and ligament


@dataclass(frozen=True)
class MRPhantomOptions:
    seed: int = 0
    first_level: str = "T11"
    last_level: str = "sacrum"
    width_mm: float = 70.0            # left-right extent of the sagittal stack
    depth_mm: float = 200.0           # front-back extent
    thickness_mm: float = 3.0         # slice profile (FWHM) across the sagittal slices
    noise: float = 0.025              # Rician noise, share of the brightest tissue
    bias: float = 0.25                # coil sensitivity ramp, +/- share

    def ct_options(self) -> PhantomOptions:
        """The CT phantom whose anatomy is painted: no contrast, no fractures or hardware, little CT noise
        (the MR noise is added after the signal mapping)."""
        return PhantomOptions.sample(self.seed, first_level=self.first_level, last_level=self.last_level,
                                     spacing_mm=(1.0, 1.0, 1.0), fov_mm=self.depth_mm, centre_on_spine=True,
                                     label_discs=True, contrast=False, fractures=(), hardware_levels=(),
                                     noise_hu=2.0, psf_fwhm_mm=0.8, patient_position="HFS")


def t2_signal(hu: np.ndarray, labels: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """T2 signal of each voxel from its CT value; discs from their own table, ``soft`` as muscle."""
    signal = np.interp(hu, *zip(*T2_KNOTS)).astype(np.float32)
    disc = labels >= DISC_OFFSET
    signal[disc] = np.interp(hu[disc], *zip(*DISC_KNOTS))
    signal[soft] = SOFT_TISSUE
    return signal


def mr_labels(labels: np.ndarray, affine: np.ndarray, options: PhantomOptions) -> tuple[np.ndarray, np.ndarray]:
    """(labels as the MR sets hold them, voxels of disc tissue outside the disc space). Vertebrae are cut
    to the body: voxels in front of each body's posterior wall (local frame: v posterior, from the
    layout); the sacrum is dropped. The CT phantom paints each disc as a cylinder from body centre to
    body centre and the vertebrae over it, which leaves a sleeve of disc tissue around each body's
    waist: only the space between the endplates stays disc."""
    out = labels.copy()
    out[out == SACRUM] = 0
    sleeve = np.zeros(labels.shape, bool)
    rotation, origin = affine[:3, :3], affine[:3, 3]
    placements = phantom_layout(options)["placements"]

    def local(mask, centre, axis):
        idx = np.argwhere(mask)
        return idx, (idx @ rotation.T + origin - centre) @ axis

    for upper, lower in zip(placements[:-1], placements[1:]):
        idx, w = local(out == DISC_OFFSET + upper.vid, 0.5 * (upper.centre + lower.centre),
                       (upper.centre - lower.centre) / np.linalg.norm(upper.centre - lower.centre))
        outside = tuple(idx[np.abs(w) > upper.disc_below / 2 + 1.0].T)
        out[outside], sleeve[outside] = 0, True
    for placement in placements:
        idx, v = local(out == placement.vid, placement.centre, placement.rot[:, 1])
        out[tuple(idx[v > 0.5 * placement.dims.body_d + 1.0].T)] = 0
    return out, sleeve


def add_lumbosacral_disc(hu: np.ndarray, labels: np.ndarray, affine: np.ndarray, options: PhantomOptions) -> None:
    """The L5/S1 disc, which the CT anatomy leaves out (its discs join two vertebrae, and the sacrum is not
    one), drawn in place as ``skeleton`` draws the others: on the curve from the S1 endplate up to the
    lowest vertebra, that vertebra's body outline, nucleus to annulus by radius; only where no bone is.
    MR numbering counts from this disc, so without it no phantom count would be anchored."""
    from spine_core.phantom.skeleton import DISC_HU

    anatomy = phantom_layout(options)
    lowest = anatomy["placements"][-1]
    if lowest.disc_below <= 0 or "sacralised" in lowest.flags:
        return
    centre, rot = anatomy["curve"].frame(lowest.disc_below / 2)
    a, b, half = lowest.dims.body_w / 2, lowest.dims.body_d / 2, lowest.disc_below / 2
    rotation, origin = affine[:3, :3], affine[:3, 3]
    reach = np.array([a + 4, b + 4, a + 4])
    lo = np.floor(np.linalg.solve(rotation, centre - reach - origin)).astype(int)
    hi = np.ceil(np.linalg.solve(rotation, centre + reach - origin)).astype(int) + 1
    lo, hi = np.maximum(np.minimum(lo, hi), 0), np.minimum(np.maximum(lo, hi), labels.shape)
    box = tuple(slice(int(l), int(h)) for l, h in zip(lo, hi))
    idx = np.stack(np.meshgrid(*[np.arange(sl.start, sl.stop) for sl in box], indexing="ij"), -1)
    u, v, w = np.moveaxis((idx @ rotation.T + origin - centre) @ rot, -1, 0)
    r2 = (u / a) ** 2 + (v / (0.95 * b)) ** 2
    inside = (r2 <= 1.0) & (np.abs(w) <= half) & (labels[box] == 0)
    labels[box][inside] = DISC_OFFSET + lowest.vid
    hu[box][inside] = DISC_HU["nucleus"] + (DISC_HU["annulus"] - DISC_HU["nucleus"]) * r2[inside]


def generate_mr_phantom(options: MRPhantomOptions | None = None, progress: Progress | None = None) -> Phantom:
    """The phantom of ``options`` as a sagittal stack (array axes: inferior, posterior, right, as the
    shared MR sets store it), 1 mm in-plane and across, uint16 signal."""
    opts = options or MRPhantomOptions()
    progress = progress or NullProgress()
    ct_opts = opts.ct_options()
    ct = generate_phantom(ct_opts, SubProgress(progress, 0.0, 0.8))
    progress.update(0.8, "T2 signal")
    rng = np.random.default_rng(opts.seed + 104729)
    # The CT phantom is LPS-ordered (HFS): crop left-right to the sagittal stack around the spine.
    hu = ct.image.array.astype(np.float32)
    labels, sleeve = mr_labels(ct.labels.array, ct.image.affine, ct_opts)
    if opts.last_level in ("sacrum", "S1"):
        add_lumbosacral_disc(hu, labels, ct.image.affine, ct_opts)
    centre = np.mean([c for i, c in ct.centroids.items() if 0 < i < DISC_OFFSET], axis=0)
    x0 = int(round(ct.image.lps_to_index(centre)[0] - opts.width_mm / 2))
    x0 = int(np.clip(x0, 0, hu.shape[0] - int(opts.width_mm)))
    keep = slice(x0, x0 + int(opts.width_mm))
    hu, labels, sleeve = hu[keep], labels[keep], sleeve[keep]
    signal = t2_signal(hu, labels, sleeve)
    sigma = opts.thickness_mm / 2.355
    signal = ndimage.gaussian_filter1d(signal, sigma, axis=0) if sigma > 0 else signal
    ramp = np.linspace(-1, 1, signal.shape[2], dtype=np.float32)[None, None, :]
    tilt = rng.uniform(-1, 1)
    signal *= 1 + opts.bias * tilt * ramp
    real = signal + rng.normal(0, opts.noise, signal.shape).astype(np.float32)
    imag = rng.normal(0, opts.noise, signal.shape).astype(np.float32)
    signal = np.sqrt(real * real + imag * imag)
    image = np.clip(signal * 1000, 0, 65535).astype(np.uint16)
    # LPS (L, P, S) -> (I, P, R): the layout of a sagittal acquisition stored slice by slice.
    image = np.ascontiguousarray(np.flip(image.transpose(2, 1, 0), axis=(0, 2)))
    labels = np.ascontiguousarray(np.flip(labels.transpose(2, 1, 0), axis=(0, 2)))
    lps_origin = ct.image.index_to_lps([x0 + int(opts.width_mm) - 1, 0, ct.image.shape[2] - 1])
    direction = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    affine = affine_from_geometry((1.0, 1.0, 1.0), direction, lps_origin)
    meta = ScanMetadata(modality="MR", description=f"SpinePlan MR phantom seed {opts.seed} (T2)",
                        source="spine_core.phantom.mr")
    present = [int(i) for i in np.unique(labels) if i > 0]
    labelmap = LabelMap(labels.astype(np.int16), affine, meta, names=label_names(present))
    progress.update(1.0, "MR phantom ready")
    return Phantom(Volume(image, affine, meta), labelmap, label_centroids(labelmap), replace(ct_opts),
                   [n for n in ct.levels if n != "sacrum"])


__all__ = ["MRPhantomOptions", "generate_mr_phantom"]
