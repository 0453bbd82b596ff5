"""Review rows (spine_core.review): one flag vocabulary for the CLI, the workstation and batch."""
from types import SimpleNamespace

import numpy as np

from spine_core.review import (AT_EDGE, GAP_ABOVE, LOW_CONFIDENCE, SMALL, review_summary, vertebra_rows)
from spine_core.volume import LabelMap, affine_from_geometry


def test_rows_carry_label_map_and_analysis_flags_once():
    array = np.zeros((30, 30, 60), np.int16)
    array[10:20, 10:20, 45:55] = 20          # L1
    array[10:20, 10:20, 30:40] = 21          # L2
    array[12:16, 12:16, 20:24] = 22          # L3: small
    array[10:20, 10:20, 0:8] = 24            # L5 at the border, L4 absent
    labels = LabelMap(array, affine_from_geometry((1.0, 1.0, 1.0), None, (0.0, 0.0, 0.0)),
                      names={20: "L1", 21: "L2", 22: "L3", 24: "L5"})
    analysis = {24: SimpleNamespace(confidence=0.3, flags=(LOW_CONFIDENCE, AT_EDGE)),
                20: SimpleNamespace(confidence=0.9, flags=())}
    rows = {row.name: row for row in vertebra_rows(labels, analysis)}
    assert [r.name for r in vertebra_rows(labels, analysis)] == ["L1", "L2", "L3", "L5"]
    assert rows["L3"].flags == (SMALL,)
    assert rows["L5"].flags == (AT_EDGE, GAP_ABOVE, LOW_CONFIDENCE)      # each flag once
    assert rows["L1"].flags == () and rows["L1"].confidence == 0.9 and rows["L2"].confidence is None
    assert abs(rows["L1"].volume_ml - 1.0) < 1e-9
    assert review_summary(list(rows.values())) == ["L3: small", f"L5: {AT_EDGE}, {GAP_ABOVE}, {LOW_CONFIDENCE}"]
