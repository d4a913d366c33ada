#!/usr/bin/env bash
# LAM variants side by side on a lent GPU machine (the library's `device` tool), then the
# shipped dynamics model tuned to the best one's codes, all inside one call of at most 10
# minutes. Run from the repository root there, with a genie built for that machine's torch:
#
#   bash scripts/build_for_torch.sh 2.11.0 .gpu        # here, once per HEAD (about 6 min)
#   run(command="OUT=$OUT bash scripts/gpu_lam_sweep.sh", carry=[".gpu"], timeout_s=600)
#
# 1. Each variant of VARIANTS (name:key=value,... over the `lam` section of
#    checkpoints/genie.json) trains a new LAM from scratch, all at once on the one GPU, for
#    LAM_STEPS steps or LAM_SECS seconds, whichever ends first (Ctrl-C saves). A variant
#    written name@FOLDER:... instead trains on from the run folder FOLDER (carried, e.g. under
#    .gpu/; `--resume --restart-schedule`, LAM_STEPS more steps), its config overridden the same
#    way (`name@.gpu/lamR:-` for none).
# 2. `genie calibrate --by lam --states STATES` on each: NMI(code; action) over controlled pairs
#    and the code each game action gets most often.
# 3. The best variant (highest NMI among those that give noop, left and right three different
#    codes; else highest NMI) replaces the LAM of a copy of checkpoints/, and the dynamics model
#    trains on its codes (`--restart-schedule`) until DEADLINE seconds after the start.
# $OUT gets sweep.log, calibrate.jsonl and sweep.tgz (every variant's run folder without the
# other networks, and the tuned folder's lam, dynamics, genie.json and logs). Back on the CPU:
# untar, copy checkpoints/tokenizer.safetensors in, `genie calibrate` (by dreams) and
# `genie eval --json` each set (`genie calibrate --by lam` says what each LAM's codes follow).
#
# Knobs (environment): BIN (.gpu/genie), DEV (cuda), VARIANTS, LAM_STEPS (6000), LAM_SECS
# (200), STATES (256), DEADLINE (540), THREADS (per training process, 3), ODDS (the scripted
# player's `--odds` for the LAM and dynamics clips, e.g. jump=0.3; unset: the defaults; needs a
# .gpu/genie built at or after the commit that added `genie train --odds`).
set -u
OUT=${OUT:?set OUT to the folder that comes back}
BIN=${BIN:-.gpu/genie}
DEV=${DEV:-cuda}
LAM_STEPS=${LAM_STEPS:-6000}
LAM_SECS=${LAM_SECS:-200}
STATES=${STATES:-256}
DEADLINE=${DEADLINE:-540}
THREADS=${THREADS:-3}
ODDS=${ODDS:-}
VARIANTS=${VARIANTS:-"skip:skip_first_transition=true all:skip_first_transition=false,mirror_clips=true symskip:skip_first_transition=true,mirror_clips=true,mirror_features=true symall:skip_first_transition=false,mirror_clips=true,mirror_features=true"}
source "$(dirname "$0")/gpu_common.sh" sweep.log
field() { python3 -c "import json,sys;d=json.load(open('$1'));print(d$2)"; }

echo "[$(el)] LAM variants: $VARIANTS"
pids=()
LAMARGS="--batch 32 --clip-len 6 --lr 1e-3 --stickiness 0.3 ${ODDS:+--odds $ODDS} --device $DEV --threads $THREADS --eval-every 1000 --quiet"
for v in $VARIANTS; do
  name=${v%%:*}
  from=
  if [[ $name == *@* ]]; then
    from=${name#*@}
    name=${name%%@*}
    cp -r "$from" "$work/$name"
  fi
  base=checkpoints/genie.json
  [ -n "$from" ] && base=$work/$name/genie.json
  python3 - "$base" "${v#*:}" "$work/$name.json" <<'EOF'
import json, sys
base, sets, out = sys.argv[1:]
c = json.load(open(base))
for kv in sets.split(","):
    if kv in ("", "-"):
        continue
    k, val = kv.split("=")
    c["lam"][k] = json.loads(val)
c.pop("calibration", None)
c["eval"] = None
json.dump(c, open(out, "w"), indent=1)
EOF
  if [ -n "$from" ]; then
    cp "$work/$name.json" "$work/$name/genie.json"
    "$BIN" train lam --run "$work/$name" --resume --restart-schedule --warmup 100 \
      --steps $(($(steps "$work/$name" lam) + LAM_STEPS)) $LAMARGS >"$work/$name.log" 2>&1 &
  else
    "$BIN" train lam --run "$work/$name" --config "$work/$name.json" --steps "$LAM_STEPS" \
      $LAMARGS >"$work/$name.log" 2>&1 &
  fi
  pids+=($!)
done
sleep 5
waited=0
while [ $waited -lt "$LAM_SECS" ] && kill -0 "${pids[@]}" 2>/dev/null; do
  sleep 5
  waited=$((waited + 5))
done
for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
wait "${pids[@]}" 2>/dev/null
best= best_nmi=-1 best_ok=0
for v in $VARIANTS; do
  name=${v%%:*}
  name=${name%%@*}
  tail -2 "$work/$name.log"
  "$BIN" calibrate --by lam --states "$STATES" --checkpoint "$work/$name" --device "$DEV" \
    --threads 8 >"$work/$name.cal" 2>>"$work/$name.log" || { echo "$name: calibrate failed"; continue; }
  python3 - "$name" "$(steps "$work/$name" lam)" "$work/$name.cal" >>"$OUT/calibrate.jsonl" <<'EOF'
import json, sys
name, steps, path = sys.argv[1:]
d = json.load(open(path))
d["variant"], d["steps"] = name, int(steps)
print(json.dumps(d))
EOF
  nmi=$(field "$work/$name.cal" "['lam_nmi']")
  ok=$(field "$work/$name.cal" "['calibration']" | python3 -c "import ast,sys;m=ast.literal_eval(sys.stdin.read());print(int(len({m['noop'],m['left'],m['right']})==3))")
  echo "[$(el)] $name: $(steps "$work/$name" lam) steps, NMI $nmi, noop/left/right apart: $ok"
  if python3 -c "import sys;sys.exit(0 if ($ok,$nmi)>($best_ok,$best_nmi) else 1)"; then
    best=$name best_nmi=$nmi best_ok=$ok
  fi
done
[ -n "$best" ] || { echo "no variant calibrated"; exit 1; }
echo "[$(el)] best: $best (NMI $best_nmi, apart $best_ok)"

D=$work/tuned
cp -r checkpoints "$D"
cp "$work/$best/lam.safetensors" "$D/"
python3 - "$D" "$work/$best" <<'EOF'
import json, sys
# The tuned folder takes the variant's LAM config and its LAM step count and time.
d, b = sys.argv[1:]
for name, keys in [("genie.json", ["lam"]), ("train_state.json", ["lam_steps", "lam_seconds"])]:
    into, src = json.load(open(f"{d}/{name}")), json.load(open(f"{b}/{name}"))
    for k in keys:
        into[k] = src[k]
    json.dump(into, open(f"{d}/{name}", "w"), indent=1)
EOF
# Dynamics: 30 s at the peak rate to time the steps, then a schedule (warm-up 1, cosine decay)
# laid anew over the steps the time left allows, as scripts from earlier GPU sessions did.
DYN="--batch 64 --lr 3e-4 --stickiness 0.3 ${ODDS:+--odds $ODDS} --device $DEV --threads 8 --eval-every 2000 --quiet"
train_for() { # SECS ARGS...: train dynamics in $D with ARGS, Ctrl-C after SECS
  local secs=$1; shift
  "$BIN" train dynamics --run "$D" --resume --restart-schedule "$@" $DYN >>"$work/tuned.log" 2>&1 &
  local p=$!
  sleep "$secs"
  kill -INT $p 2>/dev/null
  wait $p
}
if [ $((DEADLINE - $(el))) -gt 90 ]; then
  s0=$(steps "$D" dynamics)
  echo "[$(el)] dynamics from $s0"
  train_for 30 --steps 99999999 --warmup 1
  s1=$(steps "$D" dynamics)
  target=$(python3 -c "print($s1 + int(($s1 - $s0) / 30 * max($DEADLINE - $(el) - 40, 10)))")
  echo "[$(el)] dynamics at $s1 (from $s0 in 30 s); on to $target"
  train_for $((DEADLINE - $(el) - 25)) --steps "$target" --warmup 1
  echo "[$(el)] dynamics at $(steps "$D" dynamics)"
fi
(cd "$work" && tar czf "$OUT/sweep.tgz" --exclude='*/tokenizer.safetensors' \
  --exclude='*/dynamics.safetensors' --exclude='*/adamw_*' ./*.json ./*.log ./*.cal \
  $(for v in $VARIANTS; do n=${v%%:*}; echo "${n%%@*}"; done))
(cd "$work" && tar czf "$OUT/tuned.tgz" tuned/lam.safetensors tuned/dynamics.safetensors \
  tuned/genie.json tuned/metrics.jsonl tuned/train_state.json)
echo "[$(el)] end"
