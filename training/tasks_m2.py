"""M2 tasks: the 2D sagittal centre detector and the vertebra-sequence labeler."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training import augment
from training.data import Prepared
from training.losses import focal_heatmap_loss
from training.tasks import Task


def _slice_targets(labels: np.ndarray, sigma: float, min_pixels: int):
    """Per sagittal slice (J, K): Gaussian-peaked centre heatmap, box size (J, K extents) at the
    centre pixels, and the mask of those pixels."""
    heat = np.zeros(labels.shape, np.float32)
    size = np.zeros((2, *labels.shape), np.float32)
    mask = np.zeros(labels.shape, np.float32)
    jj, kk = np.meshgrid(np.arange(labels.shape[0]), np.arange(labels.shape[1]), indexing="ij")
    for vid in np.unique(labels):
        if vid <= 0 or vid >= 100:
            continue
        idx = np.argwhere(labels == vid)
        if len(idx) < min_pixels:
            continue
        c = idx.mean(axis=0)
        heat = np.maximum(heat, np.exp(-((jj - c[0]) ** 2 + (kk - c[1]) ** 2) / (2 * sigma ** 2)))
        r = np.round(c).astype(int)
        heat[r[0], r[1]] = 1.0
        size[:, r[0], r[1]] = idx.max(axis=0) - idx.min(axis=0) + 1
        mask[r[0], r[1]] = 1.0
    return heat, size, mask


class Detector2DTask(Task):
    """Sagittal slices (data.patch_size = [1, J, K]); targets from the (augmented) label slice."""
    main_metric = "peak_f1"

    def __init__(self, config, train, val, seed=0) -> None:
        super().__init__(config, train, val, seed)
        self.geometry = augment.GeometryAug(**{"flip_p": (0.0, 0.5, 0.5), "max_rotation_deg": (10.0, 0.0, 0.0),
                                               **self.settings.get("geometry", {})})

    def make_batch(self, patches, train: bool) -> dict:
        image = torch.from_numpy(np.stack([p.image for p in patches]))            # (B, 1, 1, J, K)
        labels = torch.from_numpy(np.stack([p.labels for p in patches]).astype(np.int64))
        if train:
            image, labels, _ = augment.geometric(image, labels, self.geometry, self.gen)
            image = augment.intensity_scale_shift(self.thick_slices(image), self.gen)
        sigma, min_px = float(self.settings.get("sigma_px", 2.0)), int(self.settings.get("min_pixels", 20))
        targets = [_slice_targets(lab[0].numpy(), sigma, min_px) for lab in labels]
        heat, size, mask = (torch.from_numpy(np.stack([t[i] for t in targets])) for i in range(3))
        heat, mask = heat[:, None], mask[:, None]
        return {"image": image[:, :, 0], "heat": heat, "size": size, "size_mask": mask}

    def forward(self, model, batch):
        out = model(batch["image"])
        return out if isinstance(out, tuple) else (out, None)

    def _loss(self, out, batch):
        heat, size = out
        loss = focal_heatmap_loss(heat, batch["heat"])
        if size is not None:
            m = batch["size_mask"]
            loss = loss + float(self.settings.get("size_weight", 0.1)) * (
                (size - batch["size"]).abs() * m).sum() / m.sum().clamp_min(1.0)
        return loss

    def loss(self, model, batch):
        loss = self._loss(self.forward(model, batch), batch)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self, model) -> dict:
        batches = self.val_batches()
        if not batches:
            return {}
        tp = fp = fn = 0
        losses = []
        for b in batches:
            out = self.forward(model, b)
            losses.append(float(self._loss(out, b)))
            prob = torch.sigmoid(out[0])
            peaks = (prob == F.max_pool2d(prob, 5, 1, 2)) & (prob > 0.3)
            true = b["heat"] >= 0.999
            near_true = F.max_pool2d(true.float(), 7, 1, 3) > 0
            near_pred = F.max_pool2d(peaks.float(), 7, 1, 3) > 0
            tp += int((peaks & near_true).sum())
            fp += int((peaks & ~near_true).sum())
            fn += int((true & ~near_pred).sum())
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        return {"val_loss": float(np.mean(losses)), "peak_f1": f1}


def vertebra_masks(case: Prepared, size, margin: int = 2) -> list[tuple[int, torch.Tensor]]:
    """Each vertebra's binary mask in its bounding box (+margin) resized to ``size``, ordered
    cranio-caudally by centroid (array axis k points superior: descending k)."""
    out = []
    for vid in sorted(case.centroids, key=lambda v: -case.centroids[v][2]):
        idx = np.argwhere(case.labels == vid)
        lo = np.maximum(idx.min(axis=0) - margin, 0)
        hi = np.minimum(idx.max(axis=0) + margin + 1, case.labels.shape)
        box = torch.from_numpy((case.labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] == vid).astype(np.float32))
        resized = F.interpolate(box[None, None], size=tuple(size), mode="trilinear", align_corners=False)
        out.append((int(vid), (resized[0] > 0.5).float()))
    return out


class LabelerTask(Task):
    """Sequences of consecutive vertebra masks from one scan; per-vertebra class (CE)."""
    main_metric = "accuracy"

    def __init__(self, config, train, val, seed=0) -> None:
        super().__init__(config, train, val, seed)
        net = config.get("net", {})
        from training.nets.labeler import LabelerConfig

        defaults = LabelerConfig()
        self.size = net.get("mask_size", defaults.mask_size)
        self.label_ids = list(net.get("label_ids", defaults.label_ids))
        self.max_len = int(self.settings.get("max_sequence", 12))
        self.rng = np.random.default_rng(seed)
        self.train_seqs = [s for s in (vertebra_masks(c, self.size) for c in train) if s]
        self.val_seqs = [s for s in (vertebra_masks(c, self.size) for c in val) if s]
        if not self.train_seqs:
            raise ValueError("no labelled vertebrae in the training cases")

    def _collate(self, seqs, train: bool) -> dict:
        n = max(len(s) for s in seqs)
        masks = torch.zeros(len(seqs), n, 1, *self.size)
        target = torch.full((len(seqs), n), -100, dtype=torch.long)
        for b, seq in enumerate(seqs):
            for i, (vid, m) in enumerate(seq):
                if train:
                    m = m.flip(1) if self.rng.random() < 0.5 else m                     # L-R flip
                    noise = self.settings.get("mask_noise")
                    if noise and self.rng.random() < float(noise.get("p", 0.5)):
                        m = augment.mask_noise(m, self.rng)
                masks[b, i] = m
                target[b, i] = self.label_ids.index(vid) if vid in self.label_ids else -100
        return {"masks": masks, "target": target, "padding": target.eq(-100) & masks.flatten(2).sum(-1).eq(0)}

    def batch(self) -> dict:
        seqs = []
        for _ in range(self.batch_size):
            seq = self.train_seqs[self.rng.integers(len(self.train_seqs))]
            length = int(self.rng.integers(min(2, len(seq)), min(self.max_len, len(seq)) + 1))
            start = int(self.rng.integers(0, len(seq) - length + 1))
            seqs.append(seq[start:start + length])
        return self._collate(seqs, train=True)

    def forward(self, model, batch):
        return model(batch["masks"], batch["padding"])

    def loss(self, model, batch):
        logits = self.forward(model, batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["target"].flatten(), ignore_index=-100)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def validate(self, model) -> dict:
        if not self.val_seqs:
            return {}
        correct = total = 0
        for seq in self.val_seqs:
            b = self.to_device(self._collate([seq], train=False))
            pred = self.forward(model, b).argmax(-1)
            valid = b["target"] != -100
            correct += int((pred[valid] == b["target"][valid]).sum())
            total += int(valid.sum())
        return {"accuracy": correct / max(total, 1)}
