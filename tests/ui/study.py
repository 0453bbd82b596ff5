"""Helpers shared by the UI tests: a small synthetic study on disk, waiting for a load."""
import numpy as np

from spine_core.volume import LabelMap, Volume, affine_from_geometry

T11, T12, L1 = 18, 19, 20


def synthetic_study(folder, shape=(40, 36, 30)):
    """A small CT (1 mm voxels, LPS) with three boxes T11 (top), T12, L1 and their files."""
    from spine_core.io import save_labelmap, save_volume

    affine = affine_from_geometry((1.0, 1.0, 1.0), None, (-20.0, -18.0, -100.0))
    rng = np.random.default_rng(1)
    image = rng.normal(0, 30, shape).astype(np.int16)
    labels = np.zeros(shape, np.int16)
    for n, label_id in enumerate((L1, T12, T11)):           # k (S) grows upwards
        labels[12:28, 10:26, 2 + 9 * n: 9 + 9 * n] = label_id
    image[labels > 0] = 700
    volume = Volume(image, affine)
    label_map = LabelMap.on_grid(volume, labels)
    scan_path = save_volume(volume, folder / "scan.nii.gz")
    labels_path = save_labelmap(label_map, folder / "labels.nii.gz")
    return scan_path, labels_path, label_map


def open_and_wait(qtbot, window, path, labels=None, timeout=20000):
    with qtbot.waitSignal(window.study_ready, timeout=timeout):
        window.open_path(path, labels)


BATCH_ORDER = ["case-02", "case-04", "case-03", "case-05", "case-01", "case-06"]   # as sorted for review
FAILURE = "The analysis failed: out of memory while segmenting"
REFUSAL = "No spine was found in this scan. Check that it is a CT of the spine."


def box_scan(n_boxes: int) -> Volume:
    """A small CT (1 mm voxels) with ``n_boxes`` bright boxes stacked along S (0: no bone at all)."""
    shape = (40, 36, 9 * max(n_boxes, 1) + 4)
    affine = affine_from_geometry((1.0, 1.0, 1.0), None, (-20.0, -18.0, -100.0))
    image = np.random.default_rng(n_boxes).normal(0, 30, shape).astype(np.int16)
    for n in range(n_boxes):
        image[12:28, 10:26, 2 + 9 * n: 9 + 9 * n] = 700
    return Volume(image, affine)


def synthetic_batch(root):
    """A batch output folder as a batch run leaves it (journal, result folders via the fake pipeline):
    case-01 ok (one vertebra), case-02 and case-04 to review (T12 unsure), case-03 failed, case-05
    refused, case-06 queued and never run. Returns the BatchFolder."""
    from spine_core.io import save_volume
    from spine_core.pipeline.api import SegmentOptions
    from spine_core.review import CASE_FAILED, CASE_REFUSED
    from spine_core.workflows.analysis import analyse_to_folder
    from spine_core.workflows.batch_folder import BatchFolder
    from tests.ui.fake_pipeline import segment

    folder = BatchFolder(root / "batch")
    inputs = root / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for case_id, boxes in (("case-01", 1), ("case-02", 3), ("case-03", 2), ("case-04", 4), ("case-05", 0),
                           ("case-06", 2)):
        volume = box_scan(boxes)
        source = save_volume(volume, inputs / f"{case_id}.nii.gz")
        folder.append(case_id, "queued", source=str(source), kind="file")
        if case_id == "case-06":
            continue
        folder.append(case_id, "running")
        if case_id == "case-03":
            folder.append(case_id, "failed", status="failed", reason=FAILURE, flags=[f"{CASE_FAILED}: {FAILURE}"])
        elif case_id == "case-05":
            folder.append(case_id, "refused", status="failed", reason=REFUSAL, flags=[f"{CASE_REFUSED}: {REFUSAL}"])
        else:
            result, _flags, case = analyse_to_folder(volume, folder.case_dir(case_id), SegmentOptions(),
                                                     segment=segment)
            names = [v.name for v in result.vertebrae]
            folder.append(case_id, "done", status=case.status, flags=list(case.flags),
                          levels=names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}",
                          n_vertebrae=len(names), seconds=2.5)
    return folder
