"""A stand-in for the analysis pipeline (``SPINEPLAN_PIPELINE=tests.ui.fake_pipeline:segment``).

Bright boxes (>= 500 HU) are vertebrae, numbered T11, T12, L1... from the top; T12 gets a low
confidence. ``SPINEPLAN_FAKE_DELAY`` (seconds per stage) slows it down; a scan without bright bone
is refused like the real pipeline refuses a scan without a spine.
"""
import os
import time

import numpy as np

from spine_core.errors import SpineError
from spine_core.labels import CRANIOCAUDAL, label_name
from spine_core.pipeline.api import SegmentResult, VertebraResult
from spine_core.volume import LabelMap

FIRST = 18                  # T11
CONFIDENCE = {19: 0.35}     # T12 is "unsure"
STAGES = ("Finding the spine", "Detecting vertebrae", "Segmenting vertebrae", "Numbering")


def label_boxes(volume) -> LabelMap:
    from scipy import ndimage

    pieces, count = ndimage.label(volume.array >= 500)
    if count == 0:
        raise SpineError("No spine was found in this scan. Check that it is a CT of the spine.")
    heights = [volume.index_to_lps(np.argwhere(pieces == n).mean(axis=0))[2] for n in range(1, count + 1)]
    order = np.argsort(heights)[::-1]                          # superior first
    levels = [v for v in CRANIOCAUDAL if v not in (25, 28)]   # no L6 / T13 variants here
    start = levels.index(FIRST)
    lut = np.zeros(count + 1, np.int16)
    for rank, piece in enumerate(order):
        lut[piece + 1] = levels[start + rank]
    return LabelMap.on_grid(volume, lut[pieces])


def segment(volume, options, progress):
    delay = float(os.environ.get("SPINEPLAN_FAKE_DELAY", "0"))
    for n, stage in enumerate(STAGES):
        progress.update(n / len(STAGES), stage)
        steps = max(1, int(delay / 0.01))
        for i in range(steps if delay else 0):
            time.sleep(0.01)
            progress.update((n + i / steps) / len(STAGES), stage)
    labels = label_boxes(volume)
    vertebrae = []
    for label_id in labels.ids():
        ijk = np.argwhere(labels.array == label_id)
        vertebrae.append(VertebraResult(label_id, label_name(label_id), labels.index_to_lps(ijk.mean(axis=0)),
                                        CONFIDENCE.get(label_id, 0.93), float(len(ijk))))
    progress.update(1.0, "Analysis done")
    return SegmentResult(labels, vertebrae, {"total": 0.0}, f"fake ({options.device})",
                         ["test pipeline: not a real analysis"])
