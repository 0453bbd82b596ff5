"""The planning tasks the window runs in Workers: plain functions taking ``progress`` (no Qt here).

Each returns the label map it worked on with its result, so that the window can tell whether the labels
shown are still those (an edit made meanwhile makes the result stale).
"""
from __future__ import annotations

from spine_core.labels import vertebra_name
from spine_core.measure import measure
from spine_core.measure.pedicles import Pedicle
from spine_core.planning.files import ScrewPlan, plan_screws
from spine_core.planning.screws import VertebraBones, suggest_screws
from spine_core.progress import NullProgress
from spine_core.volume import LabelMap, Volume


def measure_labels(labels: LabelMap, image: Volume | None, progress=None) -> tuple[dict, LabelMap]:
    """spine_core.measure.measure (per level, pedicles, alignment); bone density where ``image`` is given."""
    progress = progress or NullProgress()
    progress.update(0.05, "Measuring the vertebrae, pedicles and alignment")
    doc = measure(labels, image)
    progress.update(1.0, "Measured")
    return doc, labels


def suggest(labels: LabelMap, pedicles: list[Pedicle] | None = None, progress=None) -> tuple[ScrewPlan, LabelMap]:
    """Suggested screws for every thoracic and lumbar pedicle; ``pedicles``: already measured on these labels
    (skips measuring them again)."""
    progress = progress or NullProgress()
    progress.update(0.05, "Finding the pedicles" if pedicles is None else "Planning the screws")
    if pedicles is None:
        plan = plan_screws(labels)
    else:
        bones = VertebraBones(labels)
        screws, skipped = suggest_screws(bones, pedicles)
        plan = ScrewPlan(screws, skipped, list(pedicles), bones)
    _ = plan.bones.boxes            # found here, not on the GUI thread (the screw checks keep them)
    progress.update(1.0, f"{len(plan.screws)} screws suggested")
    return plan, labels


def bone_grids(labels: LabelMap, ids, boxes: list | None = None, progress=None) -> tuple[dict, list, LabelMap]:
    """The bone grids (with their distance to the cortex) of vertebrae ``ids``, for checking screws, and every
    label's bounding box (``boxes``: found before on these labels; finding them takes seconds on a large scan)."""
    progress = progress or NullProgress()
    bones = VertebraBones(labels, boxes=boxes)
    ids = sorted(int(i) for i in ids if int(i) in labels.names)
    for n, label_id in enumerate(ids):
        progress.update(n / max(len(ids), 1), f"Preparing {vertebra_name(label_id)} for the screw check")
        _ = bones.grid(label_id).signed_distance
    return {i: bones.grids[i] for i in ids}, bones.boxes, labels
