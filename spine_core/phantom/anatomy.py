"""Adult vertebra dimensions per level, as data (millimetres).

Sources: published morphometry (Panjabi et al. 1991 cervical, 1991 thoracic, 1992 lumbar;
Zindrick 1987 pedicles; Tan 2004 / Zhou 2000 lumbar bodies), cross-checked against the real
VerSe label maps in ../shared/data (verse004, verse009, verse006/007): lumbar bodies there
measure 45-56 mm wide, 33-39 mm deep; lumbar transverse-process spans 78-96 mm; T9-T12 spans
45-66 mm (see docs/PHANTOMS.md). Values are averages for an adult of ~1.70 m; the generator
scales and jitters them per phantom.

Columns:
  body_w, body_d, body_h   vertebral body width (left-right), depth (antero-posterior), height
  canal_w, canal_d         spinal canal width and depth
  ped_w, ped_h             pedicle width and height
  lam_t                    lamina thickness
  sp_len, sp_angle         spinous process length from the lamina, downward slope in degrees
  tp_span, tp_back         transverse process tip: distance from midline, posterior offset
  disc_h                   height of the disc below this vertebra
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LevelDims:
    body_w: float
    body_d: float
    body_h: float
    canal_w: float
    canal_d: float
    ped_w: float
    ped_h: float
    lam_t: float
    sp_len: float
    sp_angle: float
    tp_span: float
    tp_back: float
    disc_h: float

    def scaled(self, factor: float) -> "LevelDims":
        return LevelDims(*(v * factor if name != "sp_angle" else v
                           for name, v in zip(_FIELDS, self.values())))

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, f) for f in _FIELDS)


_FIELDS = ("body_w", "body_d", "body_h", "canal_w", "canal_d", "ped_w", "ped_h", "lam_t",
           "sp_len", "sp_angle", "tp_span", "tp_back", "disc_h")

# name: body_w body_d body_h canal_w canal_d ped_w ped_h lam_t sp_len sp_angle tp_span tp_back disc_h
_TABLE = """
C1  0    0    10   28  30  0    0    5  10  0   38  4   0
C2  16   15   20   24  16  6.0  8.0  6  28  20  28  2   4.5
C3  16   15   14   24  15  5.0  7.0  4  22  25  27  0   5.0
C4  17   15.5 14   25  15  5.0  7.0  4  22  25  28  0   5.5
C5  18   16   14   25  15  5.5  7.0  4  24  25  29  0   5.5
C6  19.5 16.5 14   25  15  5.5  7.0  4  28  25  30  0   5.5
C7  22   16.5 15   24  15  6.0  7.5  5  40  25  36  2   5.0
T1  25   17   17   21  16  7.5  10   6  45  40  40  6   4.5
T2  26   18   18   18  16  6.0  11   6  45  50  38  10  4.5
T3  26   20   18.5 16  15  5.0  11   6  45  55  37  12  4.5
T4  27   22   19   16  15  4.5  11   6  45  60  36  12  4.5
T5  28   24   19.5 16  15  4.5  11.5 6  45  60  35  12  5.0
T6  29   25   20   16  15  5.0  12   6  45  60  34  12  5.0
T7  30   26   20.5 16  15  5.0  12   6  45  60  33  12  5.0
T8  31   27   21   16  15  5.5  12.5 6  42  55  32  11  5.5
T9  33   28   21.5 16  15  6.0  13   6  40  50  31  10  5.5
T10 35   29   22   17  15  6.5  14   6  38  40  30  9   6.0
T11 38   29   23   17  16  7.5  16   6  35  30  27  7   6.5
T12 40   30   24   19  16  8.0  16   7  32  20  25  5   7.0
L1  42   32   25   21  17  8.0  15   7  30  10  36  4   9.0
L2  44   33   26   22  17  8.5  15   7  30  8   40  4   10
L3  47   35   27   23  17  10   14   7  30  5   45  4   11
L4  49   35   27   24  17  12   14   7  29  5   44  5   11
L5  51   35   27   25  17  15   14   7  25  5   46  6   10
"""

LEVELS: dict[str, LevelDims] = {}
for _line in _TABLE.strip().splitlines():
    _name, *_vals = _line.split()
    LEVELS[_name] = LevelDims(*(float(v) for v in _vals))

# Sacrum (S1 endplate and overall size), from Peretz 1998 / Zhao 2019 ranges.
SACRUM_DIMS = {"s1_w": 50.0, "s1_d": 32.0, "ala_w": 105.0, "length": 100.0, "thick": 32.0}

# Published ranges used by the tests (body width, depth, height in mm), per region.
PUBLISHED_BODY_RANGES = {
    "cervical": {"w": (14, 25), "d": (13, 19), "h": (11, 17)},
    "thoracic": {"w": (22, 45), "d": (15, 34), "h": (15, 27)},
    "lumbar": {"w": (38, 58), "d": (27, 40), "h": (22, 31)},
}


def region_of(name: str) -> str:
    return {"C": "cervical", "T": "thoracic", "L": "lumbar"}.get(name[0], "sacrum")


def dims_for(name: str) -> LevelDims:
    """Dimensions of a level, including the variants L6 (like L5) and T13 (like T12)."""
    if name == "L6":
        # An L6 resembles L5 but is a little smaller, and L5 above it looks like an L4.
        return LEVELS["L5"].scaled(0.98)
    if name == "T13":
        return replace(LEVELS["T12"], body_w=41.0, body_h=24.5)
    return LEVELS[name]


def level_sequence(thoracic: int = 12, lumbar: int = 5) -> list[str]:
    """Names from C1 to the last lumbar vertebra, with T13 / L6 where present."""
    names = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)]
    if thoracic == 13:
        names.append("T13")
    names += [f"L{i}" for i in range(1, 6)]
    if lumbar == 6:
        names.append("L6")
    return names
