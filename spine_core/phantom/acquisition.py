"""What the scanner does to the painted anatomy: metal streaks, blur (PSF and slice profile),
quantum noise that grows with body size, thick-slice averaging, int16 HU, and the array order
and flips of real files."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from spine_core.volume import affine_from_geometry

HU_MIN, HU_MAX = -1024, 3071


def metal_streaks(canvas, rng, threshold: float = 2200.0, strength: float = 1.0) -> None:
    """Beam-hardening streaks in each axial slice that holds metal: dark bands along the lines
    joining metal objects, and alternating bright/dark rays from each object."""
    hu = canvas.hu
    has_metal = np.nonzero((hu > threshold).any(axis=(0, 1)))[0]
    if len(has_metal) == 0:
        return
    x = canvas.axis_mm(0)[:, None]
    y = canvas.axis_mm(1)[None, :]
    angles = rng.uniform(0, np.pi, 14)
    for k in has_metal:
        mask = hu[:, :, k] > threshold
        lab, n = ndimage.label(mask)
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        sizes = ndimage.sum(mask, lab, idx)
        centres = ndimage.center_of_mass(mask, lab, idx)
        pts = [(float(canvas.axis_mm(0)[0] + c[0] * canvas.spacing[0]),
                float(canvas.axis_mm(1)[0] + c[1] * canvas.spacing[1]), s)
               for c, s in zip(centres, sizes) if s >= 3]
        artefact = np.zeros(mask.shape, np.float32)
        for i, (x0, y0, s0) in enumerate(pts):
            weight = min(1.0, s0 * canvas.spacing[0] * canvas.spacing[1] / 30.0)
            r = np.sqrt((x - x0) ** 2 + (y - y0) ** 2) + 1.0
            for j, a in enumerate(angles):
                dist = np.abs((x - x0) * np.sin(a) - (y - y0) * np.cos(a))
                sign = 1.0 if j % 2 else -1.0
                artefact += sign * 140.0 * weight * np.exp(-dist ** 2 / 2.0) * (30.0 / (30.0 + r))
            for x1, y1, s1 in pts[i + 1:]:
                length = np.hypot(x1 - x0, y1 - y0) + 1e-3
                dist = np.abs((x - x0) * (y1 - y0) - (y - y0) * (x1 - x0)) / length
                artefact -= 260.0 * weight * np.exp(-dist ** 2 / (2 * 3.0 ** 2))
        hu[:, :, k] += strength * artefact * (~mask)


def noise_profile(canvas, torso, base_sd: float) -> np.ndarray:
    """Per-slice noise SD: thicker parts of the body (shoulders, pelvis) are noisier."""
    sd = np.empty(canvas.shape[2], np.float32)
    for k, z in enumerate(canvas.axis_mm(2)):
        t = torso.at_z(float(z))
        sd[k] = base_sd * np.clip(np.exp(0.006 * (t.ax + t.ay - 270.0)), 0.55, 2.2)
    return sd


def _kernel_gain(sigma: float) -> float:
    """How much a 1D Gaussian blur of ``sigma`` voxels shrinks the SD of white noise."""
    if sigma <= 0:
        return 1.0
    radius = int(4 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    return float(np.sqrt((w * w).sum()))


def blur_and_noise(canvas, sd_per_slice, psf_fwhm_mm: float, z_sub: int, rng, progress) -> np.ndarray:
    """Adds white noise, then one Gaussian pass does both the PSF and the noise grain (FBP noise
    is correlated over about the PSF width), then averages ``z_sub`` fine slices into one."""
    hu = canvas.hu
    sigma = [max(psf_fwhm_mm / 2.355 / canvas.spacing[0], 0.55),
             max(psf_fwhm_mm / 2.355 / canvas.spacing[1], 0.55),
             max(0.8 / 2.355 / canvas.spacing[2], 0.35)]
    gain = np.prod([_kernel_gain(s) for s in sigma]) * (1.0 / np.sqrt(z_sub))
    # Metal halos saturate; keep their extreme values from ringing through the blur.
    np.minimum(hu, 4000, out=hu)
    np.maximum(hu, HU_MIN - 200, out=hu)
    bank = rng.standard_normal((min(hu.shape[2], 61), *hu.shape[:2]), dtype=np.float32)
    shifts = rng.integers(0, hu.shape[:2], size=(hu.shape[2], 2))
    for k in range(hu.shape[2]):
        # A bank of noise slices, each reused with a random shift and flip: the same statistics
        # as fresh noise at a fraction of the cost of drawing 10^8 normals.
        noise = np.roll(bank[k % len(bank)], tuple(shifts[k]), axis=(0, 1))
        if (k // len(bank)) % 2:
            noise = noise[::-1]
        noise *= sd_per_slice[k] / gain
        hu[:, :, k] += noise
        if k % 64 == 0:
            progress.update(0.5 * k / hu.shape[2], "Scanner noise")
    progress.update(0.5, "Blurring (scanner resolution)")
    ndimage.gaussian_filter(hu, sigma, output=hu, truncate=3.0)
    if z_sub > 1:
        n = hu.shape[2] // z_sub
        hu = hu[:, :, : n * z_sub].reshape(hu.shape[0], hu.shape[1], n, z_sub).mean(axis=3)
    progress.update(1.0, "Blurred")
    return hu


def to_int16(hu: np.ndarray) -> np.ndarray:
    np.minimum(hu, HU_MAX, out=hu)
    np.maximum(hu, HU_MIN, out=hu)
    np.rint(hu, out=hu)
    return hu.astype(np.int16)


def decimate_labels(labels: np.ndarray, z_sub: int) -> np.ndarray:
    if z_sub == 1:
        return labels
    n = labels.shape[2] // z_sub
    return np.ascontiguousarray(labels[:, :, z_sub // 2: n * z_sub: z_sub])


_AXIS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def check_orientation(code: str) -> str:
    code = code.upper()
    if len(code) != 3 or any(c not in _AXIS for c in code) or len({_AXIS[c][0] for c in code}) != 3:
        raise ValueError(f"orientation '{code}' must name three different axes, e.g. LPS, RAI or PIR")
    return code


def reorient(arrays, spacing, origin, code: str):
    """Arrays on the canonical LPS grid re-indexed to ``code`` (e.g. 'RAS', 'PIR'); exact, no
    resampling. Returns the new arrays and the index-to-LPS affine."""
    code = check_orientation(code)
    perm = [_AXIS[c][0] for c in code]
    signs = [_AXIS[c][1] for c in code]
    shape = [arrays[0].shape[p] for p in perm]
    out = []
    for a in arrays:
        b = a.transpose(perm)
        flips = tuple(i for i, s in enumerate(signs) if s < 0)
        out.append(np.ascontiguousarray(np.flip(b, flips) if flips else b))
    direction = np.zeros((3, 3))
    new_spacing = []
    start = np.array(origin, dtype=np.float64)
    for i, (p, s) in enumerate(zip(perm, signs)):
        direction[p, i] = s
        new_spacing.append(spacing[p])
        if s < 0:
            start[p] += spacing[p] * (shape[i] - 1)
    return out, affine_from_geometry(new_spacing, direction, start)
