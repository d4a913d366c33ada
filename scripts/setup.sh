#!/usr/bin/env bash
# Sets up everything genie needs on a fresh Debian machine, idempotently:
#   1. Debian packages (pkg-config, libudev-dev for gilrs; Xvfb and Mesa's software Vulkan
#      for window and rendering tests, xwd for screenshots; the X11 libraries winit loads;
#      ffmpeg for `genie data import` of video files);
#   2. a project-local virtual environment (.venv, git-ignored) holding torch 2.13.0 from PyPI,
#      whose libtorch tch 0.26 links against (.cargo/config.toml points LIBTORCH at it).
# Without an NVIDIA driver only what CPU libtorch needs is installed (torch --no-deps plus the
# two CUDA runtime wheels its shared objects link to): ~1.4 GB instead of ~4.7 GB.
# A second run checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
# Versions of the two CUDA wheels checked with torch 2.13.0 on a CPU-only machine.
CPU_ONLY_EXTRAS=(nvidia-cuda-runtime==13.5.37 nvidia-cuda-cupti==13.5.25)
DEBIAN_PACKAGES=(pkg-config libudev-dev xvfb xauth x11-apps mesa-vulkan-drivers libvulkan1 ffmpeg
  libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libgl1-mesa-dri libegl1)

say() { printf '[setup] %s\n' "$*"; }

install_debian_packages() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "warning: no apt-get here; install these Debian packages yourself: ${missing[*]}"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      say "warning: not root and no password-less sudo; install these Debian packages yourself: ${missing[*]}"
      return 0
    fi
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

has_nvidia_driver() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

install_torch() {
  local mode=cpu
  has_nvidia_driver && mode=cuda
  local stamp=".venv/.genie-torch-$TORCH_VERSION-$mode"
  if [ -f "$stamp" ] && [ -e .venv/libtorch/lib/libtorch_cpu.so ]; then return 0; fi
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { say "error: $python not found; genie needs Python 3.10+ with venv to fetch libtorch from PyPI"; exit 1; }
  [ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  if [ "$mode" = cuda ]; then
    say "NVIDIA driver found: installing torch $TORCH_VERSION with CUDA (several GB)"
    .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  else
    say "no NVIDIA driver: installing CPU libtorch only (torch $TORCH_VERSION --no-deps)"
    .venv/bin/pip install -q --disable-pip-version-check --no-deps "torch==$TORCH_VERSION"
    .venv/bin/pip install -q --disable-pip-version-check --no-deps "${CPU_ONLY_EXTRAS[@]}"
  fi
  local torch_dir
  torch_dir=$(ls -d .venv/lib/python3*/site-packages/torch | head -n1)
  ln -sfn "${torch_dir#.venv/}" .venv/libtorch
  rm -f .venv/.genie-torch-*
  touch "$stamp"
  say "libtorch ready at .venv/libtorch -> $torch_dir"
}

install_debian_packages
install_torch
