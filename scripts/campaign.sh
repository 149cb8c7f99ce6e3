#!/usr/bin/env bash
# The training campaign of the shipped models (issue 14), step by step, on ../shared/data (v2).
#
#   scripts/campaign.sh <step>
#
# steps: devset search shipped teacher student_nokd student_long teacher_cache student_atkl baseline ship kd results log
#        backup restore lane average
#
# Runs live in $RUNS (default ../runs, outside the repository). Start long steps from a worktree pinned at a
# commit, in the background, so that work on the repository never changes a running job:
#
#   git worktree add ../train-src <commit> && cd ../train-src
#   nohup scripts/campaign.sh teacher > ../runs/teacher.log 2>&1 &
#
# Each session starts (or resumes) the campaign with its two lanes, one per core (`lane` below):
#
#   nohup scripts/campaign.sh lane teacher >> ../runs/lane_teacher.log 2>&1 &
#   nohup scripts/campaign.sh lane student >> ../runs/lane_student.log 2>&1 &
#
# Every training step resumes from its last checkpoint when rerun (same command), continues its data stream
# and its interrupted epoch, and exits 0 only when the run is finished (130/143 interrupted). Each run writes
# progress.jsonl (steps, audio seen, CPU hours) and snapshots/ that `log` scores on the development set.
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.."
RUNS=${RUNS:-../runs}
DEV=$RUNS/devset
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
# Pool of the teacher-knowledge cache: 27000 mixtures of 2 s (15 h), visited 4 times by a 60 h student.
CACHE_EXAMPLES=${CACHE_EXAMPLES:-27000}

# The training precision of the long runs: whichever of float32 and mixed_bfloat16 trains the student
# with less CPU per step on this machine (they differ by CPU: bfloat16 won 1.4x on one AMD EPYC,
# float32 1.4x on an Intel Xeon without AMX), measured once per CPU (model and feature flags)
# by benchmarks/training_speed.py into $RUNS/precision-<cpu>. A CPU without bfloat16 instructions
# (avx512_bf16, amx_bf16) emulates them at a fraction of float32's speed, so there it is float32 unmeasured.
# A run may change precision between processes: its variables and checkpoints are float32 either way.
# PRECISION=<policy> overrides. THREADS=<n> overrides the runs' intra-op threads (flags/campaign/common.cfg:
# one per run, so that two runs share the two cores; THREADS=2 when one run has the machine to itself).
precision() {
  if [ -n "${PRECISION:-}" ]; then echo "$PRECISION"; return; fi
  local cpu file
  cpu=$(grep -m2 -E "^(model name|flags)" /proc/cpuinfo | md5sum | cut -c1-12)
  file=$RUNS/precision-$cpu
  if [ ! -s "$file" ]; then
    mkdir -p "$RUNS"
    if ! grep -m1 "^flags" /proc/cpuinfo | grep -qwE "avx512_bf16|amx_bf16"; then
      echo "campaign.sh: no bfloat16 instructions on this CPU: training in float32" >&2
      echo float32 > "$file"
    else
      python benchmarks/training_speed.py --presets=distil_dccrn --settings=float32,mixed_bfloat16 \
        --loss=si_snr_spectral --spectral_weight=10 --batch=4 --seconds=2 --threads=1 --steps=4 --warmup=2 \
        --output= --fastest_to="$file" >&2 || return 1
    fi
  fi
  cat "$file"
}

# evaluate <model> <system> <folder>: the development-set scores of one model (dccrn-evaluate, one thread).
evaluate() {
  python -m trainers.evaluate --clean_dir="$DEV/clean" --noisy_dir="$DEV/noisy" --model="$1" \
    --model_name="$2" --metrics=pesq_wb,stoi,si_snr,dnsmos --threads=1 --output_dir="$3"
}

# backup_step <run>: the step of the run's committed weight backup (campaign/weights/<run>.json, from `backup`).
backup_step() {
  python -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "campaign/weights/$1.json"
}

# average_file <run> <step> <K>: the mean of the run's K snapshots up to <step> (keras_dccrn.training.run_dir).
average_file() {
  python -c "import sys; from keras_dccrn.training.run_dir import average_path as p; print(p(*sys.argv[1:]))" \
    "$RUNS/$1" "$2" "$3"
}

# finished_record <run>: true when the run's folder is gone and its committed record (docs/campaign/<run>.config.json
# and .progress.jsonl, from `log`) shows that it finished its planned epochs, so that a lost machine does not
# train a finished run again.
finished_record() {
  [ ! -d "$RUNS/$1" ] && [ -f "docs/campaign/$1.config.json" ] && [ -f "docs/campaign/$1.progress.jsonl" ] &&
    python -c "import json, sys; from keras_dccrn.training import run_dir as r
sys.exit(0 if r.finished(json.load(open(sys.argv[1])), r.read_progress_file(sys.argv[2])) else 1)" \
      "docs/campaign/$1.config.json" "docs/campaign/$1.progress.jsonl"
}

# run_args <run>...: `--run=<run>=<folder>` for each run that has its folder in $RUNS; for a run whose folder
# is gone, its committed record instead (docs/campaign/<run>.config.json, .progress.jsonl, .devset_scores.jsonl
# from `log`), copied into $RUNS/records/<run>; runs with neither are left out.
run_args() {
  local r rec
  for r in "$@"; do
    if [ -d "$RUNS/$r" ]; then
      echo "--run=$r=$RUNS/$r"
    elif [ -f "docs/campaign/$r.config.json" ] && [ -f "docs/campaign/$r.progress.jsonl" ]; then
      rec=$RUNS/records/$r
      mkdir -p "$rec"
      cp "docs/campaign/$r.config.json" "$rec/config.json"
      cp "docs/campaign/$r.progress.jsonl" "$rec/progress.jsonl"
      if [ -f "docs/campaign/$r.devset_scores.jsonl" ]; then
        cp "docs/campaign/$r.devset_scores.jsonl" "$rec/devset_scores.jsonl"
      fi
      echo "--run=$r=$rec"
    fi
  done
}

step=${1:?usage: $0 devset|search|shipped|teacher|student_nokd|student_long|teacher_cache|student_atkl|baseline|ship|kd|results|log|backup|restore|lane|average}
case "$step" in  # the training steps' precision first, so that a failed measurement stops the script
  teacher|student_nokd|student_long|student_atkl|baseline|restore)
    prec=$(precision)
    runtime=(--mixed_precision="$prec" ${THREADS:+--threads="$THREADS"}) ;;
esac
case "$step" in
  devset)  # 200 pairs of held-out speakers and noises (v2 validation split), fixed seed
    python -m trainers.mix --flagfile=flags/devset.cfg --output_dir="$DEV" ;;
  search)  # equal-budget short runs, two at a time (one thread each), then the comparison page
    for pair in "a_base b_spectral" "c_cosine d_reverb30" "e_seg4 f_batch8"; do
      for v in $pair; do
        python -m trainers.train --flagfile="flags/recipe_search/$v.cfg" --run_dir="$RUNS/search/$v" \
          > "$RUNS/search/$v.log" 2>&1 &
      done
      wait
    done
    python benchmarks/recipe_search.py --devset="$DEV" --limit=100 --baseline=a_base \
      $(for v in a_base b_spectral c_cosine d_reverb30 e_seg4 f_batch8; do
          [ -d "$RUNS/search/$v" ] && echo "--run=$v=$RUNS/search/$v"; done) \
      --output=docs/recipe_search.md ;;
  teacher)
    python -m trainers.train --flagfile=flags/campaign/teacher.cfg --run_dir="$RUNS/teacher" \
      "${runtime[@]}" ;;
  student_nokd)
    python -m trainers.train --flagfile=flags/campaign/student_nokd.cfg --run_dir="$RUNS/student_nokd" \
      "${runtime[@]}" ;;
  student_long)  # student_nokd continued to 120 h (flags/campaign/student_long.cfg) from the finished 60 h run,
    # or from student_nokd's committed backup and progress log when that folder is gone; reruns resume its
    # checkpoints. A student_long whose own folder was lost continues from its own committed backup (`backup`,
    # as `restore student_long` does), or, without one, starts over at 27000; either way its committed log is
    # kept up to that step and the later steps count as discarded, with their CPU time. A finished run whose
    # folder was lost is not trained again (its mean of snapshots is the shipped default).
    if finished_record student_long; then
      echo "student_long: finished (docs/campaign/student_long.progress.jsonl), not trained again"; exit 0
    fi
    from=$RUNS/student_nokd/model.keras; log=$RUNS/student_nokd/progress.jsonl; at=27000
    [ -f "$from" ] || from=campaign/weights/student_nokd.npz
    [ -f "$log" ] || log=docs/campaign/student_nokd.progress.jsonl
    if [ ! -d "$RUNS/student_long" ] && [ -f campaign/weights/student_long.json ]; then
      from=campaign/weights/student_long.npz; at=$(backup_step student_long)
      log=docs/campaign/student_long.progress.jsonl
    fi
    python -m trainers.train --flagfile=flags/campaign/student_long.cfg --run_dir="$RUNS/student_long" \
      --init_weights="$from" --init_step="$at" --init_progress="$log" "${runtime[@]}" ;;
  teacher_cache)  # the finished teacher's knowledge for the AT-KL student (same data flags)
    python -m trainers.teacher_cache --flagfile=flags/campaign/student_atkl.cfg --teacher="$RUNS/teacher" \
      --cache_dir="$RUNS/teacher_knowledge" --cache_examples="$CACHE_EXAMPLES" ;;
  student_atkl)
    python -m trainers.distill --flagfile=flags/campaign/student_atkl.cfg \
      --teacher_cache="$RUNS/teacher_knowledge" --run_dir="$RUNS/student_atkl" "${runtime[@]}" ;;
  baseline)
    python -m trainers.train --flagfile=flags/campaign/dccrn_cl.cfg --run_dir="$RUNS/dccrn_cl" \
      "${runtime[@]}" ;;
  shipped)  # the shipped default model on the development set (the bar the campaign's models must clear)
    evaluate distil_dccrn shipped_v0_distil_dccrn "$RUNS/scores/shipped_v0"
    mkdir -p docs/campaign && cp "$RUNS/scores/shipped_v0/summary.md" docs/campaign/shipped_devset.md ;;
  backup)  # best weights (or a later snapshot) of the long runs as committed weight archives (README, "Training campaign")
    python scripts/backup_weights.py --output_dir=campaign/weights --float16=teacher \
      $(for r in teacher student_long dccrn_cl; do  # unfinished supervised runs (a distiller's weights are not a
          # student's; student_nokd's archive holds its final best weights, which student_long starts from)
          if [ -f "$RUNS/$r/best.weights.h5" ] || [ -d "$RUNS/$r/snapshots" ]; then echo "--run=$r=$RUNS/$r"; fi
        done) ;;
  restore)  # scripts/campaign.sh restore <run>: a supervised run whose folder was lost continues from its
    # committed backup (campaign/weights/<run>.npz at the step of <run>.json) and progress log; afterwards
    # `scripts/campaign.sh <run>` (or this command again) resumes it from its checkpoints as usual.
    run=${2:?usage: $0 restore teacher|student_nokd|student_long|dccrn_cl}
    at=$(backup_step "$run")
    scores=docs/campaign/$run.devset_scores.jsonl  # the snapshot scores up to that step carry over
    if [ -f "$scores" ] && [ ! -f "$RUNS/$run/devset_scores.jsonl" ]; then
      mkdir -p "$RUNS/$run"
      python -c "import json, sys; sys.stdout.writelines(l for l in open(sys.argv[1]) if l.strip() and \
json.loads(l)['step'] <= int(sys.argv[2]))" "$scores" "$at" > "$RUNS/$run/devset_scores.jsonl"
    fi
    python -m trainers.train --flagfile="flags/campaign/$run.cfg" --run_dir="$RUNS/$run" \
      --init_weights="campaign/weights/$run.npz" --init_step="$at" \
      --init_progress="docs/campaign/$run.progress.jsonl" "${runtime[@]}" ;;
  ship)  # scripts/campaign.sh ship <run> <snapshot step>|<step>_mean<K>|final <name>: score a snapshot (or, with
    # <step>_mean<K>, the mean of the K snapshots up to <step> from `average`; with `final`, the finished run's
    # model.keras: its best validation weights over the whole budget, scored as system <run>, the scores `kd`
    # then reuses), ship it, choose its default file
    run=${2:?usage: $0 ship <run> <step>|<step>_mean<K>|final <name>}; at=${3:?step}; name=${4:?name}
    if [ "$at" = final ]; then
      snap=$RUNS/$run/model.keras; system=$run
    elif [[ "$at" =~ ^([0-9]+)_mean([0-9]+)$ ]]; then
      snap=$(average_file "$run" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"); system="${run}_step$at"
      [ -f "$snap" ] || { echo "ship: $snap: no such file (scripts/campaign.sh average $run <K> first)" >&2; exit 2; }
    else
      snap=$(printf "%s/%s/snapshots/step_%07d.keras" "$RUNS" "$run" "$at"); system="${run}_step$at"
    fi
    if [ "$RUNS/scores/$system/per_file.csv" -nt "$snap" ]; then  # scored after the file was written
      echo "ship: $system already scored ($RUNS/scores/$system)"
    else
      evaluate "$snap" "$system" "$RUNS/scores/$system"
    fi
    mkdir -p docs/campaign && cp "$RUNS/scores/$system/summary.md" "docs/campaign/${system}_devset.md"
    cp "$RUNS/scores/$system/per_file.csv" "docs/campaign/${system}.per_file.csv"
    python scripts/ship.py --name="$name" --run_dir="$RUNS/$run" --model="$snap" \
      --scores="$RUNS/scores/$system" --system="$system" --tflite --overwrite
    # The default file is chosen among the streaming mixed int8 files (one hop per invoke, and
    # ship.py --multi_hop hops per invoke), as each compared file costs about 15 CPU minutes on the
    # 200 files: the speed of the others is in docs/benchmarks/tflite.md, and streaming dynamic int8
    # cost 0.028 PESQ-WB at step 6000 (docs/benchmarks/default_variant.md, commit 188d463).
    multi=$(cd "saved_models/$name" && ls "${name}"_streaming_k*_mixed_int8.tflite)
    python benchmarks/default_variant.py --folder="saved_models/$name" --devset="$DEV" --write_manifest \
      --variants="${name}_streaming_mixed_int8.tflite,$multi" ;;
  average)  # scripts/campaign.sh average <run> <K>: the mean of the weights of the run's last K snapshots
    # (scripts/average_snapshots.py; written once per newest snapshot), scored on the development set as
    # system <run>_step<step>_mean<K> like `ship` scores a snapshot (only when not scored since the file was
    # written), its scores copied to docs/campaign/ where `results` reads them
    run=${2:?usage: $0 average <run> <K>}; k=${3:?K}
    last=$(ls "$RUNS/$run/snapshots" | sort | tail -1)
    step=${last#step_}; step=$((10#${step%.keras}))
    file=$(average_file "$run" "$step" "$k")
    [ -f "$file" ] || python scripts/average_snapshots.py --run_dir="$RUNS/$run" --last="$k"
    system="${run}_step${step}_mean$k"
    if [ "$RUNS/scores/$system/per_file.csv" -nt "$file" ]; then
      echo "average: $system already scored ($RUNS/scores/$system)"
    else
      evaluate "$file" "$system" "$RUNS/scores/$system"
    fi
    cp "$RUNS/scores/$system/summary.md" "docs/campaign/${system}_devset.md"
    cp "$RUNS/scores/$system/per_file.csv" "docs/campaign/${system}.per_file.csv" ;;
  results)  # docs/results.md: every scored system (docs/campaign/*.per_file.csv, from `ship` and `kd`) and the peers
    # (benchmarks/peers.py --per_file) on the development set, the shipped default against NSNet2, RNNoise
    # and DTLN, learning curves against CPU hours, budgets, and AT-KL vs no-KD at equal budget (step `kd`)
    python benchmarks/results.py --scores=docs/benchmarks/peers_per_file.csv \
      $(for f in docs/campaign/*.per_file.csv; do [ -f "$f" ] && echo "--scores=$f"; done) \
      $(run_args teacher student_atkl student_nokd student_long dccrn_cl) \
      --default=distil_dccrn --peers=nsnet2,rnnoise,dtln \
      --headline=student_atkl,student_nokd --output=docs/results.md ;;
  kd)  # the paper's comparison at equal budget: both finished students (model.keras: each run's best
    # validation weights over its whole budget) on the development set
    for run in student_atkl student_nokd; do
      if [ "docs/campaign/$run.per_file.csv" -nt "$RUNS/$run/model.keras" ]; then
        echo "kd: $run already scored (docs/campaign/$run.per_file.csv, by \`ship $run final\`)"; continue
      fi
      evaluate "$RUNS/$run/model.keras" "$run" "$RUNS/scores/$run"
      cp "$RUNS/scores/$run/summary.md" "docs/campaign/${run}_devset.md"
      cp "$RUNS/scores/$run/per_file.csv" "docs/campaign/$run.per_file.csv"
    done ;;
  lane)  # scripts/campaign.sh lane teacher|student: one core's chain of training steps, in order; the first
    # command of every session (machine kept or lost): rerunning it resumes the chain where it stopped, as a
    # finished step returns at once. It stops at the first step that does not finish (an interrupted step
    # exits 130/143), with that step's status.
    #   teacher: `restore teacher` when its run folder is gone and a backup is committed, then `teacher`,
    #            `teacher_cache` and `student_atkl`;
    #   student: `student_long` (which continues from its own backup when its folder is gone), then
    #            `baseline` (DCCRN-CL, as budget allows).
    # Scoring, shipping and the KD comparison stay separate steps (`log`, `ship`, `kd`, `results`).
    lane=${2:?usage: $0 lane teacher|student}
    case "$lane" in
      teacher)
        if [ ! -d "$RUNS/teacher" ] && [ -f campaign/weights/teacher.json ]; then
          bash "$SELF" restore teacher
        fi
        chain=(teacher teacher_cache student_atkl) ;;
      student)
        chain=(student_long baseline) ;;
      *)
        echo "unknown lane: $lane (teacher or student)" >&2; exit 2 ;;
    esac
    for s in "${chain[@]}"; do
      echo "campaign.sh lane $lane: $s ($(date -u +%FT%TZ))"
      bash "$SELF" "$s"
    done ;;
  log)  # score new snapshots on the development set, write docs/campaign.md (+ raw logs, curves)
    python benchmarks/campaign.py --devset="$DEV" --score \
      $(run_args teacher student_nokd student_long student_atkl dccrn_cl) \
      --output=docs/campaign.md ;;
  *)
    echo "unknown step: $step" >&2; exit 2 ;;
esac
