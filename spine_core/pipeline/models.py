"""The models a pipeline runs: each a verified ONNX session plus its card, loaded once on first use.

Anything with a ``card`` and ``run(feed) -> list of arrays`` serves as a model, so tests can hand the
pipeline oracle models without ONNX files.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from spine_core.errors import SpineError
from spine_core.models.card import ModelCard
from spine_core.models.registry import ModelRegistry, ModelUnavailable, TrustedModels, shipped_registry

log = logging.getLogger(__name__)

__all__ = ["LoadedModel", "Model", "ModelSet", "ModelUnavailable"]


class Model(Protocol):
    card: ModelCard

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class LoadedModel:
    """An onnxruntime session with its card; inputs are fed by the card's input names."""

    def __init__(self, card: ModelCard, session, provider: str) -> None:
        self.card, self.session, self.provider = card, session, provider
        self.input_names = [i.name for i in session.get_inputs()]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise SpineError(f"Model '{self.card.id}' needs inputs {', '.join(missing)} that this version "
                             "of SpinePlan does not provide; reinstall SpinePlan.")
        return self.session.run(None, {n: np.ascontiguousarray(feed[n], np.float32) for n in self.input_names})


class ModelSet:
    """The models of one run. ``folder`` None (no ``--models``): the shipped resources/models, each model
    the site made active (``spineplan models use``) taken from the site folder instead. Every model must
    match the shipped table or the site's registry (spine_core.models.registry.TrustedModels); the site
    folder (``--models site``) holds the site's registered models, the shipped ones fill its gaps.
    ``withheld``: ids this set must run as if not installed (a cross-validation fold's own networks
    stand in for shipped ones that saw its held-out case; where the fold has none, there is none)."""

    def __init__(self, folder: Path | None = None, device: str = "auto", threads: int | None = None,
                 preset: dict[str, Model] | None = None, withheld: frozenset[str] = frozenset()) -> None:
        trusted = TrustedModels()
        self.registry = ModelRegistry(folder, trusted) if folder is not None else shipped_registry(trusted)
        self.fallback = None
        if folder is not None and Path(folder).resolve() == trusted.site.folder.resolve():
            self.fallback = shipped_registry(trusted)
        # the site's active models replace the shipped ones only by default; read on first need
        self._site = ModelRegistry(trusted.site.folder, trusted) if folder is None else None
        self._active: set[str] | None = None if folder is None else set()
        self.device, self.threads = device, threads
        self._loaded: dict[str, Model] = dict(preset or {})
        self.providers: dict[str, str] = {}
        self.withheld = frozenset(withheld)

    def active(self) -> set[str]:
        """The ids this set takes from the site folder in place of the shipped model (default set only)."""
        if self._active is None:
            self._active = set(self._site.trusted.site.active())
        return self._active

    def _registry_of(self, model_id: str) -> ModelRegistry | None:
        if model_id in self.withheld:
            return None
        if model_id in self.active():
            registries = (self._site,)          # an active site model is never silently swapped for the shipped one
        else:
            registries = (self.registry, self.fallback)
        for registry in registries:
            if registry is not None and (registry.folder / f"{model_id}.json").exists() and \
                    (registry.folder / f"{model_id}.onnx").exists():
                return registry
        return None

    def has(self, model_id: str) -> bool:
        return model_id in self._loaded or self._registry_of(model_id) is not None

    def require(self, *model_ids: str) -> None:
        """Fail before any work when a model of the pipeline is missing, altered or not registered: every
        model's sha256 is checked here, so no pipeline runs half way."""
        for model_id in model_ids:
            if model_id in self._loaded:
                continue
            registry = self._registry_of(model_id)
            if registry is None and model_id in self.active():
                raise ModelUnavailable(f"Model '{model_id}' is active at this site but its files are missing from "
                                       f"{self._site.folder}. Register it again, or return to the shipped model "
                                       f"with `spineplan models use shipped:{model_id}`.")
            if registry is None:
                raise ModelUnavailable(f"Model '{model_id}' is not installed in {self.registry.folder}, so "
                                       "this pipeline cannot run. Reinstall SpinePlan, wait for the model "
                                       "release, or choose another pipeline with --pipeline.")
            registry.verify(model_id)

    def get(self, model_id: str) -> Model:
        if model_id not in self._loaded:
            from spine_core.pipeline.runtime import create_session

            self.require(model_id)
            registry = self._registry_of(model_id)
            card = registry.card(model_id)
            path = registry.onnx_path(model_id)       # verified in require (once per ModelSet)
            session, info = create_session(path, self.device, self.threads)
            self._loaded[model_id] = LoadedModel(card, session, info.provider)
            self.providers[model_id] = info.provider
        return self._loaded[model_id]

    def records(self, model_ids) -> list[dict]:
        """id, version and sha256 (of the ONNX file, verified) of each loaded model in ``model_ids``: what a
        result records of the models that made it."""
        cards = [getattr(self._loaded.get(m), "card", None) for m in model_ids]
        return [{"id": c.id, "version": c.version, "sha256": c.sha256} for c in cards if c is not None]

    @property
    def provider(self) -> str:
        """What really ran, e.g. 'CPUExecutionProvider' (several joined if models differ)."""
        return ", ".join(sorted(set(self.providers.values()))) or "none"
