#!/usr/bin/env bash
# genie-core (the world model, data, training, evaluation, sessions, recording) must build with
# no window: none of the player's crates may be among its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
window=$(cargo tree --locked -p genie-core -e normal,build --prefix none \
  | grep -E '^(wgpu|winit|egui|egui-wgpu|egui-winit|gilrs) ' | sort -u || true)
if [ -n "$window" ]; then
  echo "genie-core depends on window crates:" >&2
  echo "$window" >&2
  exit 1
fi
echo "genie-core: no window crates among its dependencies"
