#!/usr/bin/env bash
# Installs what a fresh machine lacks for nook's build and tests, skipping what is there:
# the wasm32 target, rustfmt/clippy, a pinned nightly with rust-src (the threaded wasm build), Debian's chromium + chromium-driver (browser tests),
# mesa-vulkan-drivers (lavapipe: the GPU tests on the CPU), fonts-dejavu-core (report plots),
# nginx (the deploy guide's server, tested by the browser suite),
# wasm-bindgen-cli at the crate's version, and the npm tools (binaryen, playwright-core).
#   scripts/install-deps.sh [--browser] [--spark]
#     --browser: also the browser-test packages
#     --spark:   also Java 17+ (Debian) and pyspark in a venv (PyPI) for the real-Spark route test,
#                at ${XDG_CACHE_HOME:-~/.cache}/nook/spark-venv (outside the clone, reused)
set -euo pipefail
cd "$(dirname "$0")/.."
browser=false spark=false
for arg in "$@"; do
  case $arg in
    --browser) browser=true ;;
    --spark) spark=true ;;
    *) echo "install-deps: unknown option $arg (--browser, --spark)" >&2; exit 2 ;;
  esac
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  echo "installing $* from Debian" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The browser's threaded build needs a std compiled with atomics (`-Z build-std`): a pinned nightly
# with its source, from rustup's dist server (~10 s; reused once there). See scripts/build-wasm.sh.
nightly=$(cat scripts/nightly-toolchain)
if [ "${NOOK_WASM_THREADS:-1}" != 0 ] && { ! rustup run "$nightly" rustc -V >/dev/null 2>&1 || [ ! -d "$(rustup run "$nightly" rustc --print sysroot)/lib/rustlib/src/rust/library" ]; }; then
  echo "installing the Rust toolchain $nightly with rust-src (the threaded wasm build)" >&2
  rustup toolchain install "$nightly" --profile minimal --component rust-src
fi

if $browser; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
  fc-list 2>/dev/null | grep -qi "dejavu sans" || missing+=(fonts-dejavu-core)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
fi

if $spark; then
  # Spark 4 runs on Java 17 or 21; Debian 12 ships 17, Debian 13 only 21.
  java_major=$(java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }' || true)
  case $java_major in ''|*[!0-9]*) java_major=0 ;; esac
  if [ "$java_major" -lt 17 ]; then
    if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then apt_install openjdk-17-jre-headless
    else apt_install openjdk-21-jre-headless; fi
  fi
  venv=${XDG_CACHE_HOME:-$HOME/.cache}/nook/spark-venv
  pyspark_version=4.0.1
  if ! "$venv/bin/python" -c "import pyspark, numpy, sys; sys.exit(pyspark.__version__ != '$pyspark_version')" 2>/dev/null; then
    echo "installing pyspark $pyspark_version into $venv (PyPI, ~450 MB, a minute or two)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "pyspark==$pyspark_version" "numpy>=1.21,<3"
  fi
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
  # A debug build: ~50 s to build on 2 cores instead of ~3 min, and it writes the same files (1.9 s
  # instead of 0.5 s per run on nook's module).
  echo "installing wasm-bindgen-cli $want (cargo install --debug, about a minute)" >&2
  cargo install --debug wasm-bindgen-cli --version "$want"
fi
if [ ! -x tools/node_modules/.bin/wasm-opt ] || [ ! -d tools/node_modules/playwright-core ] || [ ! -x tools/node_modules/.bin/tsc ]; then
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi
