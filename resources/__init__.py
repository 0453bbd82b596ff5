"""Models (*.onnx + model card *.json), icons, styles. No patient data."""
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
MODELS = RESOURCES / "models"
