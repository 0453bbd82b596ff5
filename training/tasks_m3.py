"""M3 task: joint segmentation (deep supervision) + identification (heatmap KL + instance Dice),
optionally semi-supervised on unlabelled scans (UniMatch-v2 style teacher-student).

Geometric augmentation moves the centroids with the same sampling grid as image and labels, so
the Gaussian targets stay on the vertebrae.

Semi-supervised (when the data section names unlabelled scans): each step also draws unlabelled
patches; the weak view (flips, in-plane rotation) goes to the teacher, the strong view (the same
geometry + photometric/noise ops) to the student. Segmentation consistency is BCE on the voxels where
the teacher is confident (threshold ramped 0.5 -> 0.9); identification consistency is a class-weighted
CE towards the argmax of the temperature-softened teacher heatmaps on the teacher's foreground where
its confidence passes a threshold ramped 0.3 -> 0.55. The consistency weight is 0 during the warm-up,
then ramps linearly to 1; the teacher is an EMA of the student, initialised from it when the warm-up
ends. A site retrains on its own scans by listing them in ``data.unlabelled_cases``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from training import augment
from training.losses import (deep_supervision_loss, dice_score, gaussian_heatmaps, heatmap_kl_loss,
                             instance_dice_loss)
from spine_core.pipeline.joint import STRIDE   # identification heatmaps at 1/4: inference reads the same grid
from training.tasks import Task


@dataclass
class SemiConfig:
    """``task.semi`` in the config."""
    unlabelled_batch: int = 2
    warmup_steps: int = 2000
    ramp_steps: int = 2000
    ema_decay: float = 0.99
    seg_threshold: tuple[float, float] = (0.5, 0.9)     # ramped over ``ramp_steps`` after the warm-up
    id_threshold: tuple[float, float] = (0.3, 0.55)
    temperature: float = 0.5
    weight: float = 1.0
    strong_ops: int = 3


def semi_config(settings: dict) -> SemiConfig:
    values = dict(settings.get("semi", {}))
    unknown = sorted(set(values) - {f.name for f in fields(SemiConfig)})
    if unknown:
        raise ValueError(f"unknown task.semi settings: {', '.join(unknown)}")
    return SemiConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def level_ce_loss(heat_logits, instances) -> torch.Tensor:
    """Cross-entropy over the level channels on the heatmap cells mostly inside one vertebra."""
    cover, target = instances.max(dim=1)
    use = cover > 0.5
    if not bool(use.any()):
        return heat_logits.sum() * 0.0
    loss = F.cross_entropy(heat_logits, target, reduction="none")
    return (loss * use).sum() / use.sum()


def ramp(step: int, start: int, length: int) -> float:
    """0 before ``start``, then linear to 1 over ``length`` steps."""
    if step < start:
        return 0.0
    return 1.0 if length <= 0 else min(1.0, (step - start) / length)


def seg_consistency(student_logits, teacher_prob, threshold: float) -> torch.Tensor:
    """BCE towards the teacher's hard mask, on voxels where the teacher is at least ``threshold`` sure."""
    confident = torch.maximum(teacher_prob, 1 - teacher_prob) >= threshold
    loss = F.binary_cross_entropy_with_logits(student_logits, (teacher_prob > 0.5).float(), reduction="none")
    return (loss * confident).sum() / confident.sum().clamp_min(1)


def id_consistency(student_heat, teacher_heat, teacher_fg, threshold: float, temperature: float) -> torch.Tensor:
    """Class-weighted CE towards the teacher's pseudo-level (softened argmax) on its confident foreground;
    weights are inverse pseudo-class frequencies, so the common lumbar levels do not drown the rest."""
    soft = torch.softmax(teacher_heat / temperature, dim=1)
    conf, pseudo = soft.max(dim=1)
    use = (conf >= threshold) & teacher_fg
    if not bool(use.any()):
        return student_heat.sum() * 0.0
    counts = torch.bincount(pseudo[use], minlength=student_heat.shape[1]).float()
    weight = torch.where(counts > 0, counts.sum() / (counts * (counts > 0).sum()).clamp_min(1), 0.0)
    loss = F.cross_entropy(student_heat, pseudo, weight=weight, reduction="none")
    return (loss * use).sum() / (weight[pseudo] * use).sum().clamp_min(1e-6)


class EmaTeacher:
    """The teacher of a teacher-student task: an exponential moving average of the student, kept in the
    checkpoint (``state``/``load_state``) so a resumed run goes on with the same teacher."""
    semi: SemiConfig | None = None
    teacher = None
    steps_seen = 0

    @torch.no_grad()
    def after_step(self, model) -> None:
        """EMA teacher update (after the optimizer step)."""
        if self.teacher is None:
            return
        d = self.semi.ema_decay
        for pt, ps in zip(self.teacher.parameters(), model.parameters()):
            pt.mul_(d).add_(ps.detach(), alpha=1 - d)

    def state(self) -> dict:
        return {"steps_seen": self.steps_seen,
                "teacher": None if self.teacher is None else self.teacher.state_dict()}

    def load_state(self, state: dict, model) -> None:
        self.steps_seen = int(state.get("steps_seen", 0))
        if state.get("teacher") is not None and self.semi is not None:
            self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
            self.teacher.load_state_dict(state["teacher"])


class JointTask(EmaTeacher, Task):
    main_metric = "score"

    def __init__(self, config, train, val, seed=0) -> None:
        super().__init__(config, train, val, seed)
        from training.nets.joint import JointConfig

        self.label_ids = list(config.get("net", {}).get("label_ids", JointConfig().label_ids))
        self.seg_weight = float(self.settings.get("seg_weight", 1.0))
        self.id_weight = float(self.settings.get("id_weight", 2.0))
        self.instance_weight = float(self.settings.get("instance_weight", 0.5))
        # CE over the level channels at vertebra cells: trains directly the per-voxel level vote that
        # inference reads (the paper's instance Dice trains it only through soft overlaps)
        self.level_ce_weight = float(self.settings.get("level_ce_weight", 0.0))
        self.sigma = float(self.settings.get("sigma_vox", 1.5))      # at heatmap resolution
        self.ds_weights = tuple(self.settings.get("deep_supervision_weights", [1.0, 0.5, 0.25]))
        self.semi, self.teacher, self.unlabelled, self.steps_seen = None, None, None, 0
        if self.data.unlabelled_cases or self.data.unlabelled_phantom_seeds or self.data.toy_unlabelled:
            from training.data import PatchSampler, describe, load_unlabelled

            self.semi = semi_config(self.settings)
            pool = load_unlabelled(self.data)
            if not pool:
                raise ValueError("the unlabelled scans named in the config gave no volume")
            self.unlabelled = PatchSampler(pool, self.data, seed + 1)
            self.unlabelled_description = describe(pool)

    def make_batch(self, patches, train: bool) -> dict:
        image = torch.from_numpy(np.stack([p.image for p in patches]))
        labels = torch.from_numpy(np.stack([p.labels for p in patches]).astype(np.int64))
        n = len(self.label_ids)
        cents = torch.full((len(patches), n, 3), -1e4)
        for b, p in enumerate(patches):
            for c, vid in enumerate(self.label_ids):
                if vid in p.centroids:
                    cents[b, c] = torch.as_tensor(p.centroids[vid], dtype=torch.float32)
        if train:
            image, labels, grid = augment.geometric(image, labels, self.geometry, self.gen)
            cents, inside = augment.transform_points(grid, cents)
            if torch.rand(1, generator=self.gen) < 0.5:
                image = augment.strong_photometric(image, self.gen, n_ops=2)
        else:
            shape = torch.tensor(image.shape[2:], dtype=torch.float32)
            inside = ((cents >= 0) & (cents <= shape - 1)).all(-1)
        ids = torch.tensor(self.label_ids)
        present = inside & (labels.flatten(1)[:, :, None] == ids).any(1)
        out_shape = [s // STRIDE for s in image.shape[2:]]
        heat = gaussian_heatmaps((cents + 0.5) / STRIDE - 0.5, present, out_shape, self.sigma)
        onehot = (labels[:, None] == ids[None, :, None, None, None]).float()
        instances = F.avg_pool3d(onehot, STRIDE)
        seg = ((labels > 0) & (labels < 100)).float()[:, None]
        return {"image": image, "target": seg, "heat": heat, "present": present, "instances": instances}

    def batch(self) -> dict:
        batch = super().batch()
        if self.semi is not None and self.steps_seen >= self.semi.warmup_steps:
            patches = [self.unlabelled.sample() for _ in range(self.semi.unlabelled_batch)]
            image = torch.from_numpy(np.stack([p.image for p in patches]))
            weak, _, _ = augment.weak_view(image, None, self.gen)
            batch["weak"] = weak
            batch["strong"] = augment.strong_photometric(weak, self.gen, n_ops=self.semi.strong_ops)
        return batch

    def _losses(self, out, batch) -> dict:
        seg, heat = out[0], out[1]
        seg_outputs = [seg, *out[2:]] if len(out) > 2 else [seg]
        seg_loss = deep_supervision_loss(seg_outputs, batch["target"], self.ds_weights)
        kl = heatmap_kl_loss(heat, batch["heat"], batch["present"])
        inst = instance_dice_loss(heat, torch.sigmoid(seg), batch["instances"], batch["present"])
        total = self.seg_weight * seg_loss + self.id_weight * (kl + self.instance_weight * inst)
        parts = {"loss": total, "seg_loss": seg_loss, "kl": kl, "instance_dice_loss": inst}
        if self.level_ce_weight:
            parts["level_ce"] = level_ce_loss(heat, batch["instances"])
            parts["loss"] = total + self.id_weight * self.level_ce_weight * parts["level_ce"]
        return parts

    def loss(self, model, batch):
        parts = self._losses(model(batch["image"]), batch)
        if "weak" in batch:
            parts.update(self._consistency(model, batch))
            parts["loss"] = parts["loss"] + parts["consistency_weight"] * (parts["seg_consistency"]
                                                                           + parts["id_consistency"])
        self.steps_seen += 1
        return parts["loss"], {k: float(v.detach()) if torch.is_tensor(v) else v for k, v in parts.items()}

    def _consistency(self, model, batch) -> dict:
        cfg = self.semi
        if self.teacher is None:              # the warm-up just ended: the teacher starts as the student
            self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        t = ramp(self.steps_seen, cfg.warmup_steps, cfg.ramp_steps)
        seg_thr = cfg.seg_threshold[0] + t * (cfg.seg_threshold[1] - cfg.seg_threshold[0])
        id_thr = cfg.id_threshold[0] + t * (cfg.id_threshold[1] - cfg.id_threshold[0])
        with torch.no_grad():
            t_seg, t_heat = self.teacher(batch["weak"])[:2]
            t_prob = torch.sigmoid(t_seg)
            t_fg = F.adaptive_max_pool3d((t_prob > 0.5).float(), t_heat.shape[2:])[:, 0] > 0
        s_out = model(batch["strong"])
        return {"seg_consistency": seg_consistency(s_out[0], t_prob, seg_thr),
                "id_consistency": id_consistency(s_out[1], t_heat, t_fg, id_thr, cfg.temperature),
                "consistency_weight": cfg.weight * t}

    @torch.no_grad()
    def validate(self, model) -> dict:
        batches = self.val_batches()
        if not batches:
            return {}
        preds, targets, losses, hits, total = [], [], [], 0, 0
        level_hits = level_total = 0
        for b in batches:
            out = model(b["image"])
            losses.append(float(self._losses(out, b)["loss"]))
            preds.append((out[0] > 0).flatten())
            targets.append(b["target"].bool().flatten())
            # what inference uses: the level channel that wins at each vertebra cell
            owned = b["instances"].amax(1) > 0.5
            level_hits += int(((out[1].argmax(1) == b["instances"].argmax(1)) & owned).sum())
            level_total += int(owned.sum())
            shape = out[1].shape[2:]
            peak = torch.stack(torch.unravel_index(out[1].flatten(2).argmax(-1), shape), -1).float()
            true = torch.stack(torch.unravel_index(b["heat"].flatten(2).argmax(-1), shape), -1).float()
            ok = (peak - true).norm(dim=-1) <= 2.0          # within 2 heatmap voxels
            hits += int((ok & b["present"]).sum())
            total += int(b["present"].sum())
        dice = dice_score(torch.cat(preds), torch.cat(targets))
        id_rate = hits / total if total else 0.0
        level_acc = level_hits / level_total if level_total else 0.0
        return {"val_loss": float(np.mean(losses)), "dice": dice, "id_rate": id_rate, "level_acc": level_acc,
                "score": (dice + id_rate + level_acc) / 3}
