"""SpinePlan label conventions, as data: VerSe vertebra ids, discs, colours.

Discs are 100 + the id of the vertebra above (L4/L5 = 123, L5/S1 = 124).
"""
from __future__ import annotations

import colorsys

VERTEBRAE: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)},
    **{7 + i: f"T{i}" for i in range(1, 13)},
    **{19 + i: f"L{i}" for i in range(1, 7)},
    26: "sacrum",
    28: "T13",
}
SACRUM = 26
L6 = 25
T13 = 28
DISC_OFFSET = 100

# Cranio-caudal order of vertebrae; T13 sits between T12 and L1.
CRANIOCAUDAL: tuple[int, ...] = tuple(list(range(1, 20)) + [28] + list(range(20, 27)))
NAME_TO_ID: dict[str, int] = {name: vid for vid, name in VERTEBRAE.items()}
NAME_TO_ID["S1"] = SACRUM


def vertebra_name(vid: int) -> str:
    return VERTEBRAE.get(int(vid), f"label {int(vid)}")


def next_below(vid: int) -> int | None:
    order = CRANIOCAUDAL
    i = order.index(vid)
    return order[i + 1] if i + 1 < len(order) else None


def is_disc(label: int) -> bool:
    return DISC_OFFSET < int(label) < DISC_OFFSET + 30


def count_structures(ids) -> str:
    """'3 vertebrae, 2 discs', '1 vertebra': an MR result holds discs, which are not vertebrae."""
    ids = [int(i) for i in ids if int(i)]
    discs = sum(is_disc(i) for i in ids)
    bodies = len(ids) - discs
    parts = [f"{bodies} vertebra{'' if bodies == 1 else 'e'}"] if bodies or not discs else []
    return ", ".join(parts + ([f"{discs} disc{'' if discs == 1 else 's'}"] if discs else []))


def disc_name(label: int) -> str:
    """Discs are named by the usual neighbours: L5/S1 and T12/L1 (L6/S1, T13/L1 for variants)."""
    above = int(label) - DISC_OFFSET
    if above in (24, 25):
        return f"{vertebra_name(above)}/S1"
    if above in (19, 28):
        return f"{vertebra_name(above)}/L1"
    below = next_below(above) if above in CRANIOCAUDAL else None
    return f"{vertebra_name(above)}/{VERTEBRAE.get(below, '?') if below else '?'}"


def label_name(label: int) -> str:
    label = int(label)
    if label == 0:
        return "background"
    if is_disc(label):
        return disc_name(label)
    return vertebra_name(label)


def label_names(ids) -> dict[int, str]:
    return {int(i): label_name(int(i)) for i in ids if int(i) != 0}


def _region_hue(vid: int) -> float:
    if vid <= 7:
        return 0.55 + 0.05 * (vid % 2)      # cervical: blues
    if vid <= 19 or vid == T13:
        return 0.30 + 0.06 * (vid % 2)      # thoracic: greens
    if vid <= 25:
        return 0.08 + 0.05 * (vid % 2)      # lumbar: oranges
    return 0.85                              # sacrum: magenta


def label_color(label: int) -> tuple[int, int, int]:
    """A fixed RGB colour per label: neighbours alternate in lightness so boundaries show."""
    label = int(label)
    if label == 0:
        return (0, 0, 0)
    if is_disc(label):
        return (235, 225, 120)
    light = 0.45 if label % 2 else 0.62
    r, g, b = colorsys.hls_to_rgb(_region_hue(label), light, 0.75)
    return (round(r * 255), round(g * 255), round(b * 255))
