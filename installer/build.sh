#!/usr/bin/env bash
# Builds SpinePlan's offline one-folder Linux bundle with PyInstaller.
#
#   installer/build.sh [--dist DIR] [--work DIR] [--cpu-only]
#
# Result: DIR/spineplan/ (default dist/spineplan/, ~1.4 GB): the program, Python, Qt, VTK,
# onnxruntime (with its CUDA provider unless --cpu-only, which saves ~270 MB) and the models.
# Copy that folder anywhere; users run DIR/spineplan/spineplan.
# The network is used only here, at build time, to install the build environment from the package
# registry into installer/.buildvenv (reused while pyproject.toml and the constraints are unchanged).
# The bundled program never uses the network.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
CPU_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) DIST="$(realpath -m "$2")"; shift 2 ;;
        --work) WORK="$(realpath -m "$2")"; shift 2 ;;
        --cpu-only) CPU_ONLY=1; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
PYTHON=${PYTHON:-python3}
VENV=${SPINEPLAN_BUILD_VENV:-$ROOT/installer/.buildvenv}
CONSTRAINTS="$ROOT/installer/constraints.txt"

# The product's runtime requirements, read from pyproject.toml (no training extra: no torch, no onnx).
runtime_requirements() {
    "$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
}

_pip() {
    if ! "$VENV/bin/python" -m pip "$@" >>"$VENV/install.log" 2>&1; then
        tail -n 30 "$VENV/install.log" >&2
        echo "build.sh: installing the build environment failed (log: $VENV/install.log)" >&2
        exit 1
    fi
}

ensure_build_venv() {
    local stamp="$VENV/.spineplan-build" want
    want="$( (runtime_requirements; cat "$CONSTRAINTS") | sha256sum | cut -c1-16)"
    if [ -x "$VENV/bin/pyinstaller" ] && [ -f "$stamp" ] && grep -qx -- "$want" "$stamp"; then
        return 0
    fi
    echo "Installing the build environment into $VENV (first build, or requirements changed)..." >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    _pip install -q --upgrade pip
    mapfile -t reqs < <(runtime_requirements)
    # The constraints pin the versions this bundle was built and smoke-tested with.
    _pip install -q -c "$CONSTRAINTS" pyinstaller pyinstaller-hooks-contrib "${reqs[@]}"
    if "$VENV/bin/python" -m pip show -q onnxruntime >/dev/null 2>&1; then
        echo "build.sh: both onnxruntime and onnxruntime-gpu are installed in $VENV; they write the" \
             "same module. Remove the build venv and retry." >&2
        exit 1
    fi
    echo "$want" > "$stamp"
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "build.sh: building needs Python 3.11 or newer ('$PYTHON' is $("$PYTHON" --version 2>&1))." >&2
    exit 1
fi
ensure_build_venv
start=$(date +%s)
cd "$ROOT"
mkdir -p "$WORK"
LOG="$WORK/pyinstaller.log"
if ! SPINEPLAN_CPU_ONLY=$CPU_ONLY PYTHONPATH="$ROOT" "$VENV/bin/pyinstaller" --noconfirm --clean \
        --log-level WARN --distpath "$DIST" --workpath "$WORK" installer/spineplan.spec >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "build.sh: PyInstaller failed (full log: $LOG)" >&2
    exit 1
fi
# Expected warnings, not shown: Windows DLLs named in ctypes code; the GTK theme plugin's GTK and the
# onnxruntime GPU providers' CUDA / cuDNN / TensorRT (they come from the target machine, if at all);
# a scipy module its hook names that this scipy no longer has.
grep WARNING "$LOG" | grep -v -E "Library (user32|shell32|ole32) required via ctypes|libqgtk3\.so|libonnxruntime_providers_(cuda|tensorrt)\.so|scipy\.special\._cdflib" || true
BUNDLE="$DIST/spineplan"
echo "Built $BUNDLE in $(( $(date +%s) - start )) s ($(du -sh "$BUNDLE" | cut -f1)). Smoke test:"
echo "  installer/smoke_test.sh $BUNDLE"
