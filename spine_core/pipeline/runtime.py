"""onnxruntime sessions: the GPU where its libraries really load, the CPU otherwise, and say which."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from spine_core.errors import SpineError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")


class DeviceUnavailable(SpineError):
    pass


@dataclass(frozen=True)
class RuntimeInfo:
    provider: str        # what really runs, e.g. "CPUExecutionProvider"
    requested: str       # auto / cpu / gpu
    threads: int

    @property
    def on_gpu(self) -> bool:
        return self.provider != "CPUExecutionProvider"


def _ort():
    import onnxruntime as ort

    # The GPU wheel logs an error-level line whenever CUDA is absent; the fallback is expected.
    ort.set_default_logger_severity(4)   # fatal only: real failures still raise
    return ort


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def create_session(model_path, device: str = "auto", threads: int | None = None):
    """Returns (session, RuntimeInfo). ``device='gpu'`` refuses to fall back silently."""
    if device not in DEVICES:
        raise DeviceUnavailable(f"Unknown device '{device}'; choose one of {', '.join(DEVICES)}.")
    ort = _ort()
    options = ort.SessionOptions()
    threads = threads or default_threads()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "gpu") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    # get_available_providers() lists CUDA even where its libraries cannot load: ask the session.
    actual = session.get_providers()[0]
    if device == "gpu" and actual == "CPUExecutionProvider":
        raise DeviceUnavailable("A GPU was requested but CUDA could not be loaded (driver, CUDA 13 or "
                                "cuDNN 9 missing). Use --device auto or cpu, or ask IT to install them.")
    info = RuntimeInfo(provider=actual, requested=device, threads=threads)
    log.info("onnxruntime session for %s on %s (%d threads)", os.path.basename(str(model_path)),
             actual, threads)
    return session, info
