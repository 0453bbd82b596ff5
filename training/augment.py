"""Augmentations on batched torch patches: image (B, C, *spatial) in [0, 1], labels (B, *spatial) int.

Geometry (flips, rotations, scaling, elastic) is one sampling grid, applied to the image (linear)
and labels (nearest) together, so they stay aligned; ``transform_points`` moves centroids with it.
Intensity and noise ops (M3's weak/strong views) and random-spacing resampling touch the image only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class GeometryAug:
    flip_p: tuple[float, float, float] = (0.5, 0.5, 0.25)   # per array axis (i, j, k)
    max_rotation_deg: tuple[float, float, float] = (10.0, 10.0, 10.0)   # about i, j, k
    scale_range: tuple[float, float] = (0.9, 1.1)
    elastic_alpha: float = 0.0      # displacement amplitude, in voxels
    elastic_points: int = 4         # control points per axis of the smooth displacement field


def _rand(gen, n, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """3x3 rotation from three angles (radians) about the array axes."""
    out = torch.eye(3)
    for axis, a in enumerate(angles.tolist()):
        c, s = math.cos(a), math.sin(a)
        p, q = [x for x in range(3) if x != axis]
        r = torch.eye(3)
        r[p, p], r[p, q], r[q, p], r[q, q] = c, -s, s, c
        out = r @ out
    return out


def random_grid(shape, batch: int, aug: GeometryAug, gen: torch.Generator) -> torch.Tensor:
    """Sampling grid (B, *shape, 3) in grid_sample's (x=last axis, ..., z=first axis) order."""
    thetas = []
    for _ in range(batch):
        angles = torch.tensor([math.radians(m) for m in aug.max_rotation_deg]) * _rand(gen, 3, -1, 1)
        m = _rotation(angles) / _rand(gen, 1, *aug.scale_range)
        flips = torch.where(_rand(gen, 3) < torch.tensor(aug.flip_p), -1.0, 1.0)
        m = m * flips[None, :]
        # theta works in (x, y, z) = reversed array axes
        thetas.append(torch.cat([m.flip(0).flip(1), torch.zeros(3, 1)], dim=1))
    grid = F.affine_grid(torch.stack(thetas), (batch, 1, *shape), align_corners=False)
    if aug.elastic_alpha > 0:
        n = aug.elastic_points
        coarse = torch.randn(batch, 3, n, n, n, generator=gen)
        field = F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=False)
        scale = torch.tensor([2.0 / s for s in reversed(shape)])
        grid = grid + field.movedim(1, -1) * aug.elastic_alpha * scale
    return grid


def apply_grid(image: torch.Tensor, labels: torch.Tensor | None, grid: torch.Tensor):
    image = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if labels is not None:
        lab = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                            align_corners=False)
        labels = lab[:, 0].round().to(labels.dtype)
    return image, labels


def transform_points(grid: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where input voxel positions ``points`` (B, N, 3) land in the output patch (nearest grid node).

    Returns (positions (B, N, 3), inside (B, N) bool); a point not reached by the grid is outside."""
    shape = torch.tensor(grid.shape[1:-1], dtype=torch.float32)
    index = ((grid.flip(-1) + 1) * shape - 1) / 2          # grid -> input voxel index (i, j, k)
    flat = index.reshape(grid.shape[0], -1, 3)
    d = torch.cdist(points.float(), flat)                   # (B, N, V)
    dist, arg = d.min(dim=-1)
    coords = torch.stack(torch.unravel_index(arg, tuple(grid.shape[1:-1])), dim=-1).float()
    return coords, dist <= 1.0


def geometric(image, labels, aug: GeometryAug, gen: torch.Generator):
    # The random draws stay on the CPU generator (the same augmentations on any device); the
    # sampling runs where the batch is, on the GPU when the task put it there.
    grid = random_grid(image.shape[2:], image.shape[0], aug, gen).to(image.device)
    image, labels = apply_grid(image, labels, grid)
    return image, labels, grid


# Intensity and noise (image only, values kept in [0, 1])

def intensity_scale_shift(x, gen, scale=0.1, shift=0.1):
    b = x.shape[0]
    s = _rand(gen, b, 1 - scale, 1 + scale).view(b, *[1] * (x.dim() - 1)).to(x.device)
    t = _rand(gen, b, -shift, shift).view(b, *[1] * (x.dim() - 1)).to(x.device)
    return (x * s + t).clamp(0, 1)


def gamma(x, gen, lo=0.7, hi=1.5):
    g = _rand(gen, x.shape[0], lo, hi).view(-1, *[1] * (x.dim() - 1)).to(x.device)
    return x.clamp(0, 1) ** g


def gaussian_noise(x, gen, sigma=0.03):
    return (x + sigma * torch.randn(x.shape, generator=gen).to(x.device)).clamp(0, 1)


def salt_pepper(x, gen, amount=0.005):
    r = torch.rand(x.shape, generator=gen).to(x.device)
    x = torch.where(r < amount / 2, torch.zeros_like(x), x)
    return torch.where(r > 1 - amount / 2, torch.ones_like(x), x)


def poisson_noise(x, gen, photons=200.0):
    return (torch.poisson(x.clamp(0, 1) * photons, generator=gen) / photons).clamp(0, 1)


def speckle(x, gen, sigma=0.05):
    return (x * (1 + sigma * torch.randn(x.shape, generator=gen).to(x.device))).clamp(0, 1)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(2 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def blur(x, gen=None, sigma=0.8):
    """Separable Gaussian blur over every spatial axis (2D or 3D)."""
    k = _gaussian_kernel(sigma).to(x.device)
    c, nd = x.shape[1], x.dim() - 2
    conv = F.conv3d if nd == 3 else F.conv2d
    for axis in range(nd):
        shape = [1] * nd
        shape[axis] = len(k)
        pad = [0, 0] * nd
        pad[2 * (nd - 1 - axis)] = pad[2 * (nd - 1 - axis) + 1] = len(k) // 2
        x = conv(F.pad(x, pad, mode="replicate"), k.view(1, 1, *shape).repeat(c, 1, *[1] * nd), groups=c)
    return x


def unsharp(x, gen=None, sigma=1.0, amount=0.5):
    return (x + amount * (x - blur(x, sigma=sigma))).clamp(0, 1)


def median(x, gen=None):
    """3x3x3 (or 3x3) median: removes salt-and-pepper noise and flattens fine texture."""
    nd = x.dim() - 2
    pad = F.pad(x, [1, 1] * nd, mode="replicate")
    for axis in range(nd):
        pad = pad.unfold(2 + axis, 3, 1)
    return pad.reshape(*x.shape, -1).median(dim=-1).values


def slice_clahe(x, gen: torch.Generator, clip_limit: float = 0.01):
    """CLAHE on each axial slice (last spatial axis = S), as M3's strong view does slice-wise."""
    from skimage.exposure import equalize_adapthist

    clip = float(_rand(gen, 1, 0.5 * clip_limit, 2 * clip_limit))
    arr = x.detach().cpu().numpy().clip(0, 1)
    flat = arr.reshape(-1, *arr.shape[-(x.dim() - 2):])
    if x.dim() == 5:      # (B, C, I, J, K): equalise every (I, J) slice
        for n in range(flat.shape[0]):
            for k in range(flat.shape[-1]):
                flat[n, :, :, k] = equalize_adapthist(flat[n, :, :, k], clip_limit=clip)
    else:
        for n in range(flat.shape[0]):
            flat[n] = equalize_adapthist(flat[n], clip_limit=clip)
    return torch.from_numpy(flat.reshape(arr.shape).astype(arr.dtype)).to(x.device)


STRONG_OPS = (intensity_scale_shift, gamma, gaussian_noise, salt_pepper, poisson_noise, speckle, blur, median,
              unsharp, slice_clahe)


def strong_photometric(x, gen: torch.Generator, n_ops: int = 3):
    """M3's strong view: ``n_ops`` ops drawn from STRONG_OPS (same geometry as the weak view)."""
    for i in torch.randperm(len(STRONG_OPS), generator=gen)[:n_ops].tolist():
        x = STRONG_OPS[i](x, gen)
    return x


def weak_view(image, labels, gen: torch.Generator):
    """M3's weak view: flips (i, j p=0.5; k p=0.25) and an in-plane rotation."""
    aug = GeometryAug(flip_p=(0.5, 0.5, 0.25), max_rotation_deg=(0.0, 0.0, 15.0), scale_range=(1.0, 1.0))
    return geometric(image, labels, aug, gen)


def thick_slices(x, gen: torch.Generator, spacing_mm: float, thickness_mm=(2.5, 6.0)):
    """Simulate thick axial slices (clinical body CT is often reconstructed at 3-5 mm): average along
    the last spatial axis (S) over a random slice thickness, then back to the grid by linear
    interpolation, as the pipeline resamples such a scan. Each image of the batch gets its own
    thickness; under two voxels it is left as it is."""
    out = x.clone()
    size = x.shape[-1]
    for b in range(x.shape[0]):
        k = int(round(float(_rand(gen, 1, *thickness_mm)) / spacing_mm))
        if k < 2 or size < 2 * k:
            continue
        slab = F.avg_pool1d(x[b].reshape(-1, 1, size), kernel_size=k, stride=k)
        back = F.interpolate(slab, size=size, mode="linear", align_corners=False)
        out[b] = back.reshape(x[b].shape)
    return out


def random_spacing(x, gen: torch.Generator, max_factor: float = 2.0):
    """Simulate a coarser acquisition: down-sample each axis by a random factor, then back."""
    shape = x.shape[2:]
    factors = _rand(gen, len(shape), 1.0, max_factor)
    small = [max(2, int(round(s / f))) for s, f in zip(shape, factors.tolist())]
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    down = F.interpolate(x, size=small, mode=mode, align_corners=False)
    return F.interpolate(down, size=tuple(shape), mode=mode, align_corners=False)


def mask_noise(mask: torch.Tensor, rng, p_morph: float = 0.5, p_cut: float = 0.5,
               cut=(0.15, 0.45), axis_p=(0.2, 0.6, 0.2)) -> torch.Tensor:
    """A clean vertebra mask (1, L, P, S), boxed and resized as the labeler sees it, made to look like
    a segmentation network's: the labeler trains on reference masks but reads predicted ones, which
    are a voxel too thick or thin, and miss the arch, part of the body or an end cut by the scan. With
    ``p_morph`` one voxel of erosion or dilation; with ``p_cut`` a share ``cut`` of the box removed
    from one end of an axis (``axis_p``: L, P, S; front-back most often, where bodies and arches are
    lost); then boxed again and resized, as inference boxes what it gets. ``rng``: numpy Generator."""
    x = mask[None].float()                                           # (1, 1, L, P, S)
    if rng.random() < p_morph:
        grown = F.max_pool3d(x, 3, stride=1, padding=1)
        x = grown if rng.random() < 0.5 else 1.0 - F.max_pool3d(1.0 - x, 3, stride=1, padding=1)
    if rng.random() < p_cut:
        axis = int(rng.choice(3, p=axis_p))
        n = x.shape[2 + axis]
        k = int(round(n * rng.uniform(*cut)))
        index = [slice(None)] * 5
        index[2 + axis] = slice(0, k) if rng.random() < 0.5 else slice(n - k, n)
        x = x.clone()
        x[tuple(index)] = 0.0
    where = torch.nonzero(x[0, 0] > 0.5)
    clean = torch.nonzero(mask[0] > 0.5)
    if len(where) < 8 or len(clean) < 8:                            # nothing left to read: keep the clean one
        return mask
    # boxed with the clean mask's own margin (a share of its extent), as inference pads each box
    size = torch.tensor(mask.shape[1:])
    c_lo, c_hi = clean.min(0).values, clean.max(0).values + 1
    lo, hi = where.min(0).values, where.max(0).values + 1
    extent = (hi - lo).float()
    pad_lo = torch.round(c_lo.float() / (c_hi - c_lo).float() * extent).long()
    pad_hi = torch.round((size - c_hi).float() / (c_hi - c_lo).float() * extent).long()
    p = int(max(pad_lo.max(), pad_hi.max()))
    x = F.pad(x, (p, p, p, p, p, p))
    lo, hi = lo - pad_lo + p, hi + pad_hi + p
    box = x[..., lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    return (F.interpolate(box, size=tuple(mask.shape[1:]), mode="trilinear", align_corners=False)[0] > 0.5).float()
