"""Site adaptation of the M2 vertebra segmentation (``spineplan retrain``): teacher-student consistency
on the site's unlabelled scans, anchored by supervised batches (generated phantoms, the site's corrected
cases).

The unlabelled regions are centred on the vertebra centres the parent pipeline found on each site scan
(pseudo-centres: the network segments one vertebra around a given centre, and the site's scans have no
labelled centres). As in M3, the teacher sees a weak view (flips, in-plane rotation) and the student a
strong one (the same geometry plus photometric and noise ops on the CT channel only: the centre-weight
channel is geometry, not appearance); the student learns the teacher's mask where the teacher is sure
(threshold ramped up), and the teacher is an exponential moving average of the student. Here the
teacher starts as the parent model itself, so there is no warm-up: adaptation begins from a trusted
network and the supervised batches keep it from drifting.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from training import augment
from training.data import crop
from training.tasks import VertebraSegTask
from training.tasks_m3 import EmaTeacher, ramp, seg_consistency, semi_config


class UnlabelledRegions:
    """The site's scans on the model's grid (scaled to [0, 1]) with their pseudo-centres (voxel index)."""

    def __init__(self, scans: list[tuple[np.ndarray, list[np.ndarray]]], patch_size, seed: int = 0) -> None:
        self.scans = [(image, [np.asarray(c, float) for c in centres]) for image, centres in scans if centres]
        if not self.scans:
            raise ValueError("no vertebra was found on any site scan, so there is nothing to adapt to")
        self.pairs = [(s, c) for s, (_, centres) in enumerate(self.scans) for c in range(len(centres))]
        self.size = np.asarray(patch_size, int)
        self.rng = np.random.default_rng(seed)

    def sample(self, jitter: int) -> tuple[np.ndarray, np.ndarray]:
        """(CT region, pseudo-centre inside it)."""
        s, c = self.pairs[self.rng.integers(len(self.pairs))]
        image, centres = self.scans[s]
        centre = np.round(centres[c]).astype(int) + self.rng.integers(-jitter, jitter + 1, 3)
        origin = centre - self.size // 2
        return crop(image, origin, self.size)[None], centres[c] - origin


class AdaptSegTask(EmaTeacher, VertebraSegTask):
    def __init__(self, config, train, val, seed=0, unlabelled: UnlabelledRegions | None = None) -> None:
        super().__init__(config, train, val, seed)
        self.semi = semi_config(self.settings)
        self.unlabelled = unlabelled
        self.teacher = None
        self.steps_seen = 0

    def start_teacher(self, model) -> None:
        """The teacher starts as the parent network (call after its weights are loaded)."""
        if self.teacher is None:
            self.teacher = copy.deepcopy(model).eval().requires_grad_(False)

    def batch(self) -> dict:
        batch = super().batch()
        if self.unlabelled is None:
            return batch
        from spine_core.pipeline.preprocess import centre_weight_map

        shape = tuple(self.data.patch_size)
        sigma = float(self.settings.get("weight_sigma_vox", shape[0] / 6))
        jitter = int(self.settings.get("centre_jitter_vox", 3))
        images = []
        for _ in range(self.semi.unlabelled_batch):
            region, centre = self.unlabelled.sample(jitter)
            images.append(np.concatenate([region, centre_weight_map(shape, centre, sigma)[None]], axis=0))
        weak, _, _ = augment.weak_view(torch.from_numpy(np.stack(images)), None, self.gen)
        strong_ct = augment.strong_photometric(weak[:, :1], self.gen, n_ops=self.semi.strong_ops)
        batch["weak"], batch["strong"] = weak, torch.cat([strong_ct, weak[:, 1:]], dim=1)
        return batch

    def loss(self, model, batch):
        loss, parts = super().loss(model, batch)
        if "weak" in batch:
            self.start_teacher(model)
            cfg = self.semi
            t = ramp(self.steps_seen, 0, cfg.ramp_steps)
            threshold = cfg.seg_threshold[0] + t * (cfg.seg_threshold[1] - cfg.seg_threshold[0])
            with torch.no_grad():
                teacher_prob = torch.sigmoid(self.teacher(batch["weak"]))
            consistency = seg_consistency(model(batch["strong"]), teacher_prob, threshold)
            loss = loss + cfg.weight * consistency
            parts.update(loss=float(loss.detach()), consistency=float(consistency.detach()))
        self.steps_seen += 1
        return loss, parts
