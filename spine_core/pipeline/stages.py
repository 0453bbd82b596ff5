"""The shape every pipeline stage has: preprocess -> predict -> postprocess, each timed
(MONAI Label's ``BasicInferTask``), sharing one ``Context`` that carries the results so far."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from spine_core.errors import SpineError
from spine_core.pipeline.api import SegmentOptions
from spine_core.pipeline.models import ModelSet
from spine_core.pipeline.preprocess import box_grid, model_input
from spine_core.progress import Progress, SubProgress
from spine_core.volume import Volume

log = logging.getLogger(__name__)


class SpineNotFound(SpineError):
    pass


@dataclass
class Instances:
    """Vertebrae as one owner array on an LPS-aligned grid: owner n (1-based) = ``centres[n - 1]``."""
    grid: Volume
    owner: np.ndarray                 # int16, 0 = background
    centres_mm: np.ndarray            # (n, 3) LPS, cranial first
    seg_probability: np.ndarray       # (n,) mean probability inside each mask (1 where not known)


def keep_instances(inst: Instances, keep: np.ndarray) -> Instances:
    """``inst`` restricted to the candidates where ``keep`` is True, renumbered 1..n."""
    keep = np.flatnonzero(keep)
    remap = np.zeros(len(inst.centres_mm) + 1, inst.owner.dtype)
    remap[keep + 1] = np.arange(1, len(keep) + 1, dtype=inst.owner.dtype)
    return Instances(inst.grid, remap[inst.owner], inst.centres_mm[keep], inst.seg_probability[keep])


@dataclass
class Levels:
    ids: list[int]                    # VerSe id per instance
    probability: list[float]          # labeler probability of the assigned level
    flags: list[tuple[str, ...]]


@dataclass
class Context:
    volume: Volume
    options: SegmentOptions
    models: ModelSet
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    box_mm: tuple[np.ndarray, np.ndarray] | None = None      # spine crop, LPS (low, high)
    localizer: Any = None                                     # SpineLocation
    centres_mm: np.ndarray | None = None
    instances: Instances | None = None
    levels: Levels | None = None
    last_input: tuple | None = None                           # (key, ModelInput): see ModelStage.preprocess

    def warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)


class Stage:
    name = "stage"
    weight = 1.0           # share of the progress bar
    model_ids: tuple[str, ...] = ()
    optional_model_ids: tuple[str, ...] = ()   # run where installed and the scan calls for them

    def preprocess(self, ctx: Context, progress: Progress) -> Any:
        return None

    def predict(self, ctx: Context, inputs: Any, progress: Progress) -> Any:
        return inputs

    def postprocess(self, ctx: Context, outputs: Any, progress: Progress) -> None:
        return None

    def run(self, ctx: Context, progress: Progress) -> None:
        phases = (("preprocess", 0.0, 0.15), ("predict", 0.15, 0.85), ("postprocess", 0.85, 1.0))
        value = None
        for phase, start, stop in phases:
            sub = SubProgress(progress, start, stop)
            sub.update(0.0, f"{self.name}: {phase}")
            began = time.perf_counter()
            value = getattr(self, phase)(ctx, value, sub) if phase != "preprocess" else self.preprocess(ctx, sub)
            ctx.timings[f"{self.name}.{phase}"] = round(time.perf_counter() - began, 3)
        log.info("%s done in %.1f s", self.name,
                 sum(v for k, v in ctx.timings.items() if k.startswith(self.name + ".")))


class ModelInput(NamedTuple):
    """What a model stage's preprocess hands to its predict: the grid the network sees and the
    image on it, windowed and scaled as the model card says."""
    grid: Volume
    image: np.ndarray


class ModelStage(Stage):
    """A stage running one network: card -> grid -> model input, done here once for all of them.
    The grid is the spine's crop box at the card's spacing unless a stage says otherwise."""
    model_id = ""

    @property
    def model_ids(self) -> tuple[str, ...]:
        return (self.model_id,)

    def grid(self, ctx: Context, spacing_mm) -> Volume:
        return box_grid(*ctx.box_mm, spacing_mm)

    def preprocess(self, ctx: Context, progress: Progress) -> ModelInput:
        card = ctx.models.get(self.model_id).card
        grid = self.grid(ctx, card.input_spacing_mm)
        # a later stage on the same grid and window (gap filling after segmentation) reuses the input;
        # one slot, so at most one model input stays alive. Stages read it and never write to it.
        key = (grid.shape, np.asarray(grid.affine).tobytes(), tuple(card.intensity_window))
        if ctx.last_input is None or ctx.last_input[0] != key:
            ctx.last_input = (key, ModelInput(grid, model_input(ctx.volume, grid, card.intensity_window)))
        return ctx.last_input[1]
