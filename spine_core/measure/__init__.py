"""Measurements a spine surgeon plans with, from a label map (and its scan for bone density):
per vertebra (body heights, endplates, width, depth, wedging, Genant grade, cancellous HU, volume),
per pedicle (isthmus width and height, axis, angles, length: pedicles.py) and alignment (segmental
angles, lordosis, kyphosis, coronal Cobb). Qt-free.

``measure(labels, image)`` -> a JSON-ready dict; ``write_measurements(folder, doc)`` writes
measurements.json and measurements.csv atomically.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.measure.alignment import alignment
from spine_core.measure.pedicles import measure_pedicles
from spine_core.measure.vertebra import LOW_DENSITY_HU, measure_vertebrae
from spine_core.review import RESOLVED_VOXELS, craniocaudal_voxel_mm, genant_grade, low_bodies, resolved_loss
from spine_core.volume import LabelMap

__all__ = ["measure", "write_measurements", "CSV_COLUMNS"]

CSV_COLUMNS = ("name", "label_id", "volume_ml", "anterior_height_mm", "middle_height_mm", "posterior_height_mm",
               "body_width_mm", "body_depth_mm", "endplate_angle_deg", "wedge_ratio", "height_loss",
               "genant_grade", "core_hu", "flags", "pedicle_width_left_mm", "pedicle_height_left_mm",
               "pedicle_width_right_mm", "pedicle_height_right_mm")


def measure(labels: LabelMap, image=None, pedicles: bool = True, vertebrae=None, found=None) -> dict:
    """``vertebrae`` / ``found``: the vertebrae and pedicles where the caller has measured them already
    (a screw plan needs them too)."""
    vertebrae = measure_vertebrae(labels, image) if vertebrae is None else vertebrae
    if found is None:
        found = measure_pedicles(labels, vertebrae) if pedicles else []
    # crush: a body lower all over than its neighbours' posterior heights (Genant's third pattern); a
    # label the scan shows not to end at its body's endplates is no neighbour to compare with (_ends_at_endplates)
    posterior = {m.label_id: m.posterior_height_mm for m in vertebrae
                 if m.posterior_height_mm and m.label_at_endplates is not False}
    # a loss is graded only where it exceeds what the grid can fake along the spine (review.resolved_loss)
    reach = {m.label_id: craniocaudal_voxel_mm(labels.affine, m.frame.get("w", (0.0, 0.0, 1.0))) for m in vertebrae}
    crushed = low_bodies(posterior)
    crushed_resolved = low_bodies(posterior, voxel_mm=float(np.median(list(reach.values()) or [0.0])))
    rows = []
    for m in vertebrae:
        wedge = m.height_loss or 0.0
        loss = max(wedge, crushed.get(m.label_id, 0.0))
        if m.label_at_endplates is False:
            m.height_loss = round(loss, 3)
            m.genant_grade = None
        elif m.body_found and m.label_id > 2 and m.name != "sacrum":
            resolved_wedge = wedge if resolved_loss(wedge, m.posterior_height_mm or 0.0, reach[m.label_id]) else 0.0
            m.height_loss = round(loss, 3)
            m.genant_grade = genant_grade(max(resolved_wedge, crushed_resolved.get(m.label_id, 0.0)))
            if genant_grade(loss) and not m.genant_grade:
                m.notes.append(f"a {loss:.0%} height loss was not graded: it is under {RESOLVED_VOXELS:g} voxels "
                               f"({RESOLVED_VOXELS * reach[m.label_id]:.1f} mm) along the spine, which this "
                               "scan's slices cannot tell from a normal body")
        flags = []
        if m.genant_grade:
            flags.append(f"suspected fracture (Genant {m.genant_grade})")
        if m.label_at_endplates is False:
            flags.append("heights not graded: the label does not end at the body's endplates; check the segmentation")
        if m.core_hu is not None and m.core_hu < LOW_DENSITY_HU and m.name[0] in "TL":
            flags.append(f"low bone density ({m.core_hu:.0f} HU < {LOW_DENSITY_HU:.0f})")
        row = m.as_dict()
        row["flags"] = flags
        for p in found:
            if p.label_id == m.label_id:
                row[f"pedicle_width_{p.side}_mm"], row[f"pedicle_height_{p.side}_mm"] = p.width_mm, p.height_mm
        rows.append(row)
    return {"coordinate_system": "LPS", "units": {"length": "mm", "angle": "degrees", "volume": "ml", "density": "HU"},
            "vertebrae": rows, "pedicles": [p.as_dict() for p in found], "alignment": alignment(vertebrae),
            "method": {"frame": "w along the centroid chain, v posterior, u left",
                       "heights": "superior-inferior extent of the body in the mid-sagittal strip "
                                  "(+-3 mm) at 15 %, 50 % and 85 % of its depth",
                       "endplates": "planes fitted to the body's top and bottom surface (inner 70 %)",
                       "genant": "height loss = worst of wedge (anterior / posterior), biconcave (middle / "
                                 "posterior) and crush (posterior / neighbours'); grade 1 >= 20 %, 2 >= 25 %, "
                                 "3 >= 40 %; not graded where the scan shows an endplate (a cortical peak "
                                 ">= 100 HU over the cancellous bone on the body's middle column) beyond the "
                                 "label's end or two inside it",
                       "core_hu": "mean HU of the body eroded 3 mm from its surface",
                       "pedicles": "isthmus: the narrowest cross-section across the pedicle axis between the body's "
                                   "posterior wall and the lamina; width (mediolateral) and height (craniocaudal) "
                                   "there; axis through its deepest point, centred in the pedicle; medial angle "
                                   "to the sagittal plane, cranio-caudal angle to the superior endplate; length "
                                   "from the posterior to the anterior cortex along the axis"}}


def write_measurements(folder, doc: dict) -> tuple[Path, Path]:

    folder = Path(folder)
    with atomic_path(folder / "measurements.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in doc["vertebrae"]:
        writer.writerow(["; ".join(row[c]) if c == "flags" else ("" if row.get(c) is None else row[c])
                         for c in CSV_COLUMNS])
    with atomic_path(folder / "measurements.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return folder / "measurements.json", folder / "measurements.csv"
