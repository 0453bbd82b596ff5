"""Analysis of the open scan (AnalysisController): run the pipeline in a Worker, show its results.

The pipeline is found lazily (``spine_core.workflows.analysis.find_segment``); where none is installed
the Analyze action stays disabled and its tooltip says why. Results replace the labels (one undoable
step is not kept: a new analysis restarts the edit history, like opening labels), fill the vertebra
table with confidences and flags, and list what needs review in the banner above the table.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from spine_core.errors import SpineError
from spine_core.pipeline.api import SegmentOptions
from spine_core.labels import count_structures
from spine_core.review import case_banner, case_review, vertebra_rows
from spine_core.workflows.analysis import find_segment
from ui import jobs
from ui.host import Host
from ui.preferences import Preferences
from ui.session import Session
from ui.tasks import StudyReadiness
from ui.vertebra_panel import VertebraPanel


class AnalysisController(QObject):
    """Owns the analysis' results per vertebra, the banner's warnings and the table's rows."""

    analysis_shown = Signal()           # a new analysis replaced the labels
    availability_changed = Signal()     # the pipeline was set (Analyze may be enabled or not)

    def __init__(self, session: Session, panel: VertebraPanel, host: Host, prefs: Preferences,
                 ready: StudyReadiness, segment=None) -> None:
        """``segment``: the analysis function (default: the installed pipeline, found lazily)."""
        super().__init__(host.window())
        self.session, self.panel, self.host, self.prefs, self.ready = session, panel, host, prefs, ready
        self.vertebrae: dict = {}        # {id: VertebraResult} of the analysis, edited ones dropped
        self.warnings: list[str] = []    # the banner's lines above the flagged vertebrae
        self.rows = []                   # the table's rows (spine_core.review.VertebraRow)
        self.record: dict = {}           # of the analysis shown: pipeline, provider, models, its notes
        if segment is None:
            segment, why = find_segment()
        else:
            why = ""
        self.segment_fn, self.segment_unavailable = segment, why
        session.volume_changed.connect(self._on_volume_changed)
        session.labels_changed.connect(self._on_labels_changed)

    def set_pipeline(self, segment, why: str = "") -> None:
        """Use ``segment(volume, options, progress)`` for Analyze (None: unavailable, ``why``)."""
        self.segment_fn = segment
        self.segment_unavailable = "" if segment is not None else (why or "no analysis pipeline")
        self.availability_changed.emit()

    def analyze(self):
        """Segment and number the open scan in a Worker; returns the Worker (None if unavailable)."""
        if self.session.volume is None:
            self.host.report_error(SpineError("Open a scan to analyse first."), "Analysis")
            return None
        if self.segment_fn is None:
            self.host.report_error(SpineError(f"Analysis is unavailable: {self.segment_unavailable}."), "Analysis")
            return None
        self.ready.expect()
        options = SegmentOptions(device=self.prefs.device, pipeline=self.prefs.method, mr_method=self.prefs.mr_method)
        return self.host.run_task("analyze", "Analysing the spine", jobs.run_analysis, self.segment_fn,
                                  self.session.volume, options, on_result=self.show_result)

    def show_result(self, result) -> None:
        """A SegmentResult: its labels, confidences and flags in the table, the case's QA status and
        flags in the banner (the vocabulary `segment` and batch runs write)."""
        self.session.set_labels(result.labels)          # rows first drop stale analysis ...
        self.vertebrae = {v.id: v for v in result.vertebrae}
        self.record = {"pipeline": getattr(result, "pipeline", "") or self.prefs.method,
                       "provider": result.provider, "models": list(getattr(result, "models", [])),
                       "notes": list(result.warnings)}
        self.warnings = []
        self.refresh_rows()                             # ... then show the new one
        case = case_review(self.rows, self.session.volume, result.warnings, result.labels)
        self.warnings = case_banner(case)
        self.panel.set_warnings(self.warnings, self.rows)
        self.analysis_shown.emit()
        where = f" on {result.provider}" if result.provider else ""
        self.host.show_status(f"Analysis done{where}: {count_structures(v.id for v in result.vertebrae)}", 10000)

    def show_known(self, vertebrae: dict, warnings: list[str]) -> None:
        """The results of an analysis made elsewhere (a batch case) for the labels shown."""
        self.vertebrae, self.warnings = dict(vertebrae), list(warnings)
        self.refresh_rows()

    def analysis_record(self) -> dict:
        """What a result folder's metrics.json records, for the labels as they are now: the case's QA status
        and flags (from the table's rows, the scan and the analysis' notes) and, where the labels came from
        an analysis here, its pipeline and models (exports and the planning report show them)."""
        record = {k: v for k, v in self.record.items() if k != "notes"}
        case = case_review(self.rows, self.session.volume, self.record.get("notes", []), self.session.labels)
        return {**record, "case": case.as_dict()}

    def drop_warnings(self) -> None:
        """Other labels were opened: the banner no longer describes them."""
        self.warnings, self.record = [], {}
        self.panel.set_warnings(self.warnings, self.rows)

    def refresh_rows(self) -> None:
        labels = self.session.labels
        self.rows = vertebra_rows(labels, self.vertebrae) if labels is not None else []
        self.panel.table.set_rows(self.rows)
        self.panel.table.select_vertebra(self.session.selected)
        self.panel.set_warnings(self.warnings, self.rows)

    # --- session ------------------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        # a new scan has no rows yet: the previous scan's table and banner must not stay on screen
        self.vertebrae, self.warnings, self.record = {}, [], {}
        self.refresh_rows()

    def _on_labels_changed(self, touched) -> None:
        """Confidences of edited vertebrae no longer hold: they show as 'edited'."""
        for label_id in touched:
            self.vertebrae.pop(int(label_id), None)
        self.refresh_rows()
