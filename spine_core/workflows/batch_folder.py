"""A batch output folder: where each case's result, the journal, thumbnails, reviews and reports live.

    OUT/journal.jsonl          one JSON object per line, appended and fsynced by the batch runner only:
                               {"case", "state", "time", ...}; a case's state is its last line
    OUT/cases/<case_id>/       the same result folder as `spineplan segment` (written atomically)
    OUT/thumbnails/<id>.png    sagittal picture of the case's labels
    OUT/reviews/<id>.json      a reviewer's decision: accepted / corrected / rejected, note, time
    OUT/reviews/<id>/labels.nii.gz   the corrected labels (decision "corrected")
    OUT/report.html, summary.csv, summary.json

A kill at any moment leaves at most a torn last journal line (ignored on reading) and hidden
``.partial`` staging folders (removed by the next run): a case counts as done only once its result
folder is in place *and* its "done" line is written.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spine_core.atomic import atomic_path
from spine_core.errors import SpineError

JOURNAL = "journal.jsonl"
STATES = ("queued", "running", "done", "failed", "refused")
FINISHED = ("done", "failed", "refused")
DECISIONS = ("accepted", "corrected", "rejected")
STATUS_ORDER = {"review": 0, "failed": 1, "ok": 2}     # review queue: what needs a person first


@dataclass
class CaseRecord:
    """A case's latest journal entry merged over the earlier ones (fields only grow)."""
    case_id: str
    state: str = "queued"
    source: str = ""              # the input: a file, a zip, or the folder holding the DICOM series
    kind: str = ""                # file / dicom / zip
    series_uid: str = ""
    status: str = ""              # ok / review / failed (QA status, once finished)
    reason: str = ""              # why failed or refused
    flags: list[str] = field(default_factory=list)       # case QA flags (spine_core.review)
    levels: str = ""              # e.g. "T7-L4, sacrum"
    n_vertebrae: int = 0
    seconds: float = 0.0
    done_count: int = 0           # "done" lines seen (exactly one in a healthy journal)
    review: dict | None = None    # the reviewer's decision, from reviews/<id>.json

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class BatchFolder:
    def __init__(self, root) -> None:
        self.root = Path(root).expanduser().resolve()

    # -- layout ---------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

    def case_dir(self, case_id: str) -> Path:
        return self.root / "cases" / case_id

    def thumbnail(self, case_id: str) -> Path:
        return self.root / "thumbnails" / f"{case_id}.png"

    def review_path(self, case_id: str) -> Path:
        return self.root / "reviews" / f"{case_id}.json"

    def corrected_labels(self, case_id: str) -> Path:
        return self.root / "reviews" / case_id / "labels.nii.gz"

    def is_batch(self) -> bool:
        return self.journal_path.is_file()

    # -- journal --------------------------------------------------------------------------------
    def append(self, case_id: str, state: str, **fields) -> None:
        """One journal line, flushed to disk before returning (the runner is the only writer)."""
        if state not in STATES:
            raise ValueError(state)
        self.root.mkdir(parents=True, exist_ok=True)
        entry = {"case": case_id, "state": state, "time": round(time.time(), 3), **fields}
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.journal_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self) -> list[dict]:
        """Every complete journal line; a line torn by a kill is skipped."""
        if not self.journal_path.exists():
            return []
        rows = []
        for line in self.journal_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("case") and entry.get("state") in STATES:
                rows.append(entry)
        return rows

    def records(self) -> dict[str, CaseRecord]:
        """Every case's current record, in the order cases were first queued."""
        records: dict[str, CaseRecord] = {}
        names = {f.name for f in CaseRecord.__dataclass_fields__.values()} - {"case_id", "done_count", "review"}
        for entry in self.entries():
            record = records.setdefault(entry["case"], CaseRecord(entry["case"]))
            for key, value in entry.items():
                if key in names:
                    setattr(record, key, value)
            if entry["state"] == "done":
                record.done_count += 1
            if entry["state"] in ("queued", "running"):
                # a re-queued case starts afresh: an earlier run's outcome no longer holds
                record.status, record.reason = "", ""
        for record in records.values():
            record.review = self.read_review(record.case_id)
        return records

    def sorted_for_review(self) -> list[CaseRecord]:
        """Cases needing a person first (review, then failed), then ok; undecided before decided."""
        return sorted(self.records().values(),
                      key=lambda r: (r.review is not None, STATUS_ORDER.get(r.status, 3), r.case_id))

    # -- reviews --------------------------------------------------------------------------------
    def read_review(self, case_id: str) -> dict | None:
        path = self.review_path(case_id)
        try:
            review = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return review if isinstance(review, dict) and review.get("decision") in DECISIONS else None

    def save_review(self, case_id: str, decision: str, note: str = "", reviewer: str = "",
                    labels=None) -> dict:
        """Record a reviewer's decision atomically; "corrected" needs the corrected ``labels``."""
        from spine_core.io.writers import save_labelmap

        if decision not in DECISIONS:
            raise SpineError(f"Unknown review decision '{decision}'; use one of {', '.join(DECISIONS)}.")
        if decision == "corrected" and labels is None:
            raise SpineError("A correction needs the corrected labels.")
        review = {"case": case_id, "decision": decision, "note": note, "reviewer": reviewer,
                  "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        if labels is not None:
            save_labelmap(labels, self.corrected_labels(case_id))
            review["labels"] = str(self.corrected_labels(case_id).relative_to(self.root))
        else:
            shutil.rmtree(self.corrected_labels(case_id).parent, ignore_errors=True)
        with atomic_path(self.review_path(case_id)) as tmp:
            tmp.write_text(json.dumps(review, indent=2) + "\n", encoding="utf-8")
        return review

    def load_case(self, record: CaseRecord):
        """(scan, labels) of a finished case: the corrected labels where a reviewer saved them."""
        from spine_core.io import load_labels, load_scan

        if record.state != "done":
            raise SpineError(f"Case '{record.case_id}' has no result ({record.state}: {record.reason}).")
        scan = load_scan(record.source, series=record.series_uid or None)
        corrected = self.corrected_labels(record.case_id)
        path = corrected if corrected.exists() else self.case_dir(record.case_id) / "labels.nii.gz"
        return scan, load_labels(path, grid=scan)

    def record_dict(self, record: CaseRecord) -> dict:
        out = asdict(record)
        out["result"] = f"cases/{record.case_id}" if record.state == "done" else ""
        out["thumbnail"] = (f"thumbnails/{record.case_id}.png"
                            if self.thumbnail(record.case_id).exists() else "")
        return out
