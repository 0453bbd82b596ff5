"""Site adaptation of the M5 MR model (``spineplan retrain --modality mr``): cross pseudo supervision
on the site's unlabelled MR scans, as M4 trains its stage 1, starting from the parent's weights.

The model is a pair of MRScarNet (training/nets/mr_scar.py ``MRScarPair``). Both start from the parent:
the first exactly, the second with its weights perturbed (training.retrain), so the two disagree
where the parent is unsure and each learns the other's hard pseudo-labels there, on CutMix-ed
slices of the site's scans (tasks_mr_sshs.cps_loss). Each step also has a supervised batch of the site's
corrected MR cases (training.retrain refuses to start without them: CPS alone, measured, drifted to
calling nothing a body): segmentation and key points for both networks, masked per case
(tasks_mr.MRScarTask.loss). Generated MR phantoms (``data.phantom_train_seeds``) can join that batch,
but the shipped config leaves them out: they are not realistic MR (a few steps on them moved the
parent's numbering on the first version of the reference phantoms from 0.41 to 0.16 mean Dice), and
the acceptance check runs on phantoms of the same generator, which training on them would make
circular. Export takes the first network.
"""
from __future__ import annotations

from training.mr_data import MRCase
from training.tasks_mr import MRScarTask
from training.tasks_mr_sshs import MRSSHS2DTask


class MRAdaptTask(MRSSHS2DTask):
    def __init__(self, config: dict, train: list[MRCase], val: list[MRCase], seed: int = 0,
                 unlabelled: list[MRCase] | None = None) -> None:
        super().__init__(config, train, val, seed, unlabelled=unlabelled or [])

    def loss(self, model, batch):
        total, parts = model.a.seg_body.weight.new_zeros(()), {}
        if "image" in batch:          # something labelled: corrections (and phantoms, if the config asks)
            total, parts = MRScarTask.loss(self, model.a, batch)
            total = total + MRScarTask.loss(self, model.b, batch)[0]
        return self.with_cps(model, batch, total, parts)
