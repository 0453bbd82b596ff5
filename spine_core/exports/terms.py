"""What each SpinePlan label is, in DICOM terms: SNOMED CT codes for the segment / ROI type.

Vertebrae C1-L5 and the sacrum, and the discs C2/C3-L5/S1, have their own SCT codes (DICOM CID 7603
"Vertebra", CID 7604 "Intervertebral Disc"), read from pydicom's copy of the DICOM code dictionary so
no code is typed by hand. Labels without a code of their own (T13, L6, their discs) fall back to the
SCT code of what they are ("Vertebra") or belong to ("Spine", also for an unknown id); the segment
label names them exactly.
"""
from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from spine_core.labels import CRANIOCAUDAL, DISC_OFFSET, SACRUM, VERTEBRAE, is_disc, label_name

# CID 7150 Segmentation Property Category: every SpinePlan label is an anatomical structure.
CATEGORY: Code = codes.SCT.AnatomicalStructure


def label_code(label_id: int) -> Code:
    """The SCT code of a vertebra or disc label (DICOM Segmented Property Type / RT ROI code)."""
    label_id = int(label_id)
    if label_id == SACRUM:
        return codes.SCT.Sacrum
    name = label_name(label_id)
    if is_disc(label_id):
        return _sct(name.replace("/", "") + "Disc", codes.SCT.Spine)
    if label_id in VERTEBRAE:
        return _sct(f"{name}Vertebra", codes.SCT.Vertebra)
    return codes.SCT.Spine


def _sct(keyword: str, fallback: Code) -> Code:
    try:
        return getattr(codes.SCT, keyword)
    except AttributeError:
        return fallback


def craniocaudal(ids) -> list[int]:
    """Label ids in the order a surgeon reads them: vertebrae from the head down, then the discs."""
    order = {vid: n for n, vid in enumerate(CRANIOCAUDAL)}

    def key(label_id: int):
        base = label_id - DISC_OFFSET if is_disc(label_id) else label_id
        return (is_disc(label_id), order.get(base, len(order)), label_id)

    return sorted((int(i) for i in ids if int(i) != 0), key=key)
