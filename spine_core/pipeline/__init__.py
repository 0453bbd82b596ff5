"""Inference: onnxruntime sessions for the shipped models, and the analysis pipelines.

``from spine_core.pipeline import segment, PIPELINES`` (loaded on first use, so that importing the
package, e.g. for ``preprocess`` in training, stays light).
"""


def __getattr__(name):
    if name in ("PIPELINES", "segment", "check_input", "scan_modality", "check_structure"):
        from spine_core.pipeline import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module 'spine_core.pipeline' has no attribute {name!r}")
