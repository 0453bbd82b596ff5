"""A model card: the JSON beside every shipped ``.onnx`` (after MONAI bundles' metadata.json)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spine_core.errors import SpineError

CARD_SCHEMA_VERSION = 1
REQUIRED = ("id", "version", "sha256", "task", "modality", "input_spacing_mm", "patch_size",
            "intensity_window", "label_ids", "training", "metrics", "license")


class InvalidModelCard(SpineError):
    pass


@dataclass(frozen=True)
class ModelCard:
    id: str
    version: str
    sha256: str
    task: str                      # e.g. "spine-localization", "vertebra-segmentation"
    modality: str                  # "CT" or "MR"
    input_spacing_mm: list[float]
    patch_size: list[int]
    intensity_window: list[float]  # [low, high]: clip then scale to [0, 1]
    label_ids: list[int]           # output channel -> label id (0 = background)
    training: dict                 # data, steps, wall time, hardware, exact command
    metrics: dict                  # validation metrics, parity error
    license: str
    architecture: str = ""
    parameters: int = 0
    inputs: list[str] = field(default_factory=lambda: ["image"])
    outputs: list[str] = field(default_factory=lambda: ["logits"])
    notes: str = ""
    schema_version: int = CARD_SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "ModelCard":
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise InvalidModelCard(f"Model card {source} lacks {', '.join(missing)}; reinstall SpinePlan.")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path) -> "ModelCard":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidModelCard(f"Model card '{path.name}' is unreadable ({exc}); reinstall SpinePlan.") from exc
        return cls.from_dict(data, path.name)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> Path:
        from spine_core.atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return Path(path)


def card_digest(path) -> str:
    """sha256 of a card's content (its JSON data with sorted keys), whatever its whitespace or line
    endings: what the shipped table and the site registry pin beside the ONNX file's own sha256."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidModelCard(f"Model card '{Path(path).name}' is unreadable ({exc}).") from exc
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
