#!/usr/bin/env bash
# The exact commands that produced the shipped M3 joint network (ct-joint-seg-id) on the project's
# 2-core CPU machine. Run from the repository root: bash training/train_joint_cpu.sh
#   1. the ablation (training/ablate_joint_cpu.sh): four variants, same data and seed; the
#      Transformer variant validated best and is the starting point;
#   2. fine-tune stage 1: partial-FOV phantoms (60 % show a random run of 3-12 levels), real-like
#      bone and noise, real cases oversampled x8 (200 steps);
#   3. fine-tune stage 2: as 2, plus a cross-entropy on the per-voxel level vote (level_ce_weight 1)
#      and instance Dice weight 1, under a 65-minute budget; its best checkpoint is shipped.
# The export goes into runs/candidates (SPINEPLAN_CANDIDATES); it ships by `python -m training.ship` after its checks.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SPINEPLAN_CANDIDATES:-runs/candidates}"
[ -f runs/joint_cpu_transformer/best.pt ] || bash training/ablate_joint_cpu.sh
.venv/bin/spineplan train joint --config training/configs/joint_cpu_ft.json --set net.long_range=transformer \
    --set optim.max_steps=200 --set task.level_ce_weight=0 --set task.instance_weight=0.5 \
    --init-from runs/joint_cpu_transformer/best.pt --out runs/joint_cpu_ft_stage1
.venv/bin/spineplan train joint --config training/configs/joint_cpu_ft.json --set net.long_range=transformer \
    --init-from runs/joint_cpu_ft_stage1/last.pt --out runs/joint_cpu_ft
.venv/bin/spineplan export-onnx runs/joint_cpu_ft/best.pt --out "$out" --id ct-joint-seg-id
