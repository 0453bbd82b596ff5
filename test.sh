#!/usr/bin/env bash
# Installs what the tests need (Xvfb and the Qt/Mesa libraries via apt when root) and runs the suite.
# ./test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh

APT_PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libglx-mesa0 libegl1 libegl-mesa0 libxkbcommon-x11-0
 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0
 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libfontconfig1 libdbus-1-3 fonts-dejavu-core dicom3tools dcmtk"

missing_system_packages() {
    command -v Xvfb >/dev/null 2>&1 || return 0
    command -v dciodvfy >/dev/null 2>&1 || return 0
    command -v dcm2json >/dev/null 2>&1 || return 0
    ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 || return 0
    return 1
}

if missing_system_packages; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Xvfb, Qt/Mesa libraries and DICOM tools with apt..." >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
    else
        echo "Xvfb, the Qt/Mesa libraries or dicom3tools/dcmtk are missing. As root run:" >&2
        echo "  apt-get install -y $(echo $APT_PACKAGES)" >&2
        echo "Tests that need them will be skipped." >&2
    fi
fi

ensure_venv "training,dev"
# Two worker processes (the machine's two cores), a test file's tests together on one: the suite takes
# ~10 minutes instead of ~18. SPINEPLAN_TEST_WORKERS=0 runs everything in this process.
exec .venv/bin/python -m pytest -n "${SPINEPLAN_TEST_WORKERS:-2}" --dist loadfile "$@"
