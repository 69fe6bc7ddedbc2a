#!/usr/bin/env bash
# The main job on a fresh machine: build nook and the wasm client side by side, then `nook demo` —
# fetch the assets, train a first model on MovieLens 100k, export the bundle and serve the page;
# fine-tuning then runs behind the served page and upgrades the bundle (the page picks it up on its
# next load).
#   scripts/demo.sh [--port N] [--no-serve]
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS

# The browser package (wasm-bindgen-cli's install included) does not need the nook binary: it
# builds in the background while cargo builds nook. Same test as `nook demo`'s: missing, or older
# than a source it is built from.
wasm_stale() {
  [ ! -f www/shell.js ] || [ ! -f www/nook/pkg/nook_wasm_bg.wasm ] \
    || [ -n "$(find shared/src wasm-client/src wasm-client/js www/index.html www/app.js www/style.css \
      -newer www/shell.js -print -quit)" ]
}
# `nook demo` fetches the assets and trains its first model while the build ends (wasm-opt), and
# waits for the status file before serving.
wasm=()
if wasm_stale; then
  mkdir -p out
  status=out/build-wasm.status
  rm -f "$status" "$status.partial"
  echo "==> building the wasm client in the background (log: out/build-wasm.log)" >&2
  # The threaded build (its own std and dependencies, ~2 min more) comes after the page is up:
  # the page runs one thread until then, and picks the threaded build up on its next load.
  {
    code=0
    NOOK_WASM_THREADS=0 scripts/build-wasm.sh >out/build-wasm.log 2>&1 || code=$?
    echo "$code" >"$status.partial" && mv "$status.partial" "$status"
    if [ "$code" = 0 ]; then
      scripts/build-wasm.sh >>out/build-wasm.log 2>&1 \
        || echo "nook: the threaded wasm build failed (out/build-wasm.log); the page keeps one thread" >&2
    fi
  } &
  wasm=(--wasm-built-by "$status")
fi
# Without the default features (Parquet for Spark factors, PNG plots for reports): the demo uses
# neither, and they are a third of the build. `cargo build --release -p nook-trainer` has them.
cargo build --release -p nook-trainer --no-default-features
echo "==> nook built in $((SECONDS - t0)) s" >&2
exec "${CARGO_TARGET_DIR:-target}/release/nook" demo "${wasm[@]}" "$@"
