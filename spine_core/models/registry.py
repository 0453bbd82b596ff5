"""The shipped models: each ``<id>.onnx`` beside ``<id>.json``; sha256 verified before use."""
from __future__ import annotations

from pathlib import Path

from spine_core.errors import SpineError
from spine_core.models.card import ModelCard, sha256_of


class ModelUnavailable(SpineError):
    pass


class ModelRegistry:
    def __init__(self, folder) -> None:
        self.folder = Path(folder)
        self._verified: set[str] = set()

    def cards(self) -> list[ModelCard]:
        return [ModelCard.load(p) for p in sorted(self.folder.glob("*.json"))]

    def card(self, model_id: str) -> ModelCard:
        path = self.folder / f"{model_id}.json"
        if not path.exists():
            known = ", ".join(c.id for c in self.cards()) or "none"
            raise ModelUnavailable(f"Model '{model_id}' is not installed (installed: {known}). "
                                   "Reinstall SpinePlan or choose another pipeline.")
        return ModelCard.load(path)

    def onnx_path(self, model_id: str) -> Path:
        """The verified model file; a missing or altered file is refused."""
        card = self.card(model_id)
        path = self.folder / f"{model_id}.onnx"
        if not path.exists():
            raise ModelUnavailable(f"The file of model '{model_id}' is missing ({path}). Reinstall SpinePlan.")
        if model_id not in self._verified:
            actual = sha256_of(path)
            if actual != card.sha256:
                raise ModelUnavailable(f"Model '{model_id}' failed its integrity check (sha256 {actual[:12]}... "
                                       f"instead of {card.sha256[:12]}...): the file was altered or damaged. "
                                       "Reinstall SpinePlan.")
            self._verified.add(model_id)
        return path


def shipped_registry() -> ModelRegistry:
    from pathlib import Path as _P

    return ModelRegistry(_P(__file__).resolve().parents[2] / "resources" / "models")
