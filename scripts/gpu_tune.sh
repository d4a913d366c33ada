#!/usr/bin/env bash
# The shipped dynamics model tuned on a lent GPU machine (the library's `device` tool) in a few
# variants side by side, each then evaluated on three held-out sets with the shipped key map and
# calibrated by dreams, all inside one call of at most 10 minutes. Run from the repository root
# there, with a genie built for that machine's torch:
#
#   bash scripts/build_for_torch.sh 2.11.0 .gpu        # here, once per HEAD (about 6 min)
#   run(command="OUT=$OUT bash scripts/gpu_tune.sh", carry=[".gpu"], timeout_s=600)
#
# Each of VARIANTS is NAME[@LAMDIR][:ARG,ARG...]: a copy of checkpoints/, with LAMDIR's
# lam.safetensors and genie.json `lam` section copied in where given (e.g. a copy whose readout
# was redrawn; only those two files need to travel), trained there first
# for LAM_STEPS more LAM steps (`--resume --restart-schedule`, batch 8 × 6 frames, lr 1e-3, as
# the shipped LAM's CPU stretches); ARGs (commas for spaces, e.g. `--odds,jump=0.3`) go to both
# trainings (a `--batch` or `--lr` among them replaces BATCH's or LR's for the dynamics model).
# Then the dynamics model: 30 s at the peak rate to time the steps, then a schedule
# (warm-up 1, WSD) laid anew over the steps the time left allows, until TRAIN_END seconds after
# the start. Then `genie eval --json` on three held-out sets (1,000,000 / 1,000,064 / 1,000,128,
# the shipped key map) until EVAL_END, then `genie calibrate` (by dreams) until DEADLINE; each
# step is cut off where its time is up and the next begins.
# $OUT gets tune.log and one NAME.tgz a variant (the device tool brings back 8 files at most,
# 16 MiB each), written as soon as its training ends and again after each evaluation and the
# calibration: NAME/ with lam, dynamics, genie.json (the calibrated map once calibrated),
# train_state.json and metrics.jsonl, and out/ with its logs, eval JSONs and calibrate.json.
# Back on the CPU: untar, copy the folder over a copy of checkpoints/ and `genie eval --json`
# each set there (or `genie calibrate` first if it was cut off).
#
# Knobs (environment): BIN (.gpu/genie), DEV (cuda), VARIANTS, LAM_STEPS (700), TRAIN_END (360),
# EVAL_END (450), DEADLINE (565), THREADS (per process; 15 shared out), BATCH (dynamics, 64),
# LR (3e-4). On 11-27 (H200), VARIANTS="base j@.gpu/lamJ:--odds,jump=0.3 jodds:--odds,jump=0.3"
# trained about 10 dynamics steps a second each, three at once (one alone: about 22); on 11-28
# VARIANTS="base b128:--batch,128" about 13 and 7 (batch 128), two at once; see
# docs/experiments.md.
set -u
OUT=${OUT:?set OUT to the folder that comes back}
BIN=${BIN:-.gpu/genie}
DEV=${DEV:-cuda}
VARIANTS=${VARIANTS:-"base"}
LAM_STEPS=${LAM_STEPS:-700}
TRAIN_END=${TRAIN_END:-360}
EVAL_END=${EVAL_END:-450}
DEADLINE=${DEADLINE:-565}
n_variants=$(wc -w <<<"$VARIANTS")
THREADS=${THREADS:-$((15 / n_variants > 0 ? 15 / n_variants : 1))}
BATCH=${BATCH:-64}
LR=${LR:-3e-4}
source "$(dirname "$0")/gpu_common.sh" tune.log

# Runs "$@" until $1 seconds after the start, then Ctrl-C (trainings save at it) or kill.
until_el() {
  local end=$1; shift
  "$@" &
  local p=$! left=$((end - $(el)))
  while [ "$left" -gt 0 ] && kill -0 $p 2>/dev/null; do
    sleep 1
    left=$((end - $(el)))
  done
  kill -INT $p 2>/dev/null
  sleep 3
  kill $p 2>/dev/null
  wait $p
}

pack() { # NAME: $OUT/NAME.tgz from the variant's folder, written whole and then moved
  (cd "$work" && tar czf "$OUT/.$1.tgz" "$1/lam.safetensors" "$1/dynamics.safetensors" \
    "$1/genie.json" "$1/train_state.json" "$1/metrics.jsonl" "$1/out" && mv "$OUT/.$1.tgz" "$OUT/$1.tgz")
}

tune() { # NAME LAMDIR ARGS
  local name=$1 lamdir=$2 args=$3 D=$work/$1 o=$work/$1/out
  cp -r checkpoints "$D"
  mkdir -p "$o"
  if [ -n "$lamdir" ]; then
    cp "$lamdir/lam.safetensors" "$D/"
    python3 - "$D/genie.json" "$lamdir/genie.json" <<'EOF'
import json, sys
into, src = sys.argv[1:]
d = json.load(open(into))
d["lam"] = json.load(open(src))["lam"]
json.dump(d, open(into, "w"), indent=1)
EOF
    if [ "$LAM_STEPS" -gt 0 ]; then
      echo "[$(el)] $name: LAM from $(steps "$D" lam)"
      until_el "$TRAIN_END" "$BIN" train lam --run "$D" --resume --restart-schedule --warmup 100 \
        --steps $(($(steps "$D" lam) + LAM_STEPS)) --batch 8 --clip-len 6 --lr 1e-3 \
        --stickiness 0.3 $args --device "$DEV" --threads "$THREADS" --eval-every 1000 --quiet \
        >>"$o/train.log" 2>&1
      echo "[$(el)] $name: LAM at $(steps "$D" lam)"
    fi
  fi
  local batch="--batch $BATCH" # a variant's own --batch (or --lr) stands in for the knob's
  [[ " $args " == *" --batch "* ]] && batch=
  local lr="--lr $LR"
  [[ " $args " == *" --lr "* ]] && lr=
  local dyn="$batch $lr --stickiness 0.3 $args --device $DEV --threads $THREADS --eval-every 2000 --quiet"
  local s0 s1 target
  s0=$(steps "$D" dynamics)
  echo "[$(el)] $name: dynamics from $s0"
  until_el $(($(el) + 30)) "$BIN" train dynamics --run "$D" --resume --restart-schedule \
    --steps 99999999 --warmup 1 $dyn >>"$o/train.log" 2>&1
  s1=$(steps "$D" dynamics)
  target=$(python3 -c "print($s1 + int(($s1 - $s0) / 33 * max($TRAIN_END - $(el) - 10, 10)))")
  echo "[$(el)] $name: dynamics at $s1 (from $s0 in ~30 s); on to $target"
  until_el "$TRAIN_END" "$BIN" train dynamics --run "$D" --resume --restart-schedule \
    --steps "$target" --warmup 1 $dyn >>"$o/train.log" 2>&1
  echo "[$(el)] $name: dynamics at $(steps "$D" dynamics)"
  pack "$name"
  for s in 1000000 1000064 1000128; do
    [ "$(el)" -lt "$EVAL_END" ] || break
    until_el "$EVAL_END" "$BIN" eval --checkpoint "$D" --json --device "$DEV" --threads "$THREADS" \
      --eval-seed-start $s >"$o/eval_$s.json" 2>>"$o/eval.log"
    pack "$name"
    echo "[$(el)] $name: eval $s: $(python3 -c "import json;d=json.load(open('$o/eval_$s.json'));f=d['action_fidelity'];print('fidelity', f['mean'], 'left', f['left'], 'right', f['right'], 'jump', f['jump'], 'dtpsnr', d['delta_psnr_t4'], 'rollout', d['rollout_psnr_t4'])" 2>&1 | tail -1)"
  done
  until_el "$DEADLINE" "$BIN" calibrate --checkpoint "$D" --device "$DEV" --threads "$THREADS" \
    >"$o/calibrate.json" 2>"$o/calibrate.err"
  pack "$name"
  echo "[$(el)] $name: calibrate: $(tail -c 600 "$o/calibrate.json")"
}

echo "[$(el)] variants: $VARIANTS"
pids=()
for v in $VARIANTS; do
  spec=${v%%:*}
  args=
  [[ $v == *:* ]] && args=${v#*:}
  args=${args//,/ }
  name=${spec%%@*}
  lamdir=
  [[ $spec == *@* ]] && lamdir=${spec#*@}
  tune "$name" "$lamdir" "$args" &
  pids+=($!)
done
wait "${pids[@]}"
echo "[$(el)] end"
