# The start that the scripts run on a lent GPU machine share (gpu_tune.sh, gpu_lam_sweep.sh);
# sourced with OUT, BIN and DEV set and the log's file name as its argument. It logs everything
# to $OUT/LOG as well, moves to the repository root, points the loader at the machine's torch
# libraries for BIN (unless DEV is cpu), and defines `el` (seconds since the start), `steps RUN
# NETWORK` (the network's steps done, from RUN/train_state.json) and `work` (a scratch folder).
T0=$(date +%s)
el() { echo $(($(date +%s) - T0)); }
exec > >(tee -a "$OUT/$1") 2>&1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=$(realpath "$BIN")
if [ "$DEV" != cpu ]; then
  TL=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
  export LD_LIBRARY_PATH=$TL:$(dirname "$BIN")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi -L || true
fi
work=$(mktemp -d)
steps() { python3 -c "import json;print(json.load(open('$1/train_state.json'))['$2_steps'])"; }
