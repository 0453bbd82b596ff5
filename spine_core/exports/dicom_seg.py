"""The vertebra labels as a DICOM Segmentation (highdicom) referencing the scan's own images.

Segmentation type BINARY, one segment per vertebra / disc. The LABELMAP type (DICOM Supplement 243,
2024) would store the label map as it is, but few readers know it yet (3D Slicer's dcmqi, most PACS and
navigation systems, and dciodvfy do not), while BINARY SEG has been read since 2011 by Slicer, OHIF,
MITK and PACS viewers alike. Vertebrae never overlap, so nothing is lost; frames are bit-packed and
empty frames left out, so the file stays small.

Each segment carries its clinical name (label and tracking id), the SCT codes of what it is (terms.py),
its SpinePlan colour as CIELab, and the algorithm (SpinePlan and its version). Patient and study
attributes are copied from the source images by highdicom: they live inside the object only.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError
from spine_core.exports.source import SourceSeries
from spine_core.exports.terms import CATEGORY, craniocaudal, label_code
from spine_core.labels import label_color, label_name
from spine_core.plan import app_version
from spine_core.progress import NullProgress, Progress

SERIES_NUMBER = 901
SERIES_DESCRIPTION = "SpinePlan vertebrae (SEG)"


@contextmanager
def _quiet_highdicom():
    """highdicom logs every attribute it copies or skips (~600 lines per object) at DEBUG/INFO: keep
    the session log readable while it builds."""
    logger = logging.getLogger("highdicom")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _algorithm():
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(name="SpinePlan", family=codes.cid7162.ArtificialIntelligence,
                                              version=app_version())


def segment_descriptions(ids, names: dict[int, str] | None = None) -> list:
    """One highdicom SegmentDescription per label id, numbered 1..N in ``ids`` order."""
    import highdicom as hd

    algorithm = _algorithm()
    names = names or {}
    descriptions = []
    for number, label_id in enumerate(ids, start=1):
        name = names.get(label_id) or label_name(label_id)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name[:64], segmented_property_category=CATEGORY,
            segmented_property_type=label_code(label_id), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=name[:64],
            display_color=hd.color.CIELabColor.from_rgb(*label_color(label_id))))
    return descriptions


def build_segmentation(frames: np.ndarray, source: SourceSeries, names: dict[int, str] | None = None,
                       progress: Progress | None = None):
    """A highdicom Segmentation of ``frames`` (label ids, (slice, row, column) on ``source``'s slices)."""
    import highdicom as hd

    progress = progress or NullProgress()
    ids = craniocaudal(np.unique(frames))
    if not ids:
        raise SpineError("The label map holds no vertebrae; there is nothing to export.")
    lut = np.zeros(int(frames.max()) + 1, dtype=np.uint8 if len(ids) < 256 else np.uint16)
    lut[ids] = np.arange(1, len(ids) + 1)
    progress.update(0.2, f"Building the DICOM segmentation ({len(ids)} segments)")
    with _quiet_highdicom():
        seg = hd.seg.Segmentation(
            source_images=list(source.headers), pixel_array=lut[frames],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segment_descriptions(ids, names), series_instance_uid=hd.UID(),
            series_number=SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1, manufacturer="SpinePlan",
            manufacturer_model_name="SpinePlan", software_versions=app_version(), device_serial_number="1",
            content_label="VERTEBRAE", content_description="Vertebrae and discs labelled by SpinePlan")
    seg.SeriesDescription = SERIES_DESCRIPTION
    progress.update(0.9, "DICOM segmentation built")
    return seg


def write_dicom_seg(frames: np.ndarray, source: SourceSeries, path, names: dict[int, str] | None = None,
                    progress: Progress | None = None):
    """Write the segmentation to ``path`` atomically; returns (path, number of segments)."""

    seg = build_segmentation(frames, source, names, progress)
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path, len(seg.SegmentSequence)
