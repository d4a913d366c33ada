#!/usr/bin/env bash
# Screenshot of `genie play` (window + overlay) under Xvfb, for docs/player.png:
#   bash scripts/screenshot.sh OUT.png [genie play arguments...]
# Plays a few seconds holding `right` (the hidden --hold flag), then grabs the screen.
set -euo pipefail
out=${1:?usage: screenshot.sh OUT.png [play args...]}
shift
display=:77
Xvfb $display -screen 0 1300x680x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 1
cargo build --release --quiet --bin genie --example xwd_to_png
DISPLAY=$display ./target/release/genie play --announce-after 60 --hold right "$@" &
play=$!
sleep "${SHOT_AFTER:-8}"
xwd -root -silent -display $display > /tmp/genie-shot.xwd
kill $play || true
width=$(( ${COLUMNS_SHOWN:-1} * 640 ))
./target/release/examples/xwd_to_png /tmp/genie-shot.xwd "$out" $width 640
echo "wrote $out"
