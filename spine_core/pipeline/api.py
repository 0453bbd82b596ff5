"""The analysis interface's types: options, per-vertebra results, the result, the shipped model ids.
``segment(volume, options, progress) -> SegmentResult`` itself is ``spine_core.pipeline.segment``
(this module imports nothing of the pipeline, so every stage can import it without a cycle)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spine_core.volume import LabelMap

# Shipped model ids (resources/models/<id>.onnx + <id>.json).
LOCALIZER_ID = "ct-spine-localizer"
DETECTOR_ID = "ct-vertebra-detector"
THICK_DETECTOR_ID = "ct-vertebra-detector-thick"   # thick axial slices, where installed (not shipped; pipeline.detect)
VERTEBRA_SEG_ID = "ct-vertebra-seg"
LABELER_ID = "ct-vertebra-labeler"
JOINT_ID = "ct-joint-seg-id"


@dataclass(frozen=True)
class SegmentOptions:
    device: str = "auto"            # auto | cpu | gpu
    pipeline: str = "per-vertebra"  # a name (or old alias) in spine_core.pipeline.registry; on an MR
    #                                 the MR method: "mr-scar" (M5; also for any CT name) or "mr-sshs" (M4)
    fast: bool = False              # coarser segmentation, for previews
    models_dir: Path | None = None  # None: the shipped resources/models
    bone_refine: bool = True        # grow masks into adjacent bone, drop non-bone (pipeline.bone_refine)
    rib_anchor: bool = True         # number from the last rib pair where it is in view (pipeline.ribs)
    body_completion: bool = True    # bone refinement also fills bodies the networks missed (benchmark lever)
    disc_gaps: bool = True          # gap filling also where the column's discs show a missed vertebra (benchmark lever)
    chain_ends: bool = True         # gap filling also past the chain's ends along the localizer's spine (benchmark lever)
    disc_partition: bool = True     # masks re-divided at the column's discs (pipeline.discs; benchmark lever)
    body_size: bool = True          # numbering also weighs each vertebral body's size (pipeline.sizes; benchmark lever)
    modality: str = ""              # the user's word for a scan whose header names none ("" = guess)
    mr_method: str = ""             # the MR method where ``pipeline`` names a CT pipeline ("" = the default)


@dataclass(frozen=True)
class VertebraResult:
    id: int
    name: str
    position: np.ndarray            # centroid, LPS mm
    confidence: float               # 0..1
    volume_mm3: float
    flags: tuple[str, ...] = ()     # e.g. "low confidence", "touches scan border", "L6 candidate"


@dataclass
class SegmentResult:
    labels: LabelMap                # VerSe ids on the input grid
    vertebrae: list[VertebraResult]
    timings_s: dict[str, float] = field(default_factory=dict)   # per stage
    provider: str = ""              # onnxruntime provider that really ran
    warnings: list[str] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)   # {"id", "version", "sha256"} of each model run
    pipeline: str = ""              # the pipeline (or MR method) that ran, by its registry name
    anchor: str = ""                # what the level count rests on (MR: a key of registry.MRPipeline.level_trust)
