"""3D Slicer markups (``.mrk.json``, schema markups-schema-v1.0.3): the vertebra centroids as one point
list, and planned screws as line markups (entry -> tip), all in LPS millimetres.

Slicer (and navigation tools that read its markups) load the file with File > Add Data. The document
follows the schema's documented structure; no network is needed to write or read it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from spine_core.atomic import atomic_path
from spine_core.exports.terms import craniocaudal
from spine_core.labels import is_disc, label_name
from spine_core.volume import LabelMap

SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
          "Schema/markups-schema-v1.0.3.json#")
_LPS_ORIENTATION = [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0]   # Slicer's default point orientation
CENTROID_COLOR = (0.4, 1.0, 1.0)
SCREW_COLOR = (0.95, 0.8, 0.2)

Point = Sequence[float]


def label_centroids(labels: LabelMap, vertebrae_only: bool = True) -> list[tuple[int, str, np.ndarray]]:
    """(label id, name, centroid in LPS mm) of each label, cranio-caudal; discs left out by default."""
    from scipy import ndimage

    ids = [i for i in craniocaudal(labels.ids()) if not (vertebrae_only and is_disc(i))]
    if not ids:
        return []
    centres = ndimage.center_of_mass(np.ones(labels.shape, np.uint8), labels.array, ids)
    return [(i, labels.names.get(i) or label_name(i), labels.index_to_lps(c)) for i, c in zip(ids, centres)]


def _point(index: int, label: str, position: Point, description: str = "") -> dict:
    return {"id": str(index), "label": label, "description": description, "associatedNodeID": "",
            "position": [round(float(v), 3) for v in position], "orientation": list(_LPS_ORIENTATION),
            "selected": True, "locked": True, "visibility": True, "positionStatus": "defined"}


def _display(color) -> dict:
    return {"visibility": True, "opacity": 1.0, "color": list(color), "selectedColor": list(color),
            "activeColor": [0.4, 1.0, 0.0], "propertiesLabelVisibility": False, "pointLabelsVisibility": True,
            "textScale": 3.0, "glyphType": "Sphere3D", "glyphScale": 1.0, "glyphSize": 5.0,
            "useGlyphScale": True, "sliceProjection": False}


def centroid_markup(centroids: Iterable[tuple[int, str, Point]], notes: dict[int, str] | None = None,
                    name: str = "Vertebra centroids") -> dict:
    """One Fiducial markup: a control point per vertebra, labelled with its name."""
    notes = notes or {}
    points = [_point(n, label, position, notes.get(label_id, ""))
              for n, (label_id, label, position) in enumerate(centroids, start=1)]
    return {"type": "Fiducial", "name": name, "coordinateSystem": "LPS", "coordinateUnits": "mm",
            "locked": True, "fixedNumberOfControlPoints": False, "labelFormat": "%N-%d",
            "lastUsedControlPointNumber": len(points), "controlPoints": points, "measurements": [],
            "display": _display(CENTROID_COLOR)}


def screw_markups(screws: Iterable[tuple[str, Point, Point]]) -> list[dict]:
    """One Line markup per planned screw, from its entry point to its tip (name, entry_lps, tip_lps)."""
    lines = []
    for name, entry, tip in screws:
        entry, tip = np.asarray(entry, dtype=float), np.asarray(tip, dtype=float)
        length = float(np.linalg.norm(tip - entry))
        lines.append({"type": "Line", "name": str(name), "coordinateSystem": "LPS", "coordinateUnits": "mm",
                      "locked": True, "fixedNumberOfControlPoints": True, "labelFormat": "%N-%d",
                      "lastUsedControlPointNumber": 2,
                      "controlPoints": [_point(1, "entry", entry), _point(2, "tip", tip)],
                      "measurements": [{"name": "length", "enabled": True, "value": round(length, 2),
                                        "units": "mm", "printFormat": "%-#4.4g%s"}],
                      "display": _display(SCREW_COLOR)})
    return lines


def markups_document(centroids: Iterable[tuple[int, str, Point]], screws: Iterable[tuple[str, Point, Point]] = (),
                     notes: dict[int, str] | None = None) -> dict:
    """The whole ``.mrk.json`` document: the centroid list, then one line per screw (none: no lines)."""
    return {"@schema": SCHEMA, "markups": [centroid_markup(centroids, notes), *screw_markups(screws)]}


def write_markups(path, document: dict) -> Path:

    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
