"""Analysis of the open scan (a mixin of MainWindow): run the pipeline in a Worker, show results.

The pipeline is found lazily (``spine_core.workflows.analysis.find_segment``); where none is installed the Analyze action
stays disabled and its tooltip says why. Results replace the labels (one undoable step is not
kept: a new analysis restarts the edit history, like opening labels), fill the table with
confidences and flags, and list what needs review in the banner above the table.
"""
from __future__ import annotations

from spine_core.errors import SpineError
from spine_core.pipeline.api import SegmentOptions
from spine_core.review import case_banner, case_review, review_summary
from spine_core.workflows.analysis import find_segment
from ui import jobs


class AnalysisMixin:
    analysis: dict
    analysis_warnings: list

    def _init_analysis(self, segment=None) -> None:
        self.analysis, self.analysis_warnings = {}, []
        if segment is None:
            segment, why = find_segment()
        else:
            why = ""
        self.segment_fn, self.segment_unavailable = segment, why

    def set_pipeline(self, segment, why: str = "") -> None:
        """Use ``segment(volume, options, progress)`` for Analyze (None: unavailable, ``why``)."""
        self.segment_fn = segment
        self.segment_unavailable = "" if segment is not None else (why or "no analysis pipeline")
        self._update_actions()

    def device(self) -> str:
        return self.prefs.device

    def set_device(self, device: str) -> None:
        self.prefs.device = device

    def method(self) -> str:
        """The analysis pipeline chosen in Preferences (a spine_core.pipeline.registry name)."""
        return self.prefs.method

    def set_method(self, method: str) -> None:
        self.prefs.method = method

    def analyze(self):
        """Segment and number the open scan in a Worker; returns the Worker (None if unavailable)."""
        if self.session.volume is None:
            self.errors.report(SpineError("Open a scan to analyse first."), "Analysis")
            return None
        if self.segment_fn is None:
            self.errors.report(SpineError(f"Analysis is unavailable: {self.segment_unavailable}."), "Analysis")
            return None
        self._awaiting_ready = True
        options = SegmentOptions(device=self.device(), pipeline=self.method())
        return self.run_task("analyze", "Analysing the spine", jobs.run_analysis, self.segment_fn,
                             self.session.volume, options, on_result=self._on_analysis_done)

    def _on_analysis_done(self, result) -> None:
        self._reset_camera = True
        self.session.set_labels(result.labels)          # rows first drop stale analysis ...
        self.analysis = {v.id: v for v in result.vertebrae}
        self.analysis_warnings = []
        self.refresh_rows()                             # ... then show the new one
        # the case's QA status and flags, as `segment` and batch runs write them (one vocabulary)
        case = case_review(self.rows, self.session.volume, result.warnings, result.labels)
        self.analysis_warnings = case_banner(case)
        self.vertebra_panel.set_warnings(self.analysis_warnings, review_summary(self.rows))
        self.schedule_autosave()
        where = f" on {result.provider}" if result.provider else ""
        self.statusBar().showMessage(f"Analysis done{where}: {len(result.vertebrae)} vertebrae", 10000)

    def _forget_analysis(self, touched) -> None:
        """Confidences of edited vertebrae no longer hold: they show as 'edited'."""
        for label_id in touched:
            self.analysis.pop(int(label_id), None)

    def refresh_rows(self) -> None:
        from spine_core.review import vertebra_rows

        labels = self.session.labels
        self.rows = vertebra_rows(labels, self.analysis) if labels is not None else []
        self.results.set_rows(self.rows)
        self.results.select_vertebra(self.session.selected)
        self.vertebra_panel.set_warnings(self.analysis_warnings, review_summary(self.rows))
