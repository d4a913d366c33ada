#!/usr/bin/env bash
# Where a played frame's time goes: samples `genie dream` (the player's world without a window:
# prompt encode, MaskGIT sampling with caches, decode) with Linux perf and prints the hottest
# functions. Needs perf (Debian: linux-perf) and a release build (`cargo build --release`).
#
#   bash scripts/profile.sh [FRAMES] [THREADS] [-- extra genie dream arguments]
#
# FRAMES (default 200) frames are dreamed with libtorch on THREADS threads (default 1, which
# keeps the profile readable). The GIF the dream writes is encoded after the last frame: its
# functions (color_quant, weezl) show in the list but are not part of playing.
set -euo pipefail
cd "$(dirname "$0")/.."

frames=${1:-200}
threads=${2:-1}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift

command -v perf >/dev/null || { echo "profile.sh: perf not found (Debian package linux-perf)" >&2; exit 1; }
[ -x target/release/genie ] || { echo "profile.sh: build first: cargo build --release" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
half=$((frames / 2))
perf record -q -F 499 -o "$work/perf.data" -- \
  target/release/genie dream --threads "$threads" --actions "right*$half,left*$((frames - half))" \
  --out "$work/dream.gif" "$@" >/dev/null
echo "# genie dream, $frames frames, $threads thread(s): share of samples by function"
perf report -i "$work/perf.data" --no-inline --no-children --sort dso,symbol --stdio 2>/dev/null |
  grep -v '^#' | grep -v '^$' |
  sed -E 's/c10::function_ref<[^>]*>::callback_fn<at::native::[A-Za-z0-9_]+::VectorizedLoop2d<at::native::(\(anonymous namespace\)::|[A-Za-z0-9_]+::)?([a-z_]+kernel).*/\2 (elementwise)/' |
  cut -c1-140 | head -n 25
