"""Test pipelines for batch runs (``SPINEPLAN_PIPELINE=tests.e2e.crash_pipeline:segment``): the fake
pipeline of the UI tests, except that a scan whose source path contains ``SPINEPLAN_CRASH_ON`` kills
its worker process outright (as a crash in a native library or the out-of-memory killer would) and
one containing ``SPINEPLAN_RAISE_ON`` raises an unexpected error."""
import os

from tests.ui import fake_pipeline


def segment(volume, options, progress):
    source = volume.metadata.source or ""
    crash, fail = os.environ.get("SPINEPLAN_CRASH_ON"), os.environ.get("SPINEPLAN_RAISE_ON")
    if crash and crash in source:
        os._exit(9)
    if fail and fail in source:
        raise RuntimeError("simulated bug")
    return fake_pipeline.segment(volume, options, progress)
