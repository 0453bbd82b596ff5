"""Tasks: what a batch is, the loss, and validation, per model. The Trainer runs any of them.

A task gets the whole config dict: ``data`` (DataConfig), ``net``, ``task`` (its own settings).
"""
from __future__ import annotations

import importlib
from dataclasses import fields

import numpy as np
import torch

from training import augment
from training.data import DataConfig, PatchSampler, PhantomStream, Prepared
from training.losses import dice_bce_loss, dice_score

TASKS = {"localizer": "training.tasks:LocalizerTask",
         "vertebra_seg": "training.tasks:VertebraSegTask",
         "detector2d": "training.tasks_m2:Detector2DTask",
         "labeler": "training.tasks_m2:LabelerTask",
         "joint": "training.tasks_m3:JointTask",
         "mr_scar": "training.tasks_mr:MRScarTask",
         "mr_scar_pair": "training.tasks_mr_adapt:MRAdaptTask",
         "mr_sshs2d": "training.tasks_mr_sshs:MRSSHS2DTask",
         "mr_sshs3d": "training.tasks_mr_sshs:MRSSHS3DTask"}


def data_config(config: dict) -> DataConfig:
    values = dict(config.get("data", {}))
    known = {f.name for f in fields(DataConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown data settings: {', '.join(unknown)}")
    return DataConfig(**values)


def task_class(name: str):
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


class Task:
    """Base: binary segmentation of vertebrae (any level) on sampled patches."""
    main_metric = "dice"

    def __init__(self, config: dict, train: list[Prepared], val: list[Prepared], seed: int = 0) -> None:
        self.config, self.data = config, data_config(config)
        self.settings = dict(config.get("task", {}))
        self.batch_size = int(config.get("optim", {}).get("batch_size", 2))
        self.train_cases, self.val_cases = train, val
        self.sampler = PatchSampler(train, self.data, seed) if train else None
        self.stream = (PhantomStream(self.sampler, self.data, seed)
                       if self.sampler is not None and self.data.phantom_stream > 0 else None)
        self.gen = torch.Generator().manual_seed(seed)
        self.geometry = augment.GeometryAug(**self.settings.get("geometry", {}))
        self._val_batches = None
        self.device = torch.device("cpu")    # the Trainer sets the model's device

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    # Batches
    def patches(self, sampler: PatchSampler, n: int):
        return [sampler.sample() for _ in range(n)]

    def make_batch(self, patches, train: bool) -> dict:
        # on the training device before augmenting: on a GPU the resampling is ~10x the cost of the rest
        image = torch.from_numpy(np.stack([p.image for p in patches])).to(self.device)
        labels = torch.from_numpy(np.stack([p.labels for p in patches]).astype(np.int64)).to(self.device)
        if train:
            image, labels, _ = augment.geometric(image, labels, self.geometry, self.gen)
            if self.settings.get("random_spacing", True) and torch.rand(1, generator=self.gen) < 0.3:
                image = augment.random_spacing(image, self.gen)
            if torch.rand(1, generator=self.gen) < 0.5:
                image = augment.intensity_scale_shift(image, self.gen)
        return {"image": image, "target": ((labels > 0) & (labels < 100)).float()[:, None]}

    def thick_slices(self, image: torch.Tensor) -> torch.Tensor:
        """The setting ``task.thick_slices`` ({"p": share of batches, "mm": [lo, hi]}): thick axial slices
        simulated along S, the last axis (augment.thick_slices); off where it is not set."""
        thick = self.settings.get("thick_slices")
        if not thick or torch.rand(1, generator=self.gen) >= float(thick.get("p", 0.5)):
            return image
        return augment.thick_slices(image, self.gen, float(self.data.spacing_mm[2]), tuple(thick.get("mm", (2.5, 6.0))))

    def batch(self) -> dict:
        if self.stream is not None:
            self.stream.tick()
        return self.make_batch(self.patches(self.sampler, self.batch_size), train=True)

    def val_batches(self) -> list[dict]:
        """A fixed set of validation batches (same patches every time: comparable numbers)."""
        if self._val_batches is None:
            self._val_batches = []
            if self.val_cases:
                sampler = PatchSampler(self.val_cases, self.data, seed=12345)
                for _ in range(self.data.val_patches):
                    batch = self.make_batch(self.patches(sampler, 1), train=False)
                    self._val_batches.append(self.to_device(batch))
        return self._val_batches

    # Loss and metrics
    def forward(self, model, batch):
        return model(batch["image"])

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        loss = dice_bce_loss(self.forward(model, batch), batch["target"])
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self, model) -> dict:
        batches = self.val_batches()
        if not batches:
            return {}
        losses, preds, targets = [], [], []
        for b in batches:
            logits = self.forward(model, b)
            losses.append(float(dice_bce_loss(logits, b["target"])))
            preds.append((logits > 0).flatten())
            targets.append(b["target"].bool().flatten())
        return {"val_loss": float(np.mean(losses)),
                "dice": dice_score(torch.cat(preds), torch.cat(targets))}


class LocalizerTask(Task):
    """M1: whole-spine binary mask (all vertebrae -> 1) on patches at the coarse spacing."""


class VertebraSegTask(Task):
    """M2 (b): ROI centred on one vertebra's centre; input [CT, centre-weight map]; target that vertebra."""

    def patches(self, sampler: PatchSampler, n: int):
        """ROIs centred on a level's centroid (rare levels oversampled), jittered by a few voxels
        as a detector would err."""
        from training.data import Patch, crop

        jitter = int(self.settings.get("centre_jitter_vox", 3))
        out = []
        for _ in range(n):
            c, vid = sampler.pairs[sampler.rng.choice(len(sampler.pairs), p=sampler.pair_p)]
            case = sampler.cases[c]
            centre = np.round(case.centroids[vid]).astype(int) + sampler.rng.integers(-jitter, jitter + 1, 3)
            origin = centre - sampler.size // 2
            patch = Patch(crop(case.image, origin, sampler.size)[None], crop(case.labels, origin, sampler.size),
                          {v: q - origin for v, q in case.centroids.items()}, case.name)
            out.append((patch, vid))
        return out

    def make_batch(self, items, train: bool) -> dict:
        from spine_core.pipeline.preprocess import centre_weight_map

        shape = tuple(self.data.patch_size)
        sigma = float(self.settings.get("weight_sigma_vox", shape[0] / 6))
        images, labels = [], []
        for p, vid in items:
            weight = centre_weight_map(shape, p.centroids[vid], sigma)
            images.append(np.concatenate([p.image, weight[None]], axis=0))
            labels.append((p.labels == vid).astype(np.int64))
        image, lab = (torch.from_numpy(np.stack(a)).to(self.device) for a in (images, labels))
        if train:
            image, lab, _ = augment.geometric(image, lab, self.geometry, self.gen)
            ct = augment.intensity_scale_shift(self.thick_slices(image[:, :1]), self.gen)
            image = torch.cat([ct, image[:, 1:]], dim=1)
        return {"image": image, "target": lab.float()[:, None]}

    def forward(self, model, batch):
        return model(batch["image"])
