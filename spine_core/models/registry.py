"""Where models are and which ones may run: each ``<id>.onnx`` beside ``<id>.json``, verified before
use against the shipped table (``shipped.py``) and the site's registry (``site.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.models.card import ModelCard, card_digest, sha256_of
from spine_core.models.shipped import SHIPPED_SHA256
from spine_core.models.site import SiteModels

SHIPPED_FOLDER = Path(__file__).resolve().parents[2] / "resources" / "models"
REGISTER_HINT = "spineplan models register MODEL.onnx MODEL.json"


class ModelUnavailable(SpineError):
    pass


class TrustedModels:
    """The hashes a model file may have: the shipped table's, then the site registry's (read on first
    need, so a damaged site registry never stops the shipped models)."""

    def __init__(self, site: SiteModels | None = None) -> None:
        self.site = site or SiteModels()
        self._site_entries: dict[str, dict] | None = None

    def known(self, model_id: str) -> list[tuple[str, dict]]:
        found = [("shipped", SHIPPED_SHA256[model_id])] if model_id in SHIPPED_SHA256 else []
        if self._site_entries is None:
            self._site_entries = self.site.entries()
        if model_id in self._site_entries:
            found.append(("site", self._site_entries[model_id]))
        return found

    def source_of(self, folder: Path, model_id: str, onnx_sha: str, card_sha: str) -> str:
        """"shipped" or "site"; a model file or card that matches neither is refused, saying why."""
        shipped = SHIPPED_SHA256.get(model_id)
        if shipped and shipped["onnx"] == onnx_sha and shipped["card"] == card_sha:
            return "shipped"
        known = self.known(model_id)
        for source, hashes in known:
            if hashes["onnx"] == onnx_sha and hashes["card"] == card_sha:
                return source
        onnx, card = folder / f"{model_id}.onnx", folder / f"{model_id}.json"
        edited = [source for source, hashes in known if hashes["onnx"] == onnx_sha]
        if edited:
            raise ModelUnavailable(f"The card of model '{model_id}' ({card}) differs from the {edited[0]} one: it "
                                   "was edited. Restore it (reinstall SpinePlan), or register the model again "
                                   f"with `{REGISTER_HINT}`.")
        if not known:
            raise ModelUnavailable(f"Model '{model_id}' in {folder} is neither shipped with SpinePlan nor registered "
                                   f"at this site, so it is not run. Register it with `spineplan models register "
                                   f"{onnx} {card}`, then run with --models site.")
        sources = " or ".join(f"the {s} one ({h['onnx'][:12]}...)" for s, h in known)
        raise ModelUnavailable(f"Model '{model_id}' ({onnx}) failed its integrity check: its sha256 "
                               f"{onnx_sha[:12]}... is not that of {sources}; the file was altered or damaged. "
                               f"Reinstall SpinePlan, or register a retrained model with `{REGISTER_HINT}`.")


class ModelRegistry:
    """The models in ``folder``. ``trusted``: the hashes a model must match (TrustedModels); None checks
    only the card's own sha256 (tools and tests on their own exports)."""

    def __init__(self, folder, trusted: TrustedModels | None = None) -> None:
        self.folder = Path(folder)
        self.trusted = trusted
        self._verified: dict[str, str] = {}

    def cards(self) -> list[ModelCard]:
        return [ModelCard.load(p) for p in sorted(self.folder.glob("*.json")) if p.name != "registry.json"]

    def card(self, model_id: str) -> ModelCard:
        path = self.folder / f"{model_id}.json"
        if not path.exists():
            known = ", ".join(c.id for c in self.cards()) or "none"
            raise ModelUnavailable(f"Model '{model_id}' is not installed (installed: {known}). "
                                   "Reinstall SpinePlan or choose another pipeline.")
        return ModelCard.load(path)

    def verify(self, model_id: str) -> str:
        """Where the model's hashes come from ("shipped", "site", or "card" without ``trusted``); a
        missing, altered or unregistered model is refused."""
        if model_id in self._verified:
            return self._verified[model_id]
        card = self.card(model_id)
        path = self.folder / f"{model_id}.onnx"
        if not path.exists():
            raise ModelUnavailable(f"The file of model '{model_id}' is missing ({path}). Reinstall SpinePlan.")
        actual = sha256_of(path)
        if self.trusted is not None:
            source = self.trusted.source_of(self.folder, model_id, actual, card_digest(self.folder / f"{model_id}.json"))
        elif actual == card.sha256:
            source = "card"
        else:
            raise ModelUnavailable(f"Model '{model_id}' failed its integrity check (sha256 {actual[:12]}... "
                                   f"instead of {card.sha256[:12]}...): the file was altered or damaged. "
                                   "Reinstall SpinePlan.")
        self._verified[model_id] = source
        return source

    def onnx_path(self, model_id: str) -> Path:
        """The verified model file."""
        self.verify(model_id)
        return self.folder / f"{model_id}.onnx"


def shipped_registry(trusted: TrustedModels | None = None) -> ModelRegistry:
    return ModelRegistry(SHIPPED_FOLDER, trusted or TrustedModels())


@dataclass(frozen=True)
class ModelStatus:
    """One row of `spineplan models list`: a model and whether its files are what was shipped or
    registered."""
    model_id: str
    source: str          # "shipped" or "site"
    version: str
    task: str
    problem: str         # "" when verified


def _status(folder: Path, model_id: str, source: str, hashes: dict | None) -> ModelStatus:
    card_path, onnx = folder / f"{model_id}.json", folder / f"{model_id}.onnx"
    try:
        card = ModelCard.load(card_path)
    except SpineError as exc:
        return ModelStatus(model_id, source, "?", "?", str(exc))
    if not onnx.exists():
        problem = f"{onnx.name} is missing"
    elif hashes is None:
        problem = f"not registered (register it with `{REGISTER_HINT}`)"
    elif sha256_of(onnx) != hashes["onnx"]:
        problem = f"{onnx.name} was altered or damaged (sha256 differs from the {source} one)"
    elif card_digest(card_path) != hashes["card"]:
        problem = f"{card_path.name} was edited (differs from the {source} one)"
    else:
        problem = ""
    return ModelStatus(model_id, source, card.version, card.task, problem)


def model_statuses(site: SiteModels | None = None) -> list[ModelStatus]:
    """Every shipped and site model, each checked against its own table (files in either folder that
    no table lists are shown as not registered)."""
    site = site or SiteModels()
    rows = []
    for source, folder, table in (("shipped", SHIPPED_FOLDER, SHIPPED_SHA256), ("site", site.folder, site.entries())):
        found = {p.stem for p in folder.glob("*.onnx")} if folder.is_dir() else set()
        for model_id in sorted(set(table) | found):
            rows.append(_status(folder, model_id, source, table.get(model_id)))
    return rows
