#!/usr/bin/env bash
# The main job on a fresh machine: install the build tools, build nook, then `nook demo` — fetch the
# assets, train on MovieLens 100k, export the bundle, build the wasm client and serve the page.
#   scripts/demo.sh [--port N] [--no-serve]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p nook-trainer
exec "${CARGO_TARGET_DIR:-target}/release/nook" demo "$@"
