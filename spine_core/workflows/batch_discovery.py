"""Finding the studies below a folder (one case per DICOM series, zip series or image file, with
stable ids) and loading one: the first half of a batch run (spine_core.workflows.batch)."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from spine_core.errors import SpineError
from spine_core.io.readers import IMAGE_SUFFIXES, image_suffix
from spine_core.progress import NullProgress

SIDECAR_SUFFIXES = (".raw", ".zraw", ".img", ".json", ".txt", ".csv", ".md", ".html", ".png", ".jpg",
                    ".pdf", ".xml", ".log")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


@dataclass(frozen=True)
class Study:
    """One case: a file, one series of a zip, or one DICOM series (its files)."""
    case_id: str
    kind: str                         # file / zip / dicom
    source: str                       # absolute path: the file, the zip, the series' folder
    series_uid: str = ""
    files: tuple[str, ...] = ()       # a DICOM series' files
    refuse: str = ""                  # known bad at discovery (empty series, unreadable DICOM)

    def journal_fields(self) -> dict:
        return {"source": self.source, "kind": self.kind, "series_uid": self.series_uid}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80] or "case"


def _short(uid: str) -> str:
    return hashlib.sha1(uid.encode()).hexdigest()[:8]


def _relative(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel if rel != "." else root.name


def discover(root, progress=None) -> list[Study]:
    """Every study below ``root``, sorted by case id. Case ids are stable: the relative path, plus
    a hash of the series UID for DICOM (a folder may hold several series)."""
    from spine_core.io.dicom import read_header
    from spine_core.io.readers import extracted_zip

    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise SpineError(f"'{root}' is not a folder. Give the folder that holds the studies.")
    progress = progress or NullProgress()
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    studies: list[Study] = []
    series: dict[str, dict] = {}
    for n, path in enumerate(files):
        if n % 50 == 0:
            progress.update(n / max(len(files), 1), f"Looking for studies ({n}/{len(files)} files)")
        suffix = image_suffix(path)
        rel = _relative(path, root)
        if suffix in IMAGE_SUFFIXES:
            studies.append(Study(_slug(rel[:-len(suffix)]), "file", str(path)))
        elif suffix == ".zip":
            studies.extend(_zip_studies(path, rel[:-len(suffix)], extracted_zip))
        elif suffix not in SIDECAR_SUFFIXES:
            ds = read_header(path)
            if ds is None:
                if suffix in DICOM_SUFFIXES:
                    studies.append(Study(_slug(rel), "file", str(path),
                                         refuse=f"'{path.name}' is not a readable DICOM file"))
                continue
            entry = series.setdefault(str(ds.SeriesInstanceUID), {"files": [], "images": 0})
            entry["files"].append(path)
            entry["images"] += int("ImagePositionPatient" in ds and "ImageOrientationPatient" in ds)
    for uid, entry in series.items():
        folder = Path(os.path.commonpath([str(p.parent) for p in entry["files"]]))
        case_id = f"{_slug(_relative(folder, root))}-{_short(uid)}"
        refuse = "" if entry["images"] else (f"series {uid} holds no images ({len(entry['files'])} DICOM "
                                             "files without image position or orientation)")
        studies.append(Study(case_id, "dicom", str(folder), uid, tuple(str(p) for p in entry["files"]), refuse))
    progress.update(1.0, f"{len(studies)} studies found")
    studies.sort(key=lambda s: s.case_id)
    _unique_ids(studies)
    return studies


def _zip_studies(path: Path, rel: str, extracted_zip) -> list[Study]:
    from spine_core.io.dicom import list_series

    try:
        with extracted_zip(path) as folder:
            listing = list_series(folder)
    except SpineError as exc:
        return [Study(_slug(rel), "zip", str(path), refuse=str(exc))]
    if not listing:
        return [Study(_slug(rel), "zip", str(path), refuse=f"'{path.name}' holds no DICOM image series")]
    return [Study(f"{_slug(rel)}-{_short(s.uid)}", "zip", str(path), s.uid) for s in listing]


def _unique_ids(studies: list[Study]) -> None:
    """Slugs of different paths can collide ('a b' and 'a_b'): suffix the later ones."""
    seen: dict[str, int] = {}
    for n, study in enumerate(studies):
        count = seen.get(study.case_id, 0)
        seen[study.case_id] = count + 1
        if count:
            studies[n] = replace(study, case_id=f"{study.case_id}-{_short(study.source + study.series_uid)}")


def load_study(study: Study):
    from spine_core.io import load_scan
    from spine_core.io.dicom import load_series, series_in_files

    if study.refuse:
        raise SpineError(study.refuse[0].upper() + study.refuse[1:] + ".")
    if study.kind == "dicom":
        found = [s for s in series_in_files([Path(f) for f in study.files]) if s.uid == study.series_uid]
        if not found:
            raise SpineError(f"Series {study.series_uid} is no longer readable in '{study.source}'.")
        return load_series(found[0])
    return load_scan(study.source, series=study.series_uid or None)
