"""Alignment from the endplate planes (Cobb's method): segmental angles, lumbar lordosis (L1-S1),
thoracic kyphosis (T4-T12), and the largest coronal Cobb angle with its end vertebrae, each saying
which vertebrae and planes it used.

Sagittal angle of an endplate: the tilt of its normal in the patient's sagittal plane,
atan2(posterior, superior); coronal: atan2(left, superior). Lordosis is positive, kyphosis is
positive in its own measure; a coronal curve is reported by size with the side it is convex to.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spine_core.labels import CRANIOCAUDAL, L6, NAME_TO_ID, SACRUM, T13
from spine_core.measure.vertebra import VertebraMeasures

MIN_COBB_DEG = 10.0        # below this a coronal curve is not called scoliosis


@dataclass
class Angle:
    name: str
    degrees: float
    upper: str                 # vertebra whose plane is used above
    upper_plane: str           # "superior endplate" / "inferior endplate"
    lower: str
    lower_plane: str
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def sagittal(normal) -> float:
    n = np.asarray(normal, float)
    return float(np.degrees(np.arctan2(n[1], n[2])))


def coronal(normal) -> float:
    n = np.asarray(normal, float)
    return float(np.degrees(np.arctan2(n[0], n[2])))


def _angle(name: str, upper: VertebraMeasures, upper_plane: str, lower: VertebraMeasures, lower_plane: str,
           fn=sagittal, sign: float = 1.0) -> Angle | None:
    a, b = getattr(upper, upper_plane), getattr(lower, lower_plane)
    if a is None or b is None:
        return None
    degrees = sign * (fn(a.normal) - fn(b.normal))
    return Angle(name, round(degrees, 1), upper.name, upper_plane.replace("_", " "), lower.name,
                 lower_plane.replace("_", " "))


def alignment(vertebrae: list[VertebraMeasures]) -> dict:
    """{"segmental": [...], "lumbar_lordosis": ..., "thoracic_kyphosis": ..., "coronal_cobb": ...}."""
    # a label the scan shows not to end at its body's endplates has the label's planes, not the bone's
    usable = [m for m in vertebrae if m.body_found and m.label_at_endplates is not False]
    by_id = {m.label_id: m for m in usable}
    ordered = [m for m in usable if m.label_id != SACRUM]
    out: dict = {"segmental": []}
    for upper, lower in zip(ordered, ordered[1:]):
        if not _neighbours(upper.label_id, lower.label_id):
            continue            # a level between them unmeasured or missing: no segment
        angle = _angle(f"{upper.name}-{lower.name}", upper, "superior_endplate", lower, "inferior_endplate")
        if angle:
            angle.note = "positive: lordotic"
            out["segmental"].append(angle.as_dict())
    l1, s1 = by_id.get(NAME_TO_ID["L1"]), by_id.get(SACRUM)
    lordosis = _angle("lumbar lordosis L1-S1", l1, "superior_endplate", s1, "superior_endplate") \
        if l1 and s1 else None
    out["lumbar_lordosis"] = lordosis.as_dict() if lordosis else None
    t4, t12 = by_id.get(NAME_TO_ID["T4"]), by_id.get(NAME_TO_ID["T12"])
    kyphosis = _angle("thoracic kyphosis T4-T12", t4, "superior_endplate", t12, "inferior_endplate", sign=-1.0) \
        if t4 and t12 else None
    out["thoracic_kyphosis"] = kyphosis.as_dict() if kyphosis else None
    out["coronal_cobb"] = _coronal_cobb([m for m in ordered if m.label_id > 2])
    return out


def _neighbours(upper: int, lower: int) -> bool:
    """Adjacent levels (L6 / T13, rare variants, count only where present)."""
    between = CRANIOCAUDAL[CRANIOCAUDAL.index(upper) + 1:CRANIOCAUDAL.index(lower)]
    return not [i for i in between if i not in (L6, T13)]


def _coronal_cobb(ordered: list[VertebraMeasures]) -> dict | None:
    """The largest coronal angle between an upper vertebra's superior and a lower vertebra's inferior
    endplate: the end vertebrae are the most tilted ones, found automatically."""
    if len(ordered) < 3:
        return None
    best = None
    for i, upper in enumerate(ordered):
        if upper.superior_endplate is None:
            continue
        for lower in ordered[i + 1:]:
            if lower.inferior_endplate is None:
                continue
            degrees = coronal(upper.superior_endplate.normal) - coronal(lower.inferior_endplate.normal)
            if best is None or abs(degrees) > abs(best[0]):
                best = (degrees, upper, lower)
    if best is None:
        return None
    degrees, upper, lower = best
    side = "right" if degrees > 0 else "left"
    note = (f"convex to the patient's {side}" if abs(degrees) >= MIN_COBB_DEG
            else f"below {MIN_COBB_DEG:.0f} degrees: no scoliosis")
    # the centroid chain bends with a real curve; endplates fitted to a wrong label tilt on their own
    column = abs(coronal(upper.frame["w"]) - coronal(lower.frame["w"])) if "w" in upper.frame and "w" in lower.frame else None
    if column is not None and abs(degrees) >= MIN_COBB_DEG and column < MIN_COBB_DEG / 2:
        note = (f"{note}; but the column itself bends only {column:.0f} degrees between them: check these "
                "endplates before calling it scoliosis")
    return Angle("coronal Cobb", round(abs(degrees), 1), upper.name, "superior endplate", lower.name,
                 "inferior endplate", note).as_dict()
