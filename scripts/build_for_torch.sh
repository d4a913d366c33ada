#!/usr/bin/env bash
# Builds a stripped `genie` (the committed HEAD) against another torch release than the one we
# pin (2.13), for a machine that already has that torch but cannot fetch ours: e.g. a lent GPU
# machine with torch 2.11 + CUDA and no internet. A binary built against 2.13 loads there but
# fails at its first tensor ("incoherent element sizes in bytes").
#
#   bash scripts/build_for_torch.sh 2.11.0 OUTDIR
#
# OUTDIR gets `genie` and `lib/libudev.so.1` (gilrs links it; minimal images lack it). There:
#   TL=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
#   LD_LIBRARY_PATH=$TL:OUTDIR/lib OUTDIR/genie train dynamics --device cuda --checkpoint ...
# genie loads libtorch's CUDA backend itself at start (no LD_PRELOAD; checked on an H100).
#
# How: the torch wheel is fetched from PyPI into target/torch-VERSION (about 530 MB, once) and
# its CPU libraries (libtorch_cuda* left out, so this builds on a machine without CUDA) stand in
# for libtorch; HEAD is exported beside them with Cargo.toml asking for the tch release that
# matches; the build shares target/ (only torch-sys, tch and genie are rebuilt, a few minutes),
# and the repository's own release binary is relinked afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: build_for_torch.sh TORCH_VERSION OUTDIR}
out=${2:?usage: build_for_torch.sh TORCH_VERSION OUTDIR}
# tch releases by the torch release they bind (from tch's changelog; add others when checked).
case $version in
  2.11.*) tch=0.24 ;;
  2.13.*) tch=0.26 ;;
  *) echo "build_for_torch: no tch release known for torch $version (add it to the table)" >&2; exit 2 ;;
esac

say() { printf '[build_for_torch] %s\n' "$*"; }
repo=$PWD
work=$repo/target/torch-$version
mkdir -p "$work"

if [ ! -f "$work/unpacked" ]; then
  say "fetching torch $version from PyPI"
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: "torch==$version" -d "$work/wheel"
  (cd "$work" && unzip -q -o wheel/torch-*.whl 'torch/lib/*' 'torch/include/*')
  touch "$work/unpacked"
fi
rm -rf "$work/libtorch" && mkdir -p "$work/libtorch/lib"
ln -s "$work/torch/include" "$work/libtorch/include"
for f in "$work"/torch/lib/*; do
  case $(basename "$f") in libtorch_cuda*) ;; *) ln -s "$f" "$work/libtorch/lib/" ;; esac
done

say "exporting $(git rev-parse --short HEAD) with tch $tch"
rm -rf "$work/src" && mkdir -p "$work/src"
git archive HEAD | tar -x -C "$work/src"
sed -i -E "s/^tch = \"[0-9.]+\"/tch = \"$tch\"/; s/^torch-sys = \"[0-9.]+\"/torch-sys = \"$tch\"/" \
  "$work/src/Cargo.toml"
grep -q "^tch = \"$tch\"" "$work/src/Cargo.toml" || { echo "Cargo.toml: no tch line to change" >&2; exit 1; }

say "building (target/ shared)"
(cd "$work/src" && LIBTORCH="$work/libtorch" LIBTORCH_CXX11_ABI=1 CARGO_TARGET_DIR="$repo/target" \
  cargo build --release --bin genie)
mkdir -p "$out/lib"
strip -o "$out/genie" target/release/genie
udev=$(ldconfig -p | awk '/libudev\.so\.1 / {print $NF; exit}')
[ -n "$udev" ] && cp -L "$udev" "$out/lib/"

say "relinking the repository's own binary"
cargo build --release --bin genie

cuda_libs=$(ls -d .venv/lib/python3*/site-packages/nvidia/cu*/lib 2>/dev/null | head -1 || true)
say "check: $(LD_LIBRARY_PATH="$work/libtorch/lib:$cuda_libs:$out/lib" "$out/genie" --version)"
say "wrote $out/genie ($(du -h "$out/genie" | cut -f1)) and $out/lib"
