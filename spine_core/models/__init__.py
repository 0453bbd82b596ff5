"""Model cards and the registry of shipped models (read without importing onnxruntime or torch)."""
from spine_core.models.card import ModelCard, sha256_of
from spine_core.models.registry import ModelRegistry

__all__ = ["ModelCard", "ModelRegistry", "sha256_of"]
