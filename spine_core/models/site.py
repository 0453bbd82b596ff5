"""Models registered at this site (e.g. retrained on the site's own scans): copied into the site folder
(``SPINEPLAN_SITE_MODELS``, else the user's data folder) beside ``registry.json``, which records the
sha256 of each copied ONNX file and of its card's content. A model runs only when its files match the
shipped table (``shipped.py``) or this registry: editing a card beside a changed model does not help.

The registry also records the site's *active* models: the registered ids that an analysis without
``--models`` runs in place of the shipped model of the same id, with the earlier active sets
(``spineplan models use`` / ``rollback``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.models.card import InvalidModelCard, ModelCard, card_digest, sha256_of

SITE_ENV = "SPINEPLAN_SITE_MODELS"
REGISTRY_FILE = "registry.json"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HISTORY_KEPT = 50


def site_folder() -> Path:
    named = os.environ.get(SITE_ENV, "").strip()
    if named:
        return Path(named).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("spineplan")).resolve() / "models"


class SiteModels:
    """The site folder's registry: model id -> {"onnx": sha256, "card": sha256, "version", "source",
    "registered"}."""

    def __init__(self, folder=None) -> None:
        self.folder = Path(folder) if folder is not None else site_folder()
        self.path = self.folder / REGISTRY_FILE

    def _document(self) -> dict:
        """registry.json as read ({} when there is none yet); an unreadable one is an error the site must fix."""
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            models = doc["models"]
            if not isinstance(models, dict) or not all(isinstance(e, dict) and {"onnx", "card"} <= set(e)
                                                       for e in models.values()):
                raise ValueError("no table of models")
            sets = [doc.get("active", []), *doc.get("history", [])]
            if not all(isinstance(a, list) and all(isinstance(i, str) for i in a) for a in sets):
                raise ValueError("the active models are not a list of ids")
            return doc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpineError(f"The site model registry '{self.path}' is unreadable ({exc}); restore it from a "
                             "backup or register the site's models again.") from exc

    def _write(self, doc: dict) -> None:

        doc = {"schema_version": 1, "models": doc.get("models", {}), "active": doc.get("active", []),
               "history": doc.get("history", [])[-HISTORY_KEPT:]}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise SpineError(f"Could not write the site model registry '{self.path}' ({exc.strerror or exc}); "
                             f"choose a writable site folder with {SITE_ENV}.") from exc

    def entries(self) -> dict[str, dict]:
        return self._document().get("models", {})

    def active(self) -> list[str]:
        """The registered ids in use by default (each in place of the shipped model of that id)."""
        return list(self._document().get("active", []))

    def history(self) -> list[list[str]]:
        """The earlier active sets, oldest first."""
        return [list(a) for a in self._document().get("history", [])]

    def _set_active(self, doc: dict, ids: list[str]) -> tuple[list[str], list[str]]:
        before = list(doc.get("active", []))
        after = sorted(set(ids))
        if after != before:
            doc["history"] = [*doc.get("history", []), before]
            doc["active"] = after
            self._write(doc)
        return before, after

    def use(self, model_id: str) -> tuple[list[str], list[str]]:
        """Activate the registered site model ``model_id``; returns the active ids before and after."""
        doc = self._document()
        models = doc.get("models", {})
        if model_id not in models:
            known = ", ".join(sorted(models)) or "none"
            raise SpineError(f"'{model_id}' is not a registered site model (registered: {known}); register it "
                             "first with `spineplan models register MODEL.onnx MODEL.json`.")
        return self._set_active(doc, [*doc.get("active", []), model_id])

    def use_shipped(self, model_id: str) -> tuple[list[str], list[str]]:
        """Give ``model_id``'s role back to the shipped model."""
        doc = self._document()
        return self._set_active(doc, [i for i in doc.get("active", []) if i != model_id])

    def rollback(self) -> tuple[list[str], list[str]]:
        """Restore the previous active set; returns the active ids before and after."""
        doc = self._document()
        history = list(doc.get("history", []))
        if not history:
            raise SpineError("There is no earlier set of active models to roll back to (`spineplan models list` "
                             "shows what is in use).")
        before, doc["active"], doc["history"] = list(doc.get("active", [])), history[-1], history[:-1]
        self._write(doc)
        return before, list(doc["active"])

    def register(self, onnx, card, model_id: str | None = None) -> tuple[ModelCard, bool]:
        """Copy ``onnx`` and its ``card`` in as ``<id>.onnx`` / ``<id>.json`` (id: the card's, or
        ``model_id``) and record their hashes; returns the card and whether an entry was replaced."""
        onnx, card_path = Path(onnx), Path(card)
        if not onnx.is_file():
            raise SpineError(f"'{onnx}' is not a file; name the model's .onnx file.")
        model_card = ModelCard.load(card_path)
        digest = sha256_of(onnx)
        if model_card.sha256 != digest:
            raise InvalidModelCard(f"The card '{card_path.name}' describes another file (sha256 "
                                   f"{model_card.sha256[:12]}..., '{onnx.name}' has {digest[:12]}...); register "
                                   "the ONNX file with the card exported beside it.")
        model_id = model_id or model_card.id
        if not _ID.fullmatch(model_id):
            raise SpineError(f"'{model_id}' is not a usable model id (letters, digits, '.', '_', '-').")
        try:
            return self._copy_in(onnx, card_path, replace(model_card, id=model_id), digest)
        except OSError as exc:
            raise SpineError(f"Could not write the site models folder '{self.folder}' ({exc.strerror or exc}); "
                             f"choose a writable one with {SITE_ENV}.") from exc

    def _copy_in(self, onnx: Path, card_path: Path, card: ModelCard, digest: str) -> tuple[ModelCard, bool]:
        """The files are copied as they are (a card under another id is rewritten with that id), so the
        exported originals match the registry too."""

        self.folder.mkdir(parents=True, exist_ok=True)
        for source, target in ((onnx, self.folder / f"{card.id}.onnx"), (card_path, self.folder / f"{card.id}.json")):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        if sha256_of(self.folder / f"{card.id}.onnx") != digest:
            raise SpineError(f"'{onnx}' changed while it was copied; register it again.")
        if ModelCard.load(self.folder / f"{card.id}.json").id != card.id:
            card.save(self.folder / f"{card.id}.json")
        doc = self._document()
        entries = doc.setdefault("models", {})
        replaced = card.id in entries
        entries[card.id] = {"onnx": digest, "card": card_digest(self.folder / f"{card.id}.json"),
                            "version": card.version, "source": str(onnx.resolve()),
                            "registered": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._write(doc)
        return card, replaced
