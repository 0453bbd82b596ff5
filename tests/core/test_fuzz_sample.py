"""A fast seeded sample of the input fuzzer (benchmarks/fuzz_inputs.py; the full run and its numbers
are in docs/BENCHMARKS.md, "Input fuzzing"): mutated DICOM series, NIfTI, MHA/MHD, NRRD and zips
through `spineplan info` and `convert`, with no crash, hang, exit 3, traceback, false refusal or
silent wrong geometry or voxels."""
from collections import Counter

from benchmarks.fuzz_inputs import FAILURES, run_fuzz, summary_table

N = 300


def test_a_sample_of_mutated_inputs_is_refused_warned_or_loaded_right():
    results = run_fuzz(N, seed=7, workers=2, timeout=30)
    assert [r["index"] for r in results] == list(range(N))
    failures = [r for r in results if r["outcome"] in FAILURES]
    assert not failures, summary_table(results)
    outcomes = Counter(r["outcome"] for r in results)
    # The sample exercises both sides: damaged inputs refused, harmless and implied changes loaded.
    assert outcomes["refused"] > N // 3 and outcomes["ok"] > N // 10, outcomes
    assert {r["fmt"] for r in results} == {"dicom", "nii", "nii.gz", "mha", "mhd", "nrrd", "zip"}
