#!/usr/bin/env bash
# M3 joint network on the 2-core CPU: the shipped variant (selective state space + CBAM) and its
# ablations, same data, steps and seed; two runs at a time, one torch thread each.
# Run from the repository root: bash training/ablate_joint_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
train() {   # NAME [--set ...]
    local name=$1; shift
    .venv/bin/spineplan train joint --config training/configs/joint_cpu.json "$@" \
        --out "runs/joint_cpu_${name}" > "runs/joint_cpu_${name}.log" 2>&1
}
mkdir -p runs
train ssm & train transformer --set net.long_range=transformer & wait
train none --set net.long_range=none & train ssm_nocbam --set net.cbam=false & wait
# (the shipped model continues from the best variant: training/train_joint_cpu.sh)
