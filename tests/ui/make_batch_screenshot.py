"""The Batch review picture for the docs (not a test): a batch folder made from real CTs, its queue open.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m tests.ui.make_batch_screenshot [CT_ROOT [CASE]]

CT_ROOT (default ../shared/data/ct) holds case folders with image.nii.gz and labels.nii.gz. Until trained
models ship, each case is "analysed" by a stand-in that returns the reference labels with invented
confidences (one low), so that the QA flags show; a failed, a refused and a never-run case are added to
the journal by hand.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "docs/images/batch"


def stand_in(labels_path, unsure: bool):
    """The reference labels as the analysis result; the second vertebra unsure (confidence 0.42) if ``unsure``."""
    from spine_core.io import load_labels
    from spine_core.pipeline.api import SegmentResult, VertebraResult
    from spine_core.workflows.analysis import labels_on_grid

    def segment(volume, options, progress):
        progress.update(0.2, "Segmenting vertebrae")
        labels, _ = labels_on_grid(load_labels(labels_path), volume)
        ids = [i for i in labels.ids() if i < 100]
        vertebrae = [VertebraResult(i, labels.names[i], labels.index_to_lps(np.argwhere(labels.array == i).mean(0)),
                                    0.42 if unsure and n == 1 else 0.95, 0.0) for n, i in enumerate(ids)]
        return SegmentResult(labels, vertebrae, {"total": 41.0 + 7 * len(ids)}, "stand-in",
                             ["stand-in pipeline: reference labels, invented confidences"])
    return segment


def build_batch(ct_root: Path, root: Path):
    from spine_core.io import load_scan
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.review import CASE_FAILED, CASE_REFUSED
    from spine_core.workflows.analysis import analyse_to_folder
    from spine_core.workflows.batch_folder import BatchFolder

    folder = BatchFolder(root)
    cases = sorted(p for p in ct_root.iterdir() if (p / "labels.nii.gz").is_file())
    for case in cases:
        source = case / "dicom" if (case / "dicom").is_dir() else case / "image.nii.gz"
        folder.append(case.name, "queued", source=str(source), kind="dicom" if source.is_dir() else "file")
        folder.append(case.name, "running")
        volume = load_scan(source)
        result, _flags, qa = analyse_to_folder(volume, folder.case_dir(case.name), SegmentOptions(),
                                               segment=stand_in(case / "labels.nii.gz", case.name != "verse006"))
        names = [v.name for v in result.vertebrae]
        folder.append(case.name, "done", status=qa.status, flags=list(qa.flags), levels=f"{names[0]}-{names[-1]}",
                      n_vertebrae=len(names), seconds=result.timings_s.get("total", 0.0))
        print(case.name, qa.status, qa.flags)
    failure = "The analysis failed: not enough memory for the 0.4 mm scan (resample it, or use the GPU machine)"
    refusal = "This series is a localizer (2 slices), not a CT volume of the spine."
    for case_id, state, reason, kind in (("ct_0143", "failed", failure, CASE_FAILED),
                                         ("scout_0144", "refused", refusal, CASE_REFUSED)):
        folder.append(case_id, "queued", source=str(root / "inputs" / f"{case_id}.nii.gz"), kind="file")
        folder.append(case_id, state, status="failed", reason=reason, flags=[f"{kind}: {reason}"])
    folder.append("ct_0145", "queued", source=str(root / "inputs" / "ct_0145.nii.gz"), kind="file")
    return folder


def main(ct_root) -> None:
    import os

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from tests.ui.make_screenshots import _wait
    from ui.main_window import MainWindow
    from ui.theme import apply_dark_theme

    work = Path(tempfile.mkdtemp())
    os.environ["SPINEPLAN_DATA_DIR"] = str(work / "data")
    folder = build_batch(Path(ct_root), work / "batch")
    folder.save_review("tptbox_lumbar", "accepted", "L3 outline checked", "dr.lee")   # one decision made
    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    window = MainWindow(QSettings(str(work / "s.ini"), QSettings.Format.IniFormat), show_dialogs=False)
    window.prefs.reviewer = "dr.lee"
    window.resize(1880, 1000)
    window.show()
    ready = []
    window.study_ready.connect(lambda: ready.append(1))
    window.open_batch(folder.root)
    _wait(app, window, window.study_ready) if not ready else None
    for name in sys.argv[2:3]:                                 # another case than the first to review
        ready.clear()
        window.batch_review.go_to(window.batch_review.row_of(name))
        _wait(app, window, window.study_ready) if not ready else None
    window.batch_review.panel.note.setText("T9 is T10: count from the last rib pair")
    for _ in range(20):
        app.processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    pixmap = window.display.grab_window()
    pixmap.save(str(OUT / "review_queue.png"))             # full size: the queue's text stays legible
    print("review_queue.png", (OUT / "review_queue.png").stat().st_size // 1024, "KB")
    window.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else Path(__file__).resolve().parents[3] / "shared/data/ct")
