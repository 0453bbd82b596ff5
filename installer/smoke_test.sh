#!/usr/bin/env bash
# Smoke test of a built bundle in a clean environment: env -i, PATH=/usr/bin:/bin, a fresh HOME,
# no Python, venv or PYTHONPATH of the build machine in sight.
#
#   installer/smoke_test.sh BUNDLE_DIR        (e.g. dist/spineplan)
#
# Runs the bundled `spineplan`: --help; demo --quick (a small DICOM series); info on it; segment it
# (labels written, vertebrae found); export the result as DICOM-SEG (highdicom); batch on it (worker
# processes: the frozen 'spawn' path); train (refused cleanly: no torch in the bundle); the GUI
# under Xvfb, the scan with its labels (slices and 3D meshes), saved as a screenshot.
# Prints one line per step with its time; exits non-zero at the first failure, saying which.
# SPINEPLAN_SMOKE_KEEP=1 keeps the scratch folder; SPINEPLAN_SMOKE_DIR=DIR uses (and keeps) DIR:
# DIR/demo (the study), DIR/seg (its analysis), DIR/shot.png, DIR/log/STEP.log.
set -uo pipefail
if [ $# -ne 1 ] || [ ! -x "$1/spineplan" ]; then
    echo "usage: installer/smoke_test.sh BUNDLE_DIR   (the folder holding the 'spineplan' executable)" >&2
    exit 2
fi
BUNDLE="$(cd "$1" && pwd)"
EXE="$BUNDLE/spineplan"
if [ -n "${SPINEPLAN_SMOKE_DIR:-}" ]; then
    mkdir -p "$SPINEPLAN_SMOKE_DIR" && tmp="$(cd "$SPINEPLAN_SMOKE_DIR" && pwd)"
    SPINEPLAN_SMOKE_KEEP=1
else
    tmp="$(mktemp -d /tmp/spineplan-smoke.XXXXXX)"
fi
mkdir -p "$tmp/home" "$tmp/log"
if [ "${SPINEPLAN_SMOKE_KEEP:-0}" = 1 ]; then
    echo "Scratch folder (kept): $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi

fail() {
    echo "SMOKE TEST FAILED: $1" >&2
    [ -n "${2:-}" ] && [ -f "$2" ] && { echo "--- last lines of its output ---" >&2; tail -n 25 "$2" >&2; }
    exit 1
}

# step NAME COMMAND...: runs COMMAND in the clean environment, output to $tmp/log/NAME.log.
step() {
    local name="$1"; shift
    local log="$tmp/log/$name.log" t0 t1 rc
    t0=$(date +%s%N)
    env -i HOME="$tmp/home" PATH=/usr/bin:/bin "$@" >"$log" 2>&1
    rc=$?
    t1=$(date +%s%N)
    LAST_LOG="$log"
    LAST_RC=$rc
    printf '%-9s exit %-3s %6.1f s\n' "$name" "$rc" "$(awk "BEGIN { print ($t1 - $t0) / 1e9 }")"
}
expect_ok() { [ "$LAST_RC" = 0 ] || fail "$1 exited with $LAST_RC" "$LAST_LOG"; }

echo "Smoke test of $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"

step help "$EXE" --help
expect_ok "spineplan --help"
grep -q "segment" "$LAST_LOG" || fail "spineplan --help does not list the commands" "$LAST_LOG"

step demo "$EXE" demo --quick --out "$tmp/demo"
expect_ok "spineplan demo --quick"
n_dcm=$(find "$tmp/demo/dicom" -name '*.dcm' 2>/dev/null | wc -l)
[ "$n_dcm" -gt 10 ] || fail "spineplan demo --quick wrote $n_dcm DICOM files" "$LAST_LOG"

step info "$EXE" info "$tmp/demo/dicom"
expect_ok "spineplan info"
grep -q "Modality: *CT" "$LAST_LOG" || fail "spineplan info does not describe a CT series" "$LAST_LOG"

step segment "$EXE" segment "$tmp/demo/dicom" -o "$tmp/seg"
expect_ok "spineplan segment"
for f in labels.nii.gz centroids.json metrics.json; do
    [ -s "$tmp/seg/$f" ] || fail "spineplan segment wrote no $f" "$LAST_LOG"
done
found=$(grep -o '[0-9]* vertebrae in' "$LAST_LOG" | tail -1 | cut -d' ' -f1)
[ "${found:-0}" -ge 5 ] || fail "spineplan segment found ${found:-no} vertebrae on the demo (expected >= 5)" "$LAST_LOG"
provider=$(grep -o '[A-Za-z]*ExecutionProvider' "$LAST_LOG" | tail -1)
echo "          $found vertebrae, $provider"

step export "$EXE" export "$tmp/seg" --format dicom-seg -o "$tmp/seg.dcm" --source "$tmp/demo/dicom"
expect_ok "spineplan export --format dicom-seg"
[ "$(dd if="$tmp/seg.dcm" bs=1 skip=128 count=4 2>/dev/null)" = DICM ] \
    || fail "spineplan export wrote no DICOM-SEG file" "$LAST_LOG"

step batch "$EXE" batch "$tmp/demo/dicom" -o "$tmp/batch" --workers 1 --fast
expect_ok "spineplan batch (worker processes)"
[ -s "$tmp/batch/summary.csv" ] || fail "spineplan batch wrote no summary.csv" "$LAST_LOG"
state=$(awk -F, 'NR == 2 { print $3 }' "$tmp/batch/summary.csv")
[ "$state" = done ] || fail "spineplan batch: the case's state is '$state', not done" "$tmp/batch/summary.csv"

step train "$EXE" train localizer --config /nonexistent.json
[ "$LAST_RC" = 2 ] || fail "spineplan train should be refused with exit 2 (no torch), got $LAST_RC" "$LAST_LOG"
grep -q "torch" "$LAST_LOG" || fail "spineplan train's refusal does not say torch is missing" "$LAST_LOG"

command -v xvfb-run >/dev/null 2>&1 || fail "xvfb-run is not installed (apt-get install xvfb xauth): cannot test the GUI"
step gui xvfb-run -a -s "-screen 0 1920x1080x24" "$EXE" gui "$tmp/demo/dicom" \
    --labels "$tmp/seg/labels.nii.gz" --screenshot "$tmp/shot.png" --quit
expect_ok "spineplan gui --screenshot"
[ -f "$tmp/shot.png" ] || fail "spineplan gui wrote no screenshot" "$LAST_LOG"
head -c 8 "$tmp/shot.png" | od -An -c | grep -q "P   N   G" || fail "the screenshot is not a PNG" "$LAST_LOG"
# A blank or single-colour window compresses to a few kB; slices and meshes take far more.
shot_kb=$(( $(stat -c %s "$tmp/shot.png") / 1024 ))
[ "$shot_kb" -ge 50 ] || fail "the screenshot is only $shot_kb kB: the window looks empty" "$LAST_LOG"
echo "          screenshot $(file -b "$tmp/shot.png" | cut -d, -f2 | tr -d ' '), $shot_kb kB"
[ "${SPINEPLAN_SMOKE_KEEP:-0}" = 1 ] && echo "Screenshot: $tmp/shot.png"

echo "SMOKE TEST PASSED"
