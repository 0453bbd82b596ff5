"""A cross-validation fold's freshly trained models as a ModelSet.

Only shipped or registered models run (spine_core.models.registry), so a fold's models are
registered, as a site would register its own, in a throwaway site folder of their own. Shipped models
fill the gaps, except those a CT fold trains (training/loco.py): the shipped ones saw the held-out case,
so a fold without, say, its own thick-slice detector runs as if none were installed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.pipeline.api import DETECTOR_ID, LABELER_ID, LOCALIZER_ID, THICK_DETECTOR_ID, VERTEBRA_SEG_ID
from spine_core.pipeline.models import ModelSet

# the ids training/loco.py trains for each held-out CT case
FOLD_TRAINED = (LOCALIZER_ID, DETECTOR_ID, VERTEBRA_SEG_ID, LABELER_ID, THICK_DETECTOR_ID)


def fold_model_set(folder, device: str = "cpu") -> ModelSet:
    """The models exported into ``folder`` (``<id>.onnx`` + ``<id>.json``); shipped ones fill the gaps
    but for the ids a CT fold trains (``FOLD_TRAINED``), where the folder holds some of them."""
    cards = sorted(Path(folder).glob("*.json"))
    if not cards:
        raise FileNotFoundError(f"no exported models in {folder}")
    site = Path(tempfile.mkdtemp(prefix="spineplan-fold-"))
    os.environ[SITE_ENV] = str(site)
    for card in cards:
        SiteModels(site).register(card.with_suffix(".onnx"), card)
    own = {card.stem for card in cards}
    withheld = set(FOLD_TRAINED) - own if own & set(FOLD_TRAINED) else set()
    return ModelSet(site, device, withheld=frozenset(withheld))
