#!/usr/bin/env bash
# Reproduces the v1 models, docs/results_v1.md and the benchmark pages from ../shared/data, step by step.
#
#   scripts/reproduce_results.sh <step>      steps: devset teacher students baseline enhance score ship results bench
#
# Runs live in $RUNS (default: runs/, outside git). Every training step resumes from its last checkpoint when
# rerun, so a step interrupted by a session limit is continued by running it again. Budgets (2-core CPU):
# flags/cpu_budget.cfg (batch 4 x 2 s segments, bfloat16) with the --epochs below (100 steps per epoch).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DEV=$RUNS/devset
BUDGET="--flagfile=flags/cpu_budget.cfg"

step=${1:?usage: $0 devset|teacher|students|baseline|enhance|score|ship|results|bench}
case "$step" in
  devset)  # 200 pairs from held-out speakers and noises, fixed seed
    dccrn-mix --flagfile=flags/devset.cfg --output_dir="$DEV" ;;
  teacher)  # causal Uformer, 8 epochs x 100 steps
    dccrn-train --flagfile=flags/uformer.cfg $BUDGET --run_dir="$RUNS/uformer" --epochs=8 ;;
  students)  # equal budgets: 8 epochs x 100 steps each, one thread each, run side by side
    dccrn-train --flagfile=flags/distil_dccrn_nokd.cfg $BUDGET --run_dir="$RUNS/student_nokd" --epochs=8 \
      --threads=1 &
    dccrn-distill --flagfile=flags/distil_dccrn_atkl.cfg $BUDGET --teacher="$RUNS/uformer" \
      --run_dir="$RUNS/student_atkl" --epochs=8 --threads=1
    wait ;;
  baseline)  # DCCRN-CL, 4 epochs x 100 steps (the smallest budget: time ran out)
    dccrn-train --flagfile=flags/dccrn_cl.cfg $BUDGET --run_dir="$RUNS/dccrn_cl" --epochs=4 --threads=1 ;;
  enhance)  # each model over the development set's noisy files
    for run in uformer dccrn_cl student_nokd student_atkl; do
      dccrn-enhance --model="$RUNS/$run/model.keras" --input="$DEV/noisy" --output="$RUNS/enhanced/$run" \
        --threads=1 --overwrite
    done ;;
  score)
    dccrn-evaluate --clean_dir="$DEV/clean" --noisy_dir="$DEV/noisy" --workers=2 \
      --system=uformer="$RUNS/enhanced/uformer" --system=dccrn_cl="$RUNS/enhanced/dccrn_cl" \
      --system=student_nokd="$RUNS/enhanced/student_nokd" --system=student_atkl="$RUNS/enhanced/student_atkl" \
      --output_dir="$RUNS/scores" ;;
  ship)
    python scripts/ship.py --name=distil_dccrn --run_dir="$RUNS/student_atkl" --scores="$RUNS/scores" \
      --system=student_atkl --tflite --overwrite \
      --description="Distil-DCCRN student (1.16M parameters, causal) distilled with AT-KL from the causal Uformer."
    python scripts/ship.py --name=distil_dccrn_nokd --run_dir="$RUNS/student_nokd" --scores="$RUNS/scores" \
      --system=student_nokd --overwrite \
      --description="Distil-DCCRN student trained alone (no distillation), the same budget as distil_dccrn."
    python scripts/ship.py --name=dccrn_cl --run_dir="$RUNS/dccrn_cl" --scores="$RUNS/scores" \
      --system=dccrn_cl --overwrite --description="DCCRN-CL baseline (Hu et al. 2020), 3.67M parameters."
    python scripts/ship.py --name=uformer --run_dir="$RUNS/uformer" --scores="$RUNS/scores" \
      --system=uformer --overwrite \
      --description="Causal Uformer teacher (Fu et al. 2022), 9.28M parameters, used to distil distil_dccrn." ;;
  results)
    python benchmarks/results.py --scores="$RUNS/scores" --run=uformer="$RUNS/uformer" \
      --run=dccrn_cl="$RUNS/dccrn_cl" --run=student_nokd="$RUNS/student_nokd" \
      --run=student_atkl="$RUNS/student_atkl" --audio=noisy="$DEV/noisy" --audio=clean="$DEV/clean" \
      --audio=uformer="$RUNS/enhanced/uformer" \
      --audio=dccrn_cl="$RUNS/enhanced/dccrn_cl" --audio=student_nokd="$RUNS/enhanced/student_nokd" \
      --audio=student_atkl="$RUNS/enhanced/student_atkl" --headline=student_atkl,student_nokd \
      --output=docs/results_v1.md ;;
  bench)
    python benchmarks/tflite_speed.py --model="$RUNS/student_atkl/model.keras" --devset="$DEV" \
      --devset_limit=20
    python benchmarks/peers.py --devset="$DEV" --limit=40 --model=distil_dccrn="$RUNS/student_atkl/model.keras" \
      --model=distil_dccrn_nokd="$RUNS/student_nokd/model.keras" ;;
  *)
    echo "unknown step: $step" >&2; exit 2 ;;
esac
