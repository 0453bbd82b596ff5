"""training.device_mr: what travels to the GPU host is the case the networks read (within 8 bits, cut to
the labelled slices and their stride margin), and every fold's run leaves out exactly its test cases."""
import json

import numpy as np

from training.device_mr import LEVELS, MARGIN, load_pack_case, plan, save_pack_case
from training.mr_data import MRCase


def _case(name, labelled=(10, 14)):
    rng = np.random.default_rng(0)
    labels = np.zeros((30, 20, 20), np.int16)
    labels[labelled[0]:labelled[1], 5:9, 5:9] = 22
    labels[labelled[0]:labelled[1], 10:12, 5:9] = 122
    slices = np.flatnonzero(labels.reshape(30, -1).max(axis=1) > 0)
    return MRCase(name, rng.random((30, 20, 20)).astype(np.float32), labels, True, True, slices)


def test_pack_round_trip(tmp_path):
    case = _case("VB3_01")
    save_pack_case(tmp_path, case)
    back = load_pack_case(tmp_path, "VB3_01")
    lo = 10 - MARGIN
    assert back.image.shape == (4 + 2 * MARGIN, 20, 20)
    assert np.max(np.abs(back.image - case.image[lo:14 + MARGIN])) <= 0.5 / LEVELS + 1e-6
    assert np.array_equal(back.labels, case.labels[lo:14 + MARGIN])
    assert np.array_equal(back.slices, case.slices - lo)
    assert back.has_body and back.has_disc


def test_plan_holds_out_each_folds_cases(tmp_path):
    names = ["IVD_1", "VB2_1", "VB3_1", "VB3_2"]
    for n in names:
        save_pack_case(tmp_path, _case(n))
    (tmp_path / "folds.json").write_text(json.dumps({"fold0": ["IVD_1", "VB3_1"], "fold1": ["VB2_1", "VB3_2"]}))
    runs = plan(tmp_path)
    assert runs == {"fold0": ["VB2_1", "VB3_2"], "fold1": ["IVD_1", "VB3_1"], "all": names}


def test_bundle_brings_back_models_logs_and_the_checkpoint_to_resume(tmp_path):
    import tarfile

    from training.device_mr import bundle

    run = tmp_path / "runs" / "fold2"
    (run / "models").mkdir(parents=True)
    (run / "models" / "mr-spine-seg.onnx").write_bytes(b"onnx")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "last.pt").write_bytes(b"weights")
    (run / "step_100.pt").write_bytes(b"old")
    written = bundle(tmp_path / "runs", ["fold2", "fold3"], tmp_path / "out")      # fold3 never started
    assert [p.name for p in written] == ["mr_fold2.tar.gz", "last_fold2.pt"]
    with tarfile.open(written[0]) as tar:
        assert sorted(tar.getnames()) == ["fold2/metrics.jsonl", "fold2/models/mr-spine-seg.onnx"]
    assert written[1].read_bytes() == b"weights"
