"""MR training (M5, SCAR-Net style): bodies and discs on sagittal slices with mixed supervision.

The shared MR sets are partly labelled: VB2 / VB3 cases have bodies only, IVD cases discs only, the
cervical case both. Each case says what it has; the losses of what it lacks are masked out, so a
body-only case never teaches "no disc here". Slices are read as inference reads them
(spine_core.pipeline.mr_input), with a random slice stride so 1 mm training data also look like
3-4 mm clinical sagittal stacks.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training import augment
from training.losses import dice_bce_loss, dice_score, focal_heatmap_loss
from training.mr_data import DISC, MRCase, load_mr_case, mr_case_names, shared_mr_root

def _heatmap(labels: np.ndarray, is_disc: bool, sigma: float) -> np.ndarray:
    """Gaussian peaks (1 at the centre) at the 2D centroid of each structure in the slice."""
    out = np.zeros(labels.shape, np.float32)
    ids = [i for i in np.unique(labels) if (i >= DISC if is_disc else 0 < i < DISC)]
    if not ids:
        return out
    pp, ss = np.meshgrid(np.arange(labels.shape[0]), np.arange(labels.shape[1]), indexing="ij")
    for i in ids:
        where = np.nonzero(labels == i)
        if len(where[0]) < 5:
            continue
        cp, cs = np.round(where[0].mean()), np.round(where[1].mean())
        out = np.maximum(out, np.exp(-((pp - cp) ** 2 + (ss - cs) ** 2) / (2 * sigma ** 2)).astype(np.float32))
    return out


class MRSliceSampler:
    def __init__(self, cases: list[MRCase], patch: tuple[int, int], seed: int, strides=(1, 1, 1, 2, 3, 4),
                 empty_fraction: float = 0.1, sigma: float = 2.5) -> None:
        self.cases, self.patch, self.strides = cases, patch, strides
        self.rng = np.random.default_rng(seed)
        self.empty_fraction, self.sigma = empty_fraction, sigma

    def sample(self, case: MRCase | None = None, index: int | None = None, stride: int | None = None):
        from spine_core.pipeline.mr_input import slice_stack

        rng = self.rng
        case = case or self.cases[rng.integers(len(self.cases))]
        if index is None:
            pool = case.slices if rng.random() > self.empty_fraction or not len(case.slices) else None
            index = int(rng.choice(pool)) if pool is not None else int(rng.integers(case.image.shape[0]))
        stride = stride or int(rng.choice(self.strides))
        image = slice_stack(case.image, index, stride)
        labels = case.labels[index]
        # a crop that holds structures where the slice has any
        ph, pw = self.patch
        fg = np.argwhere(labels > 0)
        centre = (fg[rng.integers(len(fg))] if len(fg) else
                  np.array([rng.integers(labels.shape[0]), rng.integers(labels.shape[1])]))
        centre = centre + rng.integers(-ph // 4, ph // 4 + 1, 2)
        lo = centre - np.array([ph // 2, pw // 2])
        image = _crop(image, lo, (ph, pw))
        labels = _crop(labels[None], lo, (ph, pw))[0]
        body, disc = (labels > 0) & (labels < DISC), labels >= DISC
        target = np.stack([body, disc]).astype(np.float32)
        points = np.stack([_heatmap(labels, False, self.sigma), _heatmap(labels, True, self.sigma)])
        known = np.array([case.has_body, case.has_disc], np.float32)
        return image, target, points, known


def _crop(array: np.ndarray, lo, size) -> np.ndarray:
    """array[:, lo:lo+size] with zero padding outside."""
    out = np.zeros((array.shape[0], *size), array.dtype)
    src = [slice(max(0, l), min(n, l + s)) for l, s, n in zip(lo, size, array.shape[1:])]
    dst = [slice(a.start - l, a.stop - l) for a, l in zip(src, lo)]
    if all(a.stop > a.start for a in src):
        out[(slice(None), *dst)] = array[(slice(None), *src)]
    return out


def _affine(image, target, points, gen, rotate_deg=12.0, scale=0.15):
    b = image.shape[0]
    angle = (torch.rand(b, generator=gen) * 2 - 1) * np.deg2rad(rotate_deg)
    s = 1 + (torch.rand(b, generator=gen) * 2 - 1) * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(b)], 1), torch.stack([sin, cos, torch.zeros(b)], 1)], 1)
    theta = theta.to(image.device)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    image = F.grid_sample(image, grid, mode="bilinear", align_corners=False)
    target = F.grid_sample(target, grid, mode="nearest", align_corners=False)
    points = F.grid_sample(points, grid, mode="bilinear", align_corners=False)
    # resampling lowers the peaks below 1: the focal loss finds its positives at 1 again
    peaks = (points == F.max_pool2d(points, 3, stride=1, padding=1)) & (points > 0.5)
    return image, target, torch.where(peaks, torch.ones_like(points), points)


def _bias_field(image, gen, strength=0.3):
    """A smooth multiplicative intensity ramp, as coil sensitivity gives."""
    b = image.shape[0]
    coarse = (1 + strength * (torch.rand((b, 1, 3, 3), generator=gen) * 2 - 1)).to(image.device)
    return (image * F.interpolate(coarse, size=image.shape[2:], mode="bilinear", align_corners=False)).clamp(0, 1)


class MRScarTask:
    """The Trainer's task for ``mr_scar`` (training/nets/mr_scar.py)."""
    main_metric = "dice"

    def __init__(self, config: dict, train: list[MRCase], val: list[MRCase], seed: int = 0) -> None:
        self.config, self.settings = config, dict(config.get("task", {}))
        data = config.get("data", {})
        self.patch = tuple(int(s) for s in data.get("patch_size", (160, 160))[-2:])
        self.batch_size = int(config.get("optim", {}).get("batch_size", 8))
        self.train_cases, self.val_cases = train, val
        self.sampler = MRSliceSampler(train, self.patch, seed) if train else None
        self.gen = torch.Generator().manual_seed(seed)
        self.keypoint_weight = float(self.settings.get("keypoint_weight", 0.5))
        self.device = torch.device("cpu")
        self._val = None

    @staticmethod
    def load_data(config: dict) -> tuple[list[MRCase], list[MRCase]]:
        data = config.get("data", {})
        root = shared_mr_root(data.get("shared_root", ""))
        names = data.get("train_cases") or mr_case_names(root)
        return ([load_mr_case(root, n) for n in names],
                [load_mr_case(root, n) for n in data.get("val_cases", [])])

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _stack(self, items, train: bool) -> dict:
        image, target, points, known = (torch.from_numpy(np.stack(x)) for x in zip(*items))
        # augmented where the network runs: on a GPU the CPU would otherwise set the pace (the random
        # draws stay on the CPU generator, so a CPU run is unchanged)
        image, target, points = (x.to(self.device) for x in (image, target, points))
        if train:
            image, target, points = _affine(image, target, points, self.gen)
            if torch.rand(1, generator=self.gen) < 0.5:
                image = _bias_field(image, self.gen)
            image = augment.gamma(image, self.gen)
            image = augment.intensity_scale_shift(image, self.gen)
            if torch.rand(1, generator=self.gen) < 0.3:
                image = augment.gaussian_noise(image, self.gen, sigma=0.04)
            if torch.rand(1, generator=self.gen) < 0.5:       # left-right: the slice order reverses
                image = image.flip(1)
        return {"image": image, "target": target, "points": points, "known": known}

    def batch(self) -> dict:
        return self._stack([self.sampler.sample() for _ in range(self.batch_size)], train=True)

    def loss(self, model, batch):
        seg, keypoints = model(batch["image"])
        known = batch["known"]
        total, parts = seg.new_zeros(()), {}
        for c, name in enumerate(("body", "disc")):
            rows = known[:, c] > 0
            if not bool(rows.any()):
                continue
            seg_loss = dice_bce_loss(seg[rows, c:c + 1], batch["target"][rows, c:c + 1])
            point_loss = focal_heatmap_loss(keypoints[rows, c:c + 1], batch["points"][rows, c:c + 1])
            total = total + seg_loss + self.keypoint_weight * point_loss
            parts[name] = float(seg_loss.detach())
        parts["loss"] = float(total.detach())
        return total, parts

    @torch.no_grad()
    def validate(self, model) -> dict:
        if not self.val_cases:
            return {}
        if self._val is None:
            sampler = MRSliceSampler(self.val_cases, self.patch, seed=12345, strides=(1,))
            self._val = [self.to_device(self._stack([sampler.sample() for _ in range(4)], train=False))
                         for _ in range(8)]
        return masked_dice(self._val, lambda b, rows: model(b["image"][rows])[0])

    @staticmethod
    def describe(cases: list[MRCase]) -> dict:
        return {"cases": len(cases), "names": [c.name for c in cases],
                "sources": sorted({"shared MR " + ("TPTBox" if c.name.startswith("tptbox") else c.name.split("_")[0])
                                    for c in cases}),
                "with_bodies": sum(c.has_body for c in cases), "with_discs": sum(c.has_disc for c in cases)}


def masked_dice(batches: list[dict], segment) -> dict:
    """Mean Dice over the classes (body, disc), each scored only on the rows labelled with it;
    ``segment(batch, rows)`` gives the segmentation logits of those rows."""
    scores = []
    for c in range(2):
        preds, targets = [], []
        for b in batches:
            rows = b["known"][:, c] > 0
            if rows.any():
                preds.append((segment(b, rows)[:, c] > 0).flatten())
                targets.append(b["target"][rows, c].bool().flatten())
        if preds:
            scores.append(dice_score(torch.cat(preds), torch.cat(targets)))
    return {"dice": float(np.mean(scores))} if scores else {}
