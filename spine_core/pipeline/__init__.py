"""Inference: onnxruntime sessions for the shipped models, and the analysis pipelines."""
