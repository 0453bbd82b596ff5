"""M3 task: joint segmentation (deep supervision) + identification (heatmap KL + instance Dice).

Geometric augmentation moves the centroids with the same sampling grid as image and labels, so
the Gaussian targets stay on the vertebrae. ``augment.weak_view``/``strong_photometric`` are the
views a UniMatch-style teacher-student trainer would use on unlabelled scans.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training import augment
from training.losses import (deep_supervision_loss, dice_score, gaussian_heatmaps, heatmap_kl_loss,
                             instance_dice_loss)
from training.tasks import Task

STRIDE = 4   # identification heatmaps are at 1/4 resolution


class JointTask(Task):
    main_metric = "score"

    def __init__(self, config, train, val, seed=0) -> None:
        super().__init__(config, train, val, seed)
        from training.nets.joint import JointConfig

        self.label_ids = list(config.get("net", {}).get("label_ids", JointConfig().label_ids))
        self.seg_weight = float(self.settings.get("seg_weight", 1.0))
        self.id_weight = float(self.settings.get("id_weight", 2.0))
        self.instance_weight = float(self.settings.get("instance_weight", 0.5))
        self.sigma = float(self.settings.get("sigma_vox", 1.5))      # at heatmap resolution
        self.ds_weights = tuple(self.settings.get("deep_supervision_weights", [1.0, 0.5, 0.25]))

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

    def _losses(self, out, batch) -> dict:
        seg, heat = out[0], out[1]
        seg_outputs = [seg, *out[2:]] if len(out) > 2 else [seg]
        seg_loss = deep_supervision_loss(seg_outputs, batch["target"], self.ds_weights)
        kl = heatmap_kl_loss(heat, batch["heat"], batch["present"])
        inst = instance_dice_loss(heat, torch.sigmoid(seg), batch["instances"], batch["present"])
        total = self.seg_weight * seg_loss + self.id_weight * (kl + self.instance_weight * inst)
        return {"loss": total, "seg_loss": seg_loss, "kl": kl, "instance_dice_loss": inst}

    def loss(self, model, batch):
        parts = self._losses(model(batch["image"]), batch)
        return parts["loss"], {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def validate(self, model) -> dict:
        batches = self.val_batches()
        if not batches:
            return {}
        preds, targets, losses, hits, total = [], [], [], 0, 0
        for b in batches:
            out = model(b["image"])
            losses.append(float(self._losses(out, b)["loss"]))
            preds.append((out[0] > 0).flatten())
            targets.append(b["target"].bool().flatten())
            shape = out[1].shape[2:]
            peak = torch.stack(torch.unravel_index(out[1].flatten(2).argmax(-1), shape), -1).float()
            true = torch.stack(torch.unravel_index(b["heat"].flatten(2).argmax(-1), shape), -1).float()
            ok = (peak - true).norm(dim=-1) <= 2.0          # within 2 heatmap voxels
            hits += int((ok & b["present"]).sum())
            total += int(b["present"].sum())
        dice = dice_score(torch.cat(preds), torch.cat(targets))
        id_rate = hits / total if total else 0.0
        return {"val_loss": float(np.mean(losses)), "dice": dice, "id_rate": id_rate,
                "score": 0.5 * (dice + id_rate)}
