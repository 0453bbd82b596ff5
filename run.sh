#!/usr/bin/env bash
# Quick start: ./run.sh            -> installs into .venv on first use, then runs SpinePlan on its demo study
#              ./run.sh ARGS...    -> spineplan ARGS...
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv training
if [ $# -gt 0 ]; then
    exec .venv/bin/spineplan "$@"
fi
exec .venv/bin/spineplan quickstart
