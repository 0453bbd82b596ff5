"""The analysis pipelines by name, as data: what the CLI offers (``choices``), what Preferences lists
and what the docs describe. Importing this module loads no model runtime; the stages are built by
``spine_core.pipeline.pipelines``.

Names say what a pipeline does. The names of the first release (``default``, ``m3``, ``m1-only``,
from the planning documents) are still accepted as aliases, and resolve to these.

An MR scan runs an MR method (``MR_PIPELINES``): the one ``SegmentOptions.pipeline`` names, else the
one ``SegmentOptions.mr_method`` names (the workstation's MR preference), else the default
(``mr-scar``). An MR method on a CT is refused. Preferences offers the CT pipelines and, apart, the MR
methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from spine_core.errors import SpineError


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    in_preferences: bool = True      # offered to clinicians; False: for comparison in benchmarks


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline("per-vertebra", "Localize, detect, segment each vertebra, label (M1 + M2)", ("default",)),
    Pipeline("joint", "Joint segmentation + identification network (M1 + M3)", ("m3",)),
    Pipeline("localizer-components", "The localizer's spine mask split into components (M1 only)",
             ("m1-only",), in_preferences=False),
)
DEFAULT = PIPELINES[0].name


@dataclass(frozen=True)
class MRPipeline:
    """An MR method: the networks it runs (the instance split and the numbering are shared) and how far
    its level count is trusted: the cap on a structure's confidence by what anchored the count (keys:
    spine_core.pipeline.mr.count_anchor), each from the method's own cross-validation folds."""
    name: str
    description: str
    models: tuple[str, ...]
    level_trust: Mapping[str, float]


# Levels on MR are counted from the bottom, not read from each body, so a scan's levels are one outcome:
# one wrong anchor shifts them all. Each cap is the 95 % Wilson lower bound of the cases all right in
# the method's 4 folds (benchmarks/eval_mr.py prints the counts; docs/BENCHMARKS.md "MR").
# M5 at 4,800 steps, rules as shipped: anchored on the sacrum 14 of 15 cases all right (0.70; per
# structure 91 of 92, 0.94); at 2,400 steps it was 15 of 16 (0.72). The by-case bound is the cap.
# Everything else stays under the review flag's 0.5: the lowest body taken for L5, a guessed S1, the
# neck (no evidence).
SCAR_LEVEL_TRUST = MappingProxyType({"sacrum": 0.70, "none": 0.45, "cut_sacrum": 0.45, "cervical": 0.45})
# M4 (700 steps a stage, stage 2 over the spinal column) counts worse from the same anchors: sacrum 11
# of 17 cases (0.41), lowest body taken for L5 7 of 8 (0.53), a guessed S1 5 of 7 (0.36). Each cap is
# the lower of M5's and M4's bound: no M4 level is shown above the review flag's 0.5.
SSHS_LEVEL_TRUST = MappingProxyType({"sacrum": 0.41, "none": 0.45, "cut_sacrum": 0.36, "cervical": 0.45})

MR_SCAR_MODEL = "mr-spine-seg"
MR_SSHS_MODELS = ("mr-sshs-2d", "mr-sshs-3d")
MR_PIPELINES: tuple[MRPipeline, ...] = (
    MRPipeline("mr-scar", "MR bodies and discs: 2D network with key-point branch (M5, SCAR-Net style)",
               (MR_SCAR_MODEL,), SCAR_LEVEL_TRUST),
    MRPipeline("mr-sshs", "MR bodies and discs: 2D network, then 3D network on its probabilities and "
               "features (M4, SSHSNet style)", MR_SSHS_MODELS, SSHS_LEVEL_TRUST),
)
MR_DEFAULT = MR_PIPELINES[0].name


def mr_pipeline(name: str) -> MRPipeline:
    """The MR method ``name`` chooses; a CT pipeline's name (the default ones) chooses the default MR method."""
    return next((p for p in MR_PIPELINES if p.name == name), MR_PIPELINES[0])


def mr_method(pipeline: str, preferred: str = "") -> MRPipeline:
    """The MR method an MR scan runs: the pipeline's if it names one, else the preferred one, else the default."""
    return mr_pipeline(pipeline if is_mr(pipeline) else preferred)


def is_mr(name: str) -> bool:
    return any(p.name == name for p in MR_PIPELINES)


def resolve(name: str) -> str:
    """The pipeline's name for ``name`` (a name or an old alias); SpineError if there is none."""
    for p in PIPELINES:
        if name == p.name or name in p.aliases:
            return p.name
    if is_mr(name):
        return name
    raise SpineError(f"Unknown pipeline '{name}'; choose one of "
                     f"{', '.join(p.name for p in (*PIPELINES, *MR_PIPELINES))}.")


def choices() -> list[str]:
    """Every accepted value: names, the MR methods' names, then the old aliases."""
    return [p.name for p in PIPELINES] + [p.name for p in MR_PIPELINES] + [a for p in PIPELINES for a in p.aliases]


def offered() -> list[str]:
    """The pipelines Preferences offers clinicians."""
    return [p.name for p in PIPELINES if p.in_preferences]


def normalise(name: str) -> str:
    """A known name or alias as its pipeline's name; anything else unchanged (for the caller to refuse)."""
    return resolve(name) if name in choices() else name
