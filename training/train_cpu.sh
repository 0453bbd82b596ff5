#!/usr/bin/env bash
# The exact commands that trained the shipped CT models on the project's 2-core CPU machine.
# Each run stops at its config's wall-clock budget (optim.max_minutes) or step count, then is exported with its
# model card into runs/candidates (SPINEPLAN_CANDIDATES), never straight over a shipped model: a candidate
# ships only after its checks (docs/BENCHMARKS.md), by `python -m training.ship`.
# Run from the repository root: bash training/train_cpu.sh [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SPINEPLAN_CANDIDATES:-runs/candidates}"
declare -A IDS=([localizer]=ct-spine-localizer [detector2d]=ct-vertebra-detector
                [vertebra_seg]=ct-vertebra-seg [labeler]=ct-vertebra-labeler)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(localizer detector2d vertebra_seg labeler)   # detector2d_thick: built, not shipped (docs/MODELS.md)
for model in "${models[@]}"; do
    if [ "$model" = detector2d_thick ]; then
        # the detector for thick axial slices: a fixed step count, the last checkpoint (validation
        # runs on thin slices, so it does not choose); one thread, as it trained beside a fold
        .venv/bin/spineplan train detector2d --config training/configs/detector2d_thick_cpu.json \
            --set optim.threads=1 --out runs/detector2d_thick_cpu
        .venv/bin/spineplan export-onnx runs/detector2d_thick_cpu/last.pt --out "$out" \
            --id ct-vertebra-detector-thick
        continue
    fi
    if [ "$model" = vertebra_seg ]; then
        # step counts, not the configs' time budgets, so that the shipped model and the folds train
        # alike on any machine: the first run, then on real-like bone and noise to the fine-tune's count
        # (both from training/loco.py RECIPE); one thread, beside a fold. The last checkpoint is shipped
        # because the restored best score belongs to the first run's validation set. Each run resumes
        # from its own last.pt after an interruption; a started fine-tune skips the first run.
        steps() { .venv/bin/python -c "from training.loco import RECIPE; print({c: n for _, c, _, _, n in RECIPE}['$1'])"; }
        start=runs/vertebra_seg_cpu_ft/last.pt
        if [ ! -f "$start" ]; then
            first=(); [ -f runs/vertebra_seg_cpu/last.pt ] && first=(--resume runs/vertebra_seg_cpu/last.pt)
            .venv/bin/spineplan train vertebra_seg --config training/configs/vertebra_seg_cpu.json --out runs/vertebra_seg_cpu \
                --set optim.max_minutes=0 --set optim.max_steps="$(steps vertebra_seg_cpu.json)" --set optim.threads=1 "${first[@]}"
            start=runs/vertebra_seg_cpu/best.pt
        fi
        .venv/bin/spineplan train vertebra_seg --config training/configs/vertebra_seg_cpu_ft.json \
            --resume "$start" --out runs/vertebra_seg_cpu_ft \
            --set optim.max_minutes=0 --set optim.max_steps="$(steps vertebra_seg_cpu_ft.json)" --set optim.threads=1
        .venv/bin/spineplan export-onnx runs/vertebra_seg_cpu_ft/last.pt --out "$out" --id ct-vertebra-seg
        continue
    fi
    .venv/bin/spineplan train "$model" --config "training/configs/${model}_cpu.json" --out "runs/${model}_cpu"
    .venv/bin/spineplan export-onnx "runs/${model}_cpu/best.pt" --out "$out" --id "${IDS[$model]}"
done
echo "Exported into $out. Check it (docs/BENCHMARKS.md), then ship it: .venv/bin/python -m training.ship $out/ID"
