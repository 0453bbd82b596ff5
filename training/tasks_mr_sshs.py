"""M4 (SSHSNet style) training: stage 1 semi-supervised by cross pseudo supervision, stage 2 on 3D patches.

Stage 1 (``mr_sshs2d``, training/nets/mr_sshs.py): the model is a pair of differently initialised 2D
networks (``MRSSHS2DPair``) trained by one optimizer step. Each is supervised by the masked Dice + BCE
losses of the M5 task (tasks_mr.py: a body-only case trains only the body channel) and, where a class
is not labelled (slices of scans without labels, ``data.unlabelled_cases``, and the class a partially
labelled case lacks), by the other network's hard pseudo-labels (sigmoid > 0.5, the two-class argmax;
a pixel a known class holds is never the other class). The pseudo-labelled slices are mixed by CutMix
(a box of one slice pasted into another; the pseudo-labels and the "unlabelled" weights mixed with the
same box), as CPS does. The consistency weight ramps up as exp(-5 (1 - t)^2) over ``ramp_steps``.

Stage 2 (``mr_sshs3d``): 3D patches of slices along L (random stride, as M5 reads slices) with one more
slice at each end; a frozen stage-1 network (``task.stage1_checkpoint``) reads every patch slice with
its two neighbours and gives the body / disc probabilities and the decoder features the 3D network
takes. Stage 1 runs on the patch's in-plane crop (at inference it sees whole slices: the two differ
near the crop's edge only). Losses: the masked Dice + BCE. Augmentation: intensity (gamma, contrast,
bias field, noise) and left-right; no geometric transform (the stage-1 outputs would need it too).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training import augment
from training.losses import dice_bce_loss
from training.mr_data import DISC, MRCase, shared_mr_root, unlabelled_mr_case
from training.tasks_mr import MRScarTask, MRSliceSampler, _bias_field, _crop, masked_dice


def masked_seg_loss(seg: torch.Tensor, target: torch.Tensor, known: torch.Tensor):
    """Dice + BCE per class over the samples that hold the class (2D or 3D logits)."""
    total, parts = seg.new_zeros(()), {}
    for c, name in enumerate(("body", "disc")):
        rows = known[:, c] > 0
        if bool(rows.any()):
            loss = dice_bce_loss(seg[rows, c:c + 1], target[rows, c:c + 1])
            total = total + loss
            parts[name] = float(loss.detach())
    return total, parts


def masked_dice_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5):
    """Dice + BCE counting only the pixels (per channel) where ``weight`` > 0."""
    weight = weight.expand_as(logits)
    if float(weight.sum()) <= 0:
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = (bce * weight).sum() / weight.sum()
    prob, target = torch.sigmoid(logits) * weight, target * weight
    dims = (0, *range(2, logits.dim()))                  # per channel, over the batch and the pixels
    dice = 1 - (2 * (prob * target).sum(dims) + eps) / (prob.sum(dims) + target.sum(dims) + eps)
    return bce + dice[weight.sum(dims) > 0].mean()


def pseudo_labels(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Hard labels (logit > 0) where a pixel a known class holds is never the other class."""
    held = target * known[:, :, None, None]
    return (logits > 0).float() * (1 - held.flip(1))


def cutmix_boxes(n: int, h: int, w: int, gen: torch.Generator, lo: float = 0.3, hi: float = 0.7) -> torch.Tensor:
    """One random box per sample (sides ``lo``-``hi`` of the slice's), as a (n, 1, h, w) 0/1 mask."""
    box = torch.zeros((n, 1, h, w))
    for i in range(n):
        bh, bw = (max(1, int(s * float(lo + (hi - lo) * torch.rand(1, generator=gen)))) for s in (h, w))
        top = int(torch.randint(0, h - bh + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=gen))
        box[i, 0, top:top + bh, left:left + bw] = 1.0
    return box


def cutmix(box: torch.Tensor, partner: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor with the box of sample i taken from sample ``partner[i]``: images, pseudo-labels and
    weights mixed by the same boxes."""
    box = box.to(tensors[0].device) > 0
    return [torch.where(box, t[partner], t) for t in tensors]


def cps_loss(net_a, net_b, unlabelled: dict) -> torch.Tensor:
    """Cross pseudo supervision on CutMix-ed slices: each network learns the other's hard labels
    where the class is not labelled. ``unlabelled``: "image", "target", "known" (the slices and what
    they hold), "box" and "partner" (the CutMix boxes and whose slice fills each)."""
    image, target, known = unlabelled["image"], unlabelled["target"], unlabelled["known"]
    box, partner = unlabelled["box"], unlabelled["partner"]
    with torch.no_grad():
        label_a = pseudo_labels(net_a(image)[0], target, known)
        label_b = pseudo_labels(net_b(image)[0], target, known)
    unlabelled = (1 - known)[:, :, None, None].expand_as(label_a)
    mixed, label_a, label_b, weight = cutmix(box, partner, image, label_a, label_b, unlabelled)
    return masked_dice_bce(net_a(mixed)[0], label_b, weight) + masked_dice_bce(net_b(mixed)[0], label_a, weight)


def ramp(step: int, steps: int) -> float:
    """The sigmoid-shaped ramp exp(-5 (1 - t)^2), t = step / steps, 1 from ``steps`` on."""
    t = 1.0 if steps <= 0 else min(step / steps, 1.0)
    return float(np.exp(-5.0 * (1.0 - t) ** 2))


def load_unlabelled_mr(config: dict) -> list[MRCase]:
    """``data.unlabelled_cases``: scan paths or shared MR case names; their labels are never read."""
    from spine_core.io import load_scan

    data = config.get("data", {})
    root = shared_mr_root(data.get("shared_root", ""))
    cases = []
    for entry in data.get("unlabelled_cases", []):
        path = Path(entry) if Path(entry).exists() else root / entry / "image.nii.gz"
        cases.append(unlabelled_mr_case(Path(entry).name, load_scan(path)))
    return cases


class MRSSHS2DTask(MRScarTask):
    """Stage 1: the CPS pair (training/nets/mr_sshs.py ``MRSSHS2DPair``)."""

    def __init__(self, config: dict, train: list[MRCase], val: list[MRCase], seed: int = 0,
                 unlabelled: list[MRCase] | None = None) -> None:
        super().__init__(config, train, val, seed)
        self.cps_weight = float(self.settings.get("cps_weight", 1.5))
        self.ramp_steps = int(self.settings.get("ramp_steps", 2000))
        self.unlabelled_batch = int(self.settings.get("unlabelled_batch_size", self.batch_size))
        unlabelled = load_unlabelled_mr(config) if unlabelled is None else unlabelled
        pool = [c for c in train if not (c.has_body and c.has_disc)] + unlabelled
        self.unlabelled_sampler = (MRSliceSampler(pool, self.patch, seed + 1)
                                   if pool and self.unlabelled_batch >= 2 else None)
        self.unlabelled_description = ({"cases": len(unlabelled), "names": [c.name for c in unlabelled]}
                                       if unlabelled else {})
        self.step = 0

    def state(self) -> dict:
        return {"step": self.step}

    def load_state(self, state: dict, model) -> None:
        self.step = int(state.get("step", 0))

    def consistency_weight(self) -> float:
        return self.cps_weight * ramp(self.step, self.ramp_steps)

    def batch(self) -> dict:
        batch = super().batch() if self.sampler is not None else {}
        self.step += 1
        if self.unlabelled_sampler is not None:
            n = self.unlabelled_batch
            u = self._stack([self.unlabelled_sampler.sample() for _ in range(n)], train=True)
            batch.update(u_image=u["image"], u_target=u["target"], u_known=u["known"],
                         u_box=cutmix_boxes(n, *u["image"].shape[2:], self.gen),
                         u_partner=torch.roll(torch.arange(n), 1))
        return batch

    def loss(self, model, batch):
        seg_a, _ = model.a(batch["image"])
        seg_b, _ = model.b(batch["image"])
        total, parts = masked_seg_loss(seg_a, batch["target"], batch["known"])
        total = total + masked_seg_loss(seg_b, batch["target"], batch["known"])[0]
        return self.with_cps(model, batch, total, parts)

    def with_cps(self, model, batch: dict, total, parts: dict):
        """``total`` plus the weighted CPS loss of the batch's unlabelled part (if any); the parts logged."""
        if "u_image" in batch:
            weight = self.consistency_weight()
            cps = cps_loss(model.a, model.b, {k[2:]: v for k, v in batch.items() if k.startswith("u_")})
            total = total + weight * cps
            parts.update(cps=float(cps.detach()), cps_weight=round(weight, 4))
        parts["loss"] = float(total.detach())
        return total, parts


def load_stage1(path) -> torch.nn.Module:
    """The frozen stage-1 network of a ``mr_sshs2d`` checkpoint (its exported first network)."""
    from training.nets import build_model
    from training.trainer import load_checkpoint

    if not path or not Path(path).exists():
        raise ValueError(f"task.stage1_checkpoint '{path}': give the trained stage-1 (mr_sshs2d) checkpoint")
    ckpt = load_checkpoint(path)
    if ckpt["model_name"] != "mr_sshs2d":
        raise ValueError(f"{path} is a {ckpt['model_name']} checkpoint, not a stage-1 mr_sshs2d one")
    model = build_model(ckpt["model_name"], ckpt["net_config"])
    model.load_state_dict(ckpt["state_dict"])
    model = model.exported() if hasattr(model, "exported") else model
    return model.eval().requires_grad_(False)


class MRPatchSampler3D:
    """Patches of ``patch`` = (slices, P, S): slices along L at a random stride around a labelled
    slice, plus one slice at each end (the neighbours stage 1 reads): (D + 2, P, S), target (2, D, P, S)."""

    def __init__(self, cases: list[MRCase], patch, seed: int, strides=(1, 1, 2, 3),
                 empty_fraction: float = 0.1) -> None:
        self.cases, self.patch, self.strides = cases, tuple(int(s) for s in patch), tuple(strides)
        self.rng, self.empty_fraction = np.random.default_rng(seed), empty_fraction

    def sample(self):
        rng, (d, ph, pw) = self.rng, self.patch
        case = self.cases[rng.integers(len(self.cases))]
        n = case.image.shape[0]
        labelled = len(case.slices) and rng.random() > self.empty_fraction
        centre = int(rng.choice(case.slices)) if labelled else int(rng.integers(n))
        stride = int(rng.choice(self.strides))
        index = np.clip(centre + stride * (np.arange(-1, d + 1) - d // 2), 0, n - 1)
        labels = case.labels[index[1:-1]]
        fg = np.argwhere(labels > 0)[:, 1:]
        middle = (fg[rng.integers(len(fg))] if len(fg) else
                  np.array([rng.integers(labels.shape[1]), rng.integers(labels.shape[2])]))
        lo = middle + rng.integers(-ph // 4, ph // 4 + 1, 2) - np.array([ph // 2, pw // 2])
        slab = _crop(case.image[index], lo, (ph, pw))
        labels = _crop(labels, lo, (ph, pw))
        target = np.stack([(labels > 0) & (labels < DISC), labels >= DISC]).astype(np.float32)
        return slab, target, np.array([case.has_body, case.has_disc], np.float32)


def stage2_inputs(stage1, slab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[image, stage-1 probabilities] (B, 3, D, H, W) and the stage-1 features (B, F, D, h, w) of the
    slab's inner D slices, each read by stage 1 with its two neighbours (as slice_stack does)."""
    b, d2, h, w = slab.shape
    d = d2 - 2
    stacks = slab.unfold(1, 3, 1).permute(0, 1, 4, 2, 3).reshape(b * d, 3, h, w)
    with torch.no_grad():
        seg, features = stage1(stacks)
    probs = torch.sigmoid(seg).reshape(b, d, 2, h, w).transpose(1, 2)
    features = features.reshape(b, d, *features.shape[1:]).transpose(1, 2).contiguous()
    return torch.cat([slab[:, None, 1:-1], probs], dim=1), features


class MRSSHS3DTask(MRScarTask):
    """Stage 2: the 3D network on [image, stage-1 probabilities] and the stage-1 features."""

    def __init__(self, config: dict, train: list[MRCase], val: list[MRCase], seed: int = 0,
                 stage1: torch.nn.Module | None = None) -> None:
        super().__init__(config, train, val, seed)
        self.patch3d = tuple(int(s) for s in config.get("data", {}).get("patch_size", (8, 96, 96))[-3:])
        self.strides = tuple(int(s) for s in self.settings.get("strides", (1, 1, 2, 3)))
        self.sampler = MRPatchSampler3D(train, self.patch3d, seed, self.strides) if train else None
        self.stage1 = stage1 if stage1 is not None else load_stage1(self.settings.get("stage1_checkpoint", ""))
        wanted = int(config.get("net", {}).get("feature_channels", 16))
        if self.stage1.config.feature_channels != wanted:
            raise ValueError(f"stage 1 gives {self.stage1.config.feature_channels} feature channels; set "
                             f"net.feature_channels to it (not {wanted})")

    def _stack3d(self, items, train: bool) -> dict:
        slab, target, known = (torch.from_numpy(np.stack(x)) for x in zip(*items))
        if train:
            if torch.rand(1, generator=self.gen) < 0.5:
                slab = _bias_field(slab, self.gen)
            slab = augment.intensity_scale_shift(augment.gamma(slab, self.gen), self.gen)
            if torch.rand(1, generator=self.gen) < 0.3:
                slab = augment.gaussian_noise(slab, self.gen, sigma=0.04)
            if torch.rand(1, generator=self.gen) < 0.5:       # left-right: the slice order reverses
                slab, target = slab.flip(1), target.flip(2)
        return {"slab": slab, "target": target, "known": known}

    def batch(self) -> dict:
        return self._stack3d([self.sampler.sample() for _ in range(self.batch_size)], train=True)

    def inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        self.stage1.to(self.device)
        return stage2_inputs(self.stage1, batch["slab"])

    def loss(self, model, batch):
        total, parts = masked_seg_loss(model(*self.inputs(batch)), batch["target"], batch["known"])
        parts["loss"] = float(total.detach())
        return total, parts

    @torch.no_grad()
    def validate(self, model) -> dict:
        if not self.val_cases:
            return {}
        if self._val is None:
            sampler = MRPatchSampler3D(self.val_cases, self.patch3d, seed=12345, strides=(1,))
            self._val = [self.to_device(self._stack3d([sampler.sample() for _ in range(2)], train=False))
                         for _ in range(6)]
        return masked_dice(self._val, lambda b, rows: model(*self.inputs({"slab": b["slab"][rows]})))
