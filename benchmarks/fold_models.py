"""A cross-validation fold's freshly trained models as a ModelSet.

Only shipped or registered models run (spine_core.models.registry), so a fold's models are
registered, as a site would register its own, in a throwaway site folder of their own.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from spine_core.models.site import SITE_ENV, SiteModels
from spine_core.pipeline.models import ModelSet


def fold_model_set(folder, device: str = "cpu") -> ModelSet:
    """The models exported into ``folder`` (``<id>.onnx`` + ``<id>.json``); shipped ones fill the gaps."""
    cards = sorted(Path(folder).glob("*.json"))
    if not cards:
        raise FileNotFoundError(f"no exported models in {folder}")
    site = Path(tempfile.mkdtemp(prefix="spineplan-fold-"))
    os.environ[SITE_ENV] = str(site)
    for card in cards:
        SiteModels(site).register(card.with_suffix(".onnx"), card)
    return ModelSet(site, device)
