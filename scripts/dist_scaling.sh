#!/usr/bin/env bash
# Data-parallel scaling on this machine: each network trained STEPS steps from the shipped
# checkpoint by 1 rank and by 2 ranks (one libtorch thread each, --batch B per rank), with the
# tokens/s and the all-reduce's share of rank 0's time from metrics.jsonl (medians over the
# logged windows after the first). Usage: scripts/dist_scaling.sh [STEPS] [B]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-40}
B=${2:-8}
GENIE=${GENIE:-target/release/genie}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for stage in tokenizer lam dynamics; do
  for ranks in 1 2; do
    run="$work/$stage-$ranks"
    cp -r checkpoints "$run"
    rm -f "$run/metrics.jsonl"
    done_steps=$(python3 -c "import json;print(json.load(open('$run/train_state.json'))['${stage}_steps'])")
    flags=(train "$stage" --run "$run" --resume --restart-schedule --steps $((done_steps + STEPS))
      --batch "$B" --threads 1 --quiet --eval-clips 0 --save-minutes 1000)
    if [ "$ranks" = 2 ]; then flags+=(--nproc-per-node 2); fi
    "$GENIE" "${flags[@]}" 2>/dev/null
    python3 - "$run/metrics.jsonl" "$stage" "$ranks" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l][1:]
tok = statistics.median(r["tokens_per_s"] for r in rows)
share = [r["sync_share"] for r in rows if "sync_share" in r]
steps_per_s = statistics.median(10 / ((b["seconds"] - a["seconds"]) or 1e-9) for a, b in zip(rows, rows[1:])) if len(rows) > 1 else float("nan")
print(json.dumps({"network": sys.argv[2], "ranks": int(sys.argv[3]), "steps_per_s": round(steps_per_s, 3), "tokens_per_s": round(tok),
                  "allreduce_share": round(statistics.median(share), 3) if share else None}))
PY
  done
done
