# Shared by run.sh and test.sh: create .venv and (re)install only when the project's requirements changed.
PYTHON=${PYTHON:-python3}

# pip and setuptools chatter goes to a log; a user sees it only when the install fails.
_pip() {
    if ! .venv/bin/python -m pip "$@" >>.venv/install.log 2>&1; then
        tail -n 30 .venv/install.log >&2
        echo "Installing SpinePlan failed (full log: .venv/install.log)." >&2
        exit 1
    fi
}

ensure_venv() {
    local extras="$1"
    local stamp=".venv/.spineplan-installed"
    local want
    want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && grep -qx -- "$want" "$stamp"; then
        return 0
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "SpinePlan needs Python 3.10 or newer ('$PYTHON' is $("$PYTHON" --version 2>&1))." >&2
        exit 1
    fi
    echo "Installing SpinePlan into .venv (first run, or requirements changed; about a minute)..." >&2
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    _pip install -q --upgrade pip
    # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build (see ../shared/STACK.md).
    _pip install -q "torch==2.13.0"
    _pip install -q -e ".[$extras]"
    # Keep exactly one onnxruntime package: the CPU and GPU wheels write the same module.
    if .venv/bin/python -m pip show -q onnxruntime >/dev/null 2>&1; then
        .venv/bin/python -m pip uninstall -y -q onnxruntime >/dev/null
        .venv/bin/python -m pip install -q --force-reinstall --no-deps onnxruntime-gpu >/dev/null
    fi
    echo "$want" > "$stamp"
}
