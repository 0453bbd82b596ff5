"""Losses: Dice + BCE/CE with deep supervision, Gaussian-heatmap KL, instance Dice (M3), focal heatmap (M2)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - Dice, per sample and channel, averaged; ``prob`` and ``target`` in [0, 1]."""
    dims = tuple(range(2, prob.dim()))
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    pw = None if pos_weight is None else torch.tensor(pos_weight, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw)
    return bce + soft_dice_loss(torch.sigmoid(logits), target)


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-class: ``target`` holds class indices (B, *spatial)."""
    ce = F.cross_entropy(logits, target, weight=weight)
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    return ce + soft_dice_loss(torch.softmax(logits, 1)[:, 1:], onehot[:, 1:])


def deep_supervision_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor,
                          weights: Sequence[float] = (1.0, 0.5, 0.25)) -> torch.Tensor:
    """Dice + BCE at every scale (full resolution first); targets max-pooled down; weights normalised,
    larger for higher resolution."""
    total, norm = 0.0, float(sum(weights[:len(outputs)]))
    for out, w in zip(outputs, weights):
        t = target if out.shape[2:] == target.shape[2:] else F.adaptive_max_pool3d(target, out.shape[2:])
        total = total + (w / norm) * dice_bce_loss(out, t)
    return total


def gaussian_heatmaps(centroids: torch.Tensor, present: torch.Tensor, shape, sigma: float) -> torch.Tensor:
    """Normalised Gaussian targets: (B, C, *shape), each present class's map sums to 1.

    ``centroids`` (B, C, 3) in output-voxel units, ``present`` (B, C) bool; absent classes are zero."""
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32, device=centroids.device) for s in shape],
                           indexing="ij")
    d2 = sum((g[None, None] - centroids[..., a, None, None, None]) ** 2 for a, g in enumerate(grids))
    heat = torch.exp(-d2 / (2 * sigma ** 2))
    heat = heat / heat.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None, None]
    return heat * present[..., None, None, None]


def heatmap_kl_loss(logits: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax over space), per present class, averaged; >= 0."""
    logp = torch.log_softmax(logits.flatten(2), dim=-1)
    t = target.flatten(2)
    kl = (t * (torch.log(t.clamp_min(1e-12)) - logp)).sum(-1)
    mask = present.float()
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def instance_dice_loss(id_logits: torch.Tensor, fg_prob: torch.Tensor, instances: torch.Tensor,
                       present: torch.Tensor) -> torch.Tensor:
    """Soft instance masks = foreground probability x softmax over classes; Dice per present instance.

    A merged or fragmented vertebra lowers the Dice of its instance, which a binary Dice would miss.
    ``instances`` (B, C, *spatial) one-hot per class at the heatmap resolution."""
    fg = fg_prob if fg_prob.shape[2:] == id_logits.shape[2:] else F.interpolate(
        fg_prob, size=id_logits.shape[2:], mode="trilinear", align_corners=False)
    soft = torch.softmax(id_logits, dim=1) * fg
    dims = tuple(range(2, soft.dim()))
    inter = (soft * instances).sum(dims)
    dice = (2 * inter + 1e-5) / (soft.sum(dims) + instances.sum(dims) + 1e-5)
    mask = present.float()
    return ((1 - dice) * mask).sum() / mask.sum().clamp_min(1.0)


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
                       beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on a Gaussian-peaked target (peaks == 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.999).float()
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p ** alpha * (1 - target) ** beta * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1.0)


def dice_score(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Hard Dice of two binary tensors (1.0 when both are empty)."""
    pred, target = pred.bool(), target.bool()
    denom = pred.sum() + target.sum()
    return 1.0 if int(denom) == 0 else float(2 * (pred & target).sum() / denom)
