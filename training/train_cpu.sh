#!/usr/bin/env bash
# The exact commands that trained the shipped CT models on the project's 2-core CPU machine.
# Each run stops at its config's wall-clock budget (optim.max_minutes), then is exported with its
# model card into resources/models. Run from the repository root: bash training/train_cpu.sh [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A IDS=([localizer]=ct-spine-localizer [detector2d]=ct-vertebra-detector
                [vertebra_seg]=ct-vertebra-seg [labeler]=ct-vertebra-labeler)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(localizer detector2d vertebra_seg labeler)
for model in "${models[@]}"; do
    .venv/bin/spineplan train "$model" --config "training/configs/${model}_cpu.json" --out "runs/${model}_cpu"
    .venv/bin/spineplan export-onnx "runs/${model}_cpu/best.pt" --out resources/models --id "${IDS[$model]}"
done
