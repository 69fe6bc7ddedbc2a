#!/usr/bin/env bash
# Installs what a fresh machine lacks for nook's build and tests, skipping what is there:
# the wasm32 target, rustfmt/clippy, Debian's chromium + chromium-driver (browser tests),
# mesa-vulkan-drivers (lavapipe: the GPU tests on the CPU), fonts-dejavu-core (report plots),
# nginx (the deploy guide's server, tested by the browser suite),
# wasm-bindgen-cli at the crate's version, and the npm tools (binaryen, playwright-core).
#   scripts/install-deps.sh [--browser]   (--browser: also the browser-test packages)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if [ "${1:-}" = "--browser" ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
  fc-list 2>/dev/null | grep -qi "dejavu sans" || missing+=(fonts-dejavu-core)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]} from Debian" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (cargo install, a few minutes)" >&2
  cargo install wasm-bindgen-cli --version "$want"
fi
if [ ! -x tools/node_modules/.bin/wasm-opt ] || [ ! -d tools/node_modules/playwright-core ] || [ ! -x tools/node_modules/.bin/tsc ]; then
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi
